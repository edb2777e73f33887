/* udfhost._udfhost: the C extension under the udfhost package, a thin layer over libudfhost's
 * public API (udfhost/udfhost.h). Results reach NumPy without a copy: every array's base is the
 * Results object that owns the library's result memory. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "udfhost/udfhost.h"

/* --- exceptions ---------------------------------------------------------------------------- */

static PyObject *UdfhostError, *ParameterError, *DatasetError, *PluginError, *OutputError,
    *OutOfMemoryError, *CancelledError;

/* Raise the exception class of err's code with its message; returns NULL. */
static PyObject *raise_error(const udfhost_error *err)
{
    PyObject *type = UdfhostError;
    switch (err->code) {
    case UDFHOST_EUSAGE: type = ParameterError; break;
    case UDFHOST_EDATA: type = DatasetError; break;
    case UDFHOST_EPLUGIN: type = PluginError; break;
    case UDFHOST_EIO: type = OutputError; break;
    case UDFHOST_ENOMEM: type = OutOfMemoryError; break;
    case UDFHOST_ECANCELLED: type = CancelledError; break;
    }
    PyObject *exc = PyObject_CallFunction(type, "s", err->message[0] ? err->message : "failed");
    if (!exc)
        return NULL;
    PyObject *code = PyLong_FromLong(err->code);
    if (code) {
        PyObject_SetAttrString(exc, "code", code);
        Py_DECREF(code);
    }
    PyErr_SetObject(type, exc);
    Py_DECREF(exc);
    return NULL;
}

/* --- Results ------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    udfhost_results *res;
} ResultsObject;

static PyTypeObject ResultsType;

static void Results_dealloc(ResultsObject *self)
{
    udfhost_results_free(self->res);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A new Results owning res (freed here on failure). */
static PyObject *results_wrap(udfhost_results *res)
{
    ResultsObject *self = PyObject_New(ResultsObject, &ResultsType);
    if (!self) {
        udfhost_results_free(res);
        return NULL;
    }
    self->res = res;
    return (PyObject *)self;
}

/* The library's dtype names and NumPy's type numbers, both ways. */
static const struct {
    const char *name;
    int type;
} dtypes[] = {
    {"uint8", NPY_UINT8},     {"uint16", NPY_UINT16}, {"uint32", NPY_UINT32},
    {"uint64", NPY_UINT64},   {"int8", NPY_INT8},     {"int16", NPY_INT16},
    {"int32", NPY_INT32},     {"int64", NPY_INT64},   {"float32", NPY_FLOAT32},
    {"float64", NPY_FLOAT64}, {"bool", NPY_BOOL},
};

#define N_DTYPES (sizeof dtypes / sizeof dtypes[0])

static int numpy_type(const char *dtype)
{
    for (size_t i = 0; i < N_DTYPES; i++)
        if (!strcmp(dtypes[i].name, dtype))
            return dtypes[i].type;
    return -1;
}

/* The library's name of arr's dtype, or NULL when it has none (complex, float16, object ...). */
static const char *dtype_of(PyArrayObject *arr)
{
    for (size_t i = 0; i < N_DTYPES; i++)
        if (PyArray_EquivTypenums(PyArray_TYPE(arr), dtypes[i].type))
            return dtypes[i].name;
    return NULL;
}

static const char *kind_name(udfhost_kind k)
{
    return k == UDFHOST_KIND_NAV ? "nav" : k == UDFHOST_KIND_SIG ? "sig" : "single";
}

/* A NumPy array over the buffer's memory, kept alive by owner. */
static PyObject *buffer_array(const udfhost_buffer *b, PyObject *owner)
{
    int type = numpy_type(b->dtype);
    if (type < 0)
        return PyErr_Format(PyExc_TypeError, "result %s.%s has dtype %s, which NumPy lacks",
                            b->plugin, b->name, b->dtype);
    npy_intp dims[2 * UDFHOST_MAX_DIMS];
    for (uint32_t i = 0; i < b->ndim; i++)
        dims[i] = (npy_intp)b->shape[i];
    PyObject *arr = PyArray_New(&PyArray_Type, (int)b->ndim, dims, type, NULL, b->data, 0,
                                NPY_ARRAY_CARRAY, NULL);
    if (!arr)
        return NULL;
    Py_INCREF(owner);
    if (PyArray_SetBaseObject((PyArrayObject *)arr, owner)) {
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

PyDoc_STRVAR(Results_buffers_doc,
             "buffers() -> list, per plugin, of (plugin, [(name, kind, ndarray), ...]).\n"
             "The arrays share this object's memory (no copy) and keep it alive.");

static PyObject *Results_buffers(ResultsObject *self, PyObject *unused)
{
    (void)unused;
    uint32_t n = udfhost_results_plugin_count(self->res);
    PyObject *out = PyList_New(n);
    for (uint32_t k = 0; out && k < n; k++) {
        uint32_t nb = udfhost_results_buffer_count(self->res, k);
        PyObject *list = PyList_New(nb);
        for (uint32_t i = 0; list && i < nb; i++) {
            udfhost_buffer b;
            udfhost_error err;
            if (udfhost_results_buffer(self->res, k, i, &b, &err)) {
                raise_error(&err);
                Py_CLEAR(list);
                break;
            }
            PyObject *arr = buffer_array(&b, (PyObject *)self);
            PyObject *item = arr ? Py_BuildValue("(ssN)", b.name, kind_name(b.kind), arr) : NULL;
            if (!item) {
                Py_CLEAR(list);
                break;
            }
            PyList_SET_ITEM(list, i, item);
        }
        PyObject *pair = list ? Py_BuildValue("(sN)", udfhost_results_plugin_name(self->res, k),
                                              list)
                              : NULL;
        if (!pair) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, k, pair);
    }
    return out;
}

PyDoc_STRVAR(Results_valid_doc,
             "valid() -> flat bool ndarray (a copy): the frames these results hold, selected by\n"
             "the ROI and merged so far.");

static PyObject *Results_valid(ResultsObject *self, PyObject *unused)
{
    (void)unused;
    uint64_t n;
    const uint8_t *v = udfhost_results_valid(self->res, &n);
    npy_intp dims[1] = {(npy_intp)n};
    PyObject *arr = PyArray_SimpleNew(1, dims, NPY_BOOL);
    if (arr && n)
        memcpy(PyArray_DATA((PyArrayObject *)arr), v, n);
    return arr;
}

PyDoc_STRVAR(Results_progress_doc,
             "progress() -> (frames_done, frames_total) of the selected frames.");

static PyObject *Results_progress(ResultsObject *self, PyObject *unused)
{
    (void)unused;
    uint64_t done, total;
    udfhost_results_progress(self->res, &done, &total);
    return Py_BuildValue("(KK)", (unsigned long long)done, (unsigned long long)total);
}

static PyMethodDef Results_methods[] = {
    {"buffers", (PyCFunction)Results_buffers, METH_NOARGS, Results_buffers_doc},
    {"valid", (PyCFunction)Results_valid, METH_NOARGS, Results_valid_doc},
    {"progress", (PyCFunction)Results_progress, METH_NOARGS, Results_progress_doc},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ResultsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "udfhost._udfhost.Results",
    .tp_basicsize = sizeof(ResultsObject),
    .tp_dealloc = (destructor)Results_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The result buffers of a run, owned by this object.",
    .tp_methods = Results_methods,
};

/* --- Dataset ------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    udfhost_dataset *ds;
    PyObject *array; /* a memory dataset's array, kept alive while the dataset is */
    int busy;        /* runs created over it and not yet freed */
} DatasetObject;

static PyTypeObject DatasetType;

static void Dataset_dealloc(DatasetObject *self)
{
    udfhost_dataset_close(self->ds);
    Py_XDECREF(self->array);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Dataset(path, options): options is a sequence of (name, value) string pairs. */
static int Dataset_init(DatasetObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"path", "options", NULL};
    PyObject *path_obj, *options = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&|O", kwlist, PyUnicode_FSConverter,
                                     &path_obj, &options))
        return -1;
    PyObject *seq = options ? PySequence_Fast(options, "options must be a sequence") : NULL;
    if (options && !seq) {
        Py_DECREF(path_obj);
        return -1;
    }
    Py_ssize_t n = seq ? PySequence_Fast_GET_SIZE(seq) : 0;
    const char **pairs = PyMem_Calloc((size_t)(2 * n + 1), sizeof *pairs);
    int rc = pairs ? 0 : -1;
    if (!pairs)
        PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n && !rc; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2 ||
            !(pairs[2 * i] = PyUnicode_AsUTF8(PyTuple_GET_ITEM(item, 0))) ||
            !(pairs[2 * i + 1] = PyUnicode_AsUTF8(PyTuple_GET_ITEM(item, 1)))) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "options must be (name, value) string pairs");
            rc = -1;
        }
    }
    if (!rc) {
        udfhost_error err;
        udfhost_dataset *ds = NULL;
        const char *path = PyBytes_AS_STRING(path_obj);
        int code;
        Py_BEGIN_ALLOW_THREADS
        code = udfhost_dataset_open(path, pairs, &ds, &err);
        Py_END_ALLOW_THREADS
        if (code) {
            raise_error(&err);
            rc = -1;
        } else {
            udfhost_dataset_close(self->ds);
            self->ds = ds;
        }
    }
    PyMem_Free(pairs);
    Py_XDECREF(seq);
    Py_DECREF(path_obj);
    return rc;
}

PyDoc_STRVAR(from_memory_doc,
             "from_memory(array, sig_dims) -> Dataset over a C-contiguous, native-order NumPy\n"
             "array, without a copy; the array is kept alive (and must not change) while the\n"
             "dataset lives.");

static PyObject *Dataset_from_memory(PyObject *cls, PyObject *args)
{
    PyObject *obj;
    unsigned sig_dims;
    if (!PyArg_ParseTuple(args, "O!I", &PyArray_Type, &obj, &sig_dims))
        return NULL;
    PyArrayObject *arr = (PyArrayObject *)obj;
    if (!PyArray_IS_C_CONTIGUOUS(arr) || !PyArray_ISNOTSWAPPED(arr))
        return PyErr_Format(PyExc_ValueError, "memory dataset: the array must be C-contiguous "
                            "and in native byte order");
    int nd = PyArray_NDIM(arr);
    if (nd > UDFHOST_MAX_DIMS)
        return PyErr_Format(ParameterError, "memory dataset: more than %d dimensions",
                            UDFHOST_MAX_DIMS);
    uint64_t shape[UDFHOST_MAX_DIMS];
    for (int i = 0; i < nd; i++)
        shape[i] = (uint64_t)PyArray_DIM(arr, i);
    const char *dtype = dtype_of(arr);
    if (!dtype)
        return PyErr_Format(ParameterError, "memory dataset: dtype %S is not supported for "
                            "frame data (uint8 uint16 uint32 int8 int16 int32 float32 float64 "
                            "are)", (PyObject *)PyArray_DESCR(arr));
    DatasetObject *self = (DatasetObject *)PyType_GenericNew((PyTypeObject *)cls, NULL, NULL);
    if (!self)
        return NULL;
    udfhost_error err;
    if (udfhost_dataset_from_memory(PyArray_DATA(arr), dtype, (uint32_t)nd, shape, sig_dims,
                                    &self->ds, &err)) {
        Py_DECREF(self);
        return raise_error(&err);
    }
    Py_INCREF(obj);
    self->array = obj;
    return (PyObject *)self;
}

static PyObject *shape_tuple(uint32_t n, const uint64_t *dims)
{
    PyObject *t = PyTuple_New(n);
    for (uint32_t i = 0; t && i < n; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong(dims[i]);
        if (!v) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, i, v);
    }
    return t;
}

static int ready(DatasetObject *self)
{
    if (!self->ds) {
        PyErr_SetString(PyExc_ValueError, "the dataset is closed");
        return 0;
    }
    return 1;
}

PyDoc_STRVAR(Dataset_info_doc, "info() -> dict: what `udfhost info` shows of the dataset.");

static PyObject *Dataset_info(DatasetObject *self, PyObject *unused)
{
    (void)unused;
    if (!ready(self))
        return NULL;
    udfhost_dataset_info i;
    udfhost_dataset_describe(self->ds, &i);
    return Py_BuildValue("{s:s,s:s,s:s,s:s,s:N,s:N,s:K,s:K,s:K,s:s,s:L}", "path", i.path,
                         "format", i.format, "dtype", i.dtype, "byte_order",
                         i.big_endian ? "big" : "little", "nav_shape",
                         shape_tuple(i.nav_ndim, i.nav_shape), "sig_shape",
                         shape_tuple(i.sig_ndim, i.sig_shape), "num_frames",
                         (unsigned long long)i.num_frames, "frame_bytes",
                         (unsigned long long)i.frame_bytes, "file_bytes",
                         (unsigned long long)i.file_bytes, "io", i.io,
                         "sync_offset", (long long)i.sync_offset);
}

PyDoc_STRVAR(Dataset_close_doc, "close(): unmap the file (or let go of the array) now.");

static PyObject *Dataset_close(DatasetObject *self, PyObject *unused)
{
    (void)unused;
    if (self->busy)
        return PyErr_Format(PyExc_RuntimeError, "the dataset is in use by a run");
    udfhost_dataset_close(self->ds);
    self->ds = NULL;
    Py_CLEAR(self->array);
    Py_RETURN_NONE;
}

static PyMethodDef Dataset_methods[] = {
    {"from_memory", (PyCFunction)Dataset_from_memory, METH_VARARGS | METH_CLASS, from_memory_doc},
    {"info", (PyCFunction)Dataset_info, METH_NOARGS, Dataset_info_doc},
    {"close", (PyCFunction)Dataset_close, METH_NOARGS, Dataset_close_doc},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject DatasetType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "udfhost._udfhost.Dataset",
    .tp_basicsize = sizeof(DatasetObject),
    .tp_dealloc = (destructor)Dataset_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Dataset(path, options=()): a dataset opened by libudfhost.",
    .tp_methods = Dataset_methods,
    .tp_init = (initproc)Dataset_init,
    .tp_new = PyType_GenericNew,
};

/* --- Run ----------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    udfhost_run *run;
    DatasetObject *dataset;
    pthread_mutex_t lock;     /* protects pending */
    udfhost_results *pending; /* the newest partial results not yet taken */
    _Atomic uint64_t done, total;
    _Atomic int executing;
    int lock_ready;
    int holds_dataset; /* counted in dataset->busy: until execute returned */
} RunObject;

static void Run_dealloc(RunObject *self)
{
    udfhost_run_free(self->run);
    if (self->holds_dataset)
        self->dataset->busy--;
    Py_XDECREF(self->dataset);
    udfhost_results_free(self->pending);
    if (self->lock_ready)
        pthread_mutex_destroy(&self->lock);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Run_init(RunObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"dataset", NULL};
    PyObject *ds;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!", kwlist, &DatasetType, &ds))
        return -1;
    if (self->run) {
        PyErr_SetString(PyExc_RuntimeError, "Run.__init__ called twice");
        return -1;
    }
    if (!ready((DatasetObject *)ds))
        return -1;
    udfhost_error err;
    if (udfhost_run_create(((DatasetObject *)ds)->ds, &self->run, &err)) {
        raise_error(&err);
        return -1;
    }
    pthread_mutex_init(&self->lock, NULL);
    self->lock_ready = 1;
    Py_INCREF(ds);
    self->dataset = (DatasetObject *)ds;
    self->dataset->busy++;
    self->holds_dataset = 1;
    return 0;
}

PyDoc_STRVAR(Run_add_plugin_doc,
             "add_plugin(spec, params=()) -> index: load a plugin (name or path) with its\n"
             "parameters as 'name=value' strings.");

static PyObject *Run_add_plugin(RunObject *self, PyObject *args)
{
    const char *spec;
    PyObject *params = NULL;
    if (!PyArg_ParseTuple(args, "s|O", &spec, &params))
        return NULL;
    PyObject *seq = params ? PySequence_Fast(params, "params must be a sequence") : NULL;
    if (params && !seq)
        return NULL;
    Py_ssize_t n = seq ? PySequence_Fast_GET_SIZE(seq) : 0;
    const char **list = PyMem_Calloc((size_t)n + 1, sizeof *list);
    PyObject *result = NULL;
    if (!list) {
        PyErr_NoMemory();
        goto out;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (!(list[i] = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(seq, i))))
            goto out;
    udfhost_error err;
    uint32_t index;
    if (udfhost_run_add_plugin(self->run, spec, list, &index, &err))
        raise_error(&err);
    else
        result = PyLong_FromUnsignedLong(index);
out:
    PyMem_Free(list);
    Py_XDECREF(seq);
    return result;
}

static PyObject *checked(int rc, const udfhost_error *err)
{
    if (rc)
        return raise_error(err);
    Py_RETURN_NONE;
}

static PyObject *Run_set_threads(RunObject *self, PyObject *args)
{
    unsigned n;
    if (!PyArg_ParseTuple(args, "I", &n))
        return NULL;
    udfhost_error err;
    return checked(udfhost_run_set_threads(self->run, n, &err), &err);
}

static PyObject *Run_set_partition_bytes(RunObject *self, PyObject *args)
{
    unsigned long long n;
    if (!PyArg_ParseTuple(args, "K", &n))
        return NULL;
    udfhost_error err;
    return checked(udfhost_run_set_partition_bytes(self->run, n, &err), &err);
}

PyDoc_STRVAR(Run_set_roi_doc, "set_roi(mask): one byte per frame (flat nav order), non-zero = "
                              "selected; any buffer, copied.");

static PyObject *Run_set_roi(RunObject *self, PyObject *args)
{
    Py_buffer b;
    if (!PyArg_ParseTuple(args, "y*", &b))
        return NULL;
    udfhost_error err;
    int rc = udfhost_run_set_roi(self->run, b.buf, (uint64_t)b.len, &err);
    PyBuffer_Release(&b);
    return checked(rc, &err);
}

/* obj (None or a C-contiguous native NumPy array) as a udfhost_array. 0 ok, -1 with an error. */
static int array_arg(PyObject *obj, udfhost_array *a, const char *what)
{
    if (!PyArray_Check(obj) || !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)obj) ||
        !PyArray_ISNOTSWAPPED((PyArrayObject *)obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be a C-contiguous NumPy array", what);
        return -1;
    }
    PyArrayObject *arr = (PyArrayObject *)obj;
    if (PyArray_NDIM(arr) > UDFHOST_MAX_DIMS) {
        PyErr_Format(DatasetError, "%s: more than %d dimensions", what, UDFHOST_MAX_DIMS);
        return -1;
    }
    if (!(a->dtype = dtype_of(arr))) {
        PyErr_Format(DatasetError, "%s: dtype %S is not supported", what,
                     (PyObject *)PyArray_DESCR(arr));
        return -1;
    }
    a->data = PyArray_DATA(arr);
    a->ndim = (uint32_t)PyArray_NDIM(arr);
    for (uint32_t i = 0; i < a->ndim; i++)
        a->shape[i] = (uint64_t)PyArray_DIM(arr, (int)i);
    return 0;
}

PyDoc_STRVAR(Run_set_corrections_doc,
             "set_corrections(dark, gain, excluded_pixels): arrays or None, copied.");

static PyObject *Run_set_corrections(RunObject *self, PyObject *args)
{
    PyObject *objs[3];
    if (!PyArg_ParseTuple(args, "OOO", &objs[0], &objs[1], &objs[2]))
        return NULL;
    static const char *const what[3] = {"dark", "gain", "excluded_pixels"};
    udfhost_array arrays[3];
    const udfhost_array *given[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) {
        if (objs[i] == Py_None)
            continue;
        if (array_arg(objs[i], &arrays[i], what[i]))
            return NULL;
        given[i] = &arrays[i];
    }
    udfhost_error err;
    return checked(udfhost_run_set_corrections(self->run, given[0], given[1], given[2], &err),
                   &err);
}

/* [execute's thread, no GIL] */
static void on_progress(void *arg, uint64_t done, uint64_t total)
{
    RunObject *self = arg;
    atomic_store(&self->done, done);
    atomic_store(&self->total, total);
}

/* [execute's thread, no GIL] Keep only the newest partial results: a consumer that falls behind
 * sees fewer snapshots, never an unbounded queue. */
static int on_partial(void *arg, udfhost_results *partial, udfhost_error *err)
{
    (void)err;
    RunObject *self = arg;
    pthread_mutex_lock(&self->lock);
    udfhost_results *old = self->pending;
    self->pending = partial;
    pthread_mutex_unlock(&self->lock);
    udfhost_results_free(old);
    return 0;
}

PyDoc_STRVAR(Run_enable_partial_doc,
             "enable_partial(every): keep partial results after every `every` merged\n"
             "partitions, for take_partial().");

static PyObject *Run_enable_partial(RunObject *self, PyObject *args)
{
    unsigned long long every;
    if (!PyArg_ParseTuple(args, "K", &every))
        return NULL;
    udfhost_error err;
    return checked(udfhost_run_set_partial(self->run, every, on_partial, self, &err), &err);
}

PyDoc_STRVAR(Run_execute_doc,
             "execute(): run every plugin over the dataset; blocks with the GIL released.\n"
             "Call it from a thread to watch progress or cancel.");

static PyObject *Run_execute(RunObject *self, PyObject *unused)
{
    (void)unused;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&self->executing, &expected, 1))
        return PyErr_Format(PyExc_RuntimeError, "the run is executing already");
    udfhost_error err;
    int rc = udfhost_run_set_progress(self->run, on_progress, self, &err);
    if (!rc) {
        Py_BEGIN_ALLOW_THREADS
        rc = udfhost_run_execute(self->run, &err);
        Py_END_ALLOW_THREADS
    }
    /* A run executes once and its results do not need the dataset: it may be closed now. */
    if (self->holds_dataset) {
        self->dataset->busy--;
        self->holds_dataset = 0;
    }
    return checked(rc, &err);
}

PyDoc_STRVAR(Run_cancel_doc, "cancel(): ask an executing run to stop (any thread).");

static PyObject *Run_cancel(RunObject *self, PyObject *unused)
{
    (void)unused;
    udfhost_run_cancel(self->run);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(Run_progress_doc, "progress() -> (frames_done, frames_total) so far.");

static PyObject *Run_progress(RunObject *self, PyObject *unused)
{
    (void)unused;
    return Py_BuildValue("(KK)", (unsigned long long)atomic_load(&self->done),
                         (unsigned long long)atomic_load(&self->total));
}

PyDoc_STRVAR(Run_take_partial_doc, "take_partial() -> Results or None: the newest partial "
                                   "results not yet taken.");

static PyObject *Run_take_partial(RunObject *self, PyObject *unused)
{
    (void)unused;
    pthread_mutex_lock(&self->lock);
    udfhost_results *res = self->pending;
    self->pending = NULL;
    pthread_mutex_unlock(&self->lock);
    if (!res)
        Py_RETURN_NONE;
    return results_wrap(res);
}

PyDoc_STRVAR(Run_take_results_doc, "take_results() -> Results of a successful execute.");

static PyObject *Run_take_results(RunObject *self, PyObject *unused)
{
    (void)unused;
    udfhost_results *res;
    udfhost_error err;
    if (udfhost_run_take_results(self->run, &res, &err))
        return raise_error(&err);
    return results_wrap(res);
}

static PyMethodDef Run_methods[] = {
    {"add_plugin", (PyCFunction)Run_add_plugin, METH_VARARGS, Run_add_plugin_doc},
    {"set_threads", (PyCFunction)Run_set_threads, METH_VARARGS, "set_threads(n): 0 = per core"},
    {"set_partition_bytes", (PyCFunction)Run_set_partition_bytes, METH_VARARGS,
     "set_partition_bytes(n): largest partition in bytes of input (0: default)"},
    {"set_roi", (PyCFunction)Run_set_roi, METH_VARARGS, Run_set_roi_doc},
    {"set_corrections", (PyCFunction)Run_set_corrections, METH_VARARGS, Run_set_corrections_doc},
    {"enable_partial", (PyCFunction)Run_enable_partial, METH_VARARGS, Run_enable_partial_doc},
    {"execute", (PyCFunction)Run_execute, METH_NOARGS, Run_execute_doc},
    {"cancel", (PyCFunction)Run_cancel, METH_NOARGS, Run_cancel_doc},
    {"progress", (PyCFunction)Run_progress, METH_NOARGS, Run_progress_doc},
    {"take_partial", (PyCFunction)Run_take_partial, METH_NOARGS, Run_take_partial_doc},
    {"take_results", (PyCFunction)Run_take_results, METH_NOARGS, Run_take_results_doc},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RunType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "udfhost._udfhost.Run",
    .tp_basicsize = sizeof(RunObject),
    .tp_dealloc = (destructor)Run_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Run(dataset): one run of plugins over a dataset (libudfhost's udfhost_run).",
    .tp_methods = Run_methods,
    .tp_init = (initproc)Run_init,
    .tp_new = PyType_GenericNew,
};

/* --- module -------------------------------------------------------------------------------- */

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "udfhost._udfhost",
    .m_doc = "The C extension under the udfhost package: libudfhost's API for Python.",
    .m_size = -1,
};

/* An exception class udfhost.NAME with the given bases, docstring and udfhost_code, added to
 * m. */
static PyObject *add_error(PyObject *m, const char *name, PyObject *bases, int code,
                           const char *doc)
{
    char full[64];
    snprintf(full, sizeof full, "udfhost.%s", name);
    PyObject *type = PyErr_NewExceptionWithDoc(full, doc, bases, NULL);
    Py_XDECREF(bases);
    if (type && PyModule_AddObjectRef(m, name, type) < 0)
        Py_CLEAR(type);
    /* Every instance has .code, also those the package raises itself: the class's code. */
    PyObject *value = type ? PyLong_FromLong(code) : NULL;
    if (type && (!value || PyObject_SetAttrString(type, "code", value) < 0))
        Py_CLEAR(type);
    Py_XDECREF(value);
    return type;
}

PyMODINIT_FUNC PyInit__udfhost(void);

PyMODINIT_FUNC PyInit__udfhost(void)
{
    import_array();
    if (PyType_Ready(&ResultsType) < 0 || PyType_Ready(&DatasetType) < 0 ||
        PyType_Ready(&RunType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    if (PyModule_AddObjectRef(m, "Results", (PyObject *)&ResultsType) < 0 ||
        PyModule_AddObjectRef(m, "Dataset", (PyObject *)&DatasetType) < 0 ||
        PyModule_AddObjectRef(m, "Run", (PyObject *)&RunType) < 0 ||
        PyModule_AddStringConstant(m, "version", udfhost_version()) < 0)
        goto fail;
    /* A mapped file that shrinks under a run must end the run with DatasetError, not the
     * interpreter: the package asks the library for its SIGBUS handler. */
    if (udfhost_guard_bus_errors())
        goto fail;
    UdfhostError = add_error(m, "UdfhostError", NULL, UDFHOST_EINTERNAL,
                             "Base of every udfhost error; str() is the one-line message and\n"
                             ".code the udfhost_code (the kind of failure).");
    if (!UdfhostError)
        goto fail;
#define ERR(var, name, other, code, doc)                                                           \
    if (!(var = add_error(m, name, other ? PyTuple_Pack(2, UdfhostError, other)                   \
                                         : PyTuple_Pack(1, UdfhostError), code, doc)))            \
    goto fail
    ERR(ParameterError, "ParameterError", PyExc_ValueError, UDFHOST_EUSAGE,
        "A bad option, parameter or argument (udfhost run's exit status 2).");
    ERR(DatasetError, "DatasetError", NULL, UDFHOST_EDATA,
        "Bad or unreadable input data: the dataset, ROI or corrections (exit status 3).");
    ERR(PluginError, "PluginError", NULL, UDFHOST_EPLUGIN,
        "A plugin failed to load or reported an error (exit status 4).");
    ERR(OutputError, "OutputError", PyExc_OSError, UDFHOST_EIO,
        "Writing results failed (exit status 5).");
    ERR(OutOfMemoryError, "OutOfMemoryError", PyExc_MemoryError, UDFHOST_ENOMEM,
        "Out of memory (exit status 6).");
    ERR(CancelledError, "CancelledError", NULL, UDFHOST_ECANCELLED,
        "The run was cancelled (Run.cancel() from another thread).");
#undef ERR
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
