/* Dataset options and .ini dataset descriptors (read with inih). */
#include "dsopt.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dtype.h"
#include "shape.h"

static int parse_sync(const char *v, const char *what, int64_t *out, err *e)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || errno)
        return err_set(e, UH_EUSAGE, "%s: '%s' is not a whole number", what, v);
    *out = n;
    return 0;
}

/* One setting, from the command line (what = "--name") or an .ini ("FILE:LINE: name"). */
static int set(dsopt *s, int id, const char *v, const char *what, err *e)
{
    ds_options *o = &s->ds;
    bool big, explicit_order;
    uint64_t n;
    switch (id) {
    case DSOPT_FORMAT: o->format = v; return 0;
    case DSOPT_DTYPE:
        if (dtype_parse(v, &o->dtype, &big, &explicit_order))
            return err_set(e, UH_EUSAGE, "%s: unknown dtype '%s'", what, v);
        s->dtype_order_explicit = explicit_order;
        if (explicit_order)
            o->big_endian = big;
        return 0;
    case DSOPT_BYTE_ORDER:
        if (strcmp(v, "little") && strcmp(v, "big"))
            return err_set(e, UH_EUSAGE, "%s: '%s' is neither little nor big", what, v);
        s->byte_order_given = true;
        s->big_endian_flag = !strcmp(v, "big");
        return 0;
    case DSOPT_NAV_SHAPE: return shape_parse(v, what, UDF_MAX_DIMS, o->nav_shape, &o->nav_ndim, e);
    case DSOPT_SIG_SHAPE: return shape_parse(v, what, UDF_MAX_DIMS, o->sig_shape, &o->sig_ndim, e);
    case DSOPT_OFFSET: return uint_parse(v, what, UINT64_MAX, &o->offset, e);
    case DSOPT_FRAME_HEADER: return uint_parse(v, what, UINT32_MAX, &o->frame_header, e);
    case DSOPT_FRAME_FOOTER: return uint_parse(v, what, UINT32_MAX, &o->frame_footer, e);
    case DSOPT_SIG_DIMS:
        if (uint_parse(v, what, UDF_MAX_DIMS, &n, e) || !n)
            return err_set(e, UH_EUSAGE, "%s: '%s' is not a number from 1 to %d", what, v,
                           UDF_MAX_DIMS);
        o->sig_dims = (uint32_t)n;
        return 0;
    case DSOPT_HDF5_PATH: o->hdf5_path = v; return 0;
    case DSOPT_SYNC_OFFSET:
        s->sync_given = true;
        return parse_sync(v, what, &o->sync_offset, e);
    case DSOPT_IO:
        if (!strcmp(v, "auto"))
            s->io = DS_IO_AUTO;
        else if (!strcmp(v, "mmap"))
            s->io = DS_IO_MMAP;
        else if (!strcmp(v, "read"))
            s->io = DS_IO_READ;
        else if (!strcmp(v, "direct"))
            s->io = DS_IO_DIRECT;
        else
            return err_set(e, UH_EUSAGE, "%s: '%s' is not auto, mmap, read or direct", what, v);
        return 0;
    }
    return err_set(e, UH_EINTERNAL, "unhandled dataset option %d", id);
}

int dsopt_handle(dsopt *s, int id, const char *value, err *e)
{
    static const char *const names[] = {"--format",       "--dtype",        "--byte-order",
                                        "--nav-shape",    "--sig-shape",    "--offset",
                                        "--frame-header", "--frame-footer", "--sig-dims",
                                        "--hdf5-path",    "--sync-offset",  "--io"};
    return set(s, id, value, names[id - DSOPT_FORMAT], e);
}

/* --- .ini descriptors ------------------------------------------------------------------------- */

static const struct {
    const char *key;
    int id;
} ini_keys[] = {
    {"format", DSOPT_FORMAT},         {"dtype", DSOPT_DTYPE},
    {"byte_order", DSOPT_BYTE_ORDER}, {"nav_shape", DSOPT_NAV_SHAPE},
    {"sig_shape", DSOPT_SIG_SHAPE},   {"offset", DSOPT_OFFSET},
    {"frame_header", DSOPT_FRAME_HEADER}, {"frame_footer", DSOPT_FRAME_FOOTER},
    {"sig_dims", DSOPT_SIG_DIMS},     {"hdf5_path", DSOPT_HDF5_PATH},
    {"sync_offset", DSOPT_SYNC_OFFSET}, {"io", DSOPT_IO},
};

#define INI_MAX_VALUES 32

typedef struct ini_state {
    const char *file;
    dsopt from_ini;          /* the descriptor's settings, merged afterwards */
    char *values[INI_MAX_VALUES]; /* copies the settings point into */
    unsigned n_values;
    char *path;              /* [dataset] path, as written */
    FILE *fp;
    int line;                /* of the line inih is handling (its handler gets no number) */
    err *e;
    int rc;
} ini_state;

/* inih's line reader, counting lines for messages. */
static char *ini_gets(char *str, int num, void *stream)
{
    ini_state *st = stream;
    char *r = fgets(str, num, st->fp);
    if (r)
        st->line++;
    return r;
}

static int ini_line(void *user, const char *section, const char *key, const char *value)
{
    ini_state *st = user;
    int line = st->line;
    if (st->rc)
        return 0;
    char what[512];
    snprintf(what, sizeof what, "%s:%d: %s", st->file, line, key);
    if (!*value) {
        st->rc = err_set(st->e, UH_EUSAGE, "%s: no value given", what);
        return 0;
    }
    if (!strcmp(section, "dataset")) {
        if (!strcmp(key, "path")) {
            free(st->path);
            if (!(st->path = strdup(value)))
                st->rc = err_set(st->e, UH_ENOMEM, "out of memory reading %s", st->file);
            return !st->rc;
        }
        for (size_t i = 0; i < sizeof ini_keys / sizeof ini_keys[0]; i++)
            if (!strcmp(key, ini_keys[i].key)) {
                if (st->n_values == INI_MAX_VALUES) {
                    st->rc = err_set(st->e, UH_EUSAGE, "%s: too many settings", what);
                    return 0;
                }
                char *copy = strdup(value);
                if (!copy) {
                    st->rc = err_set(st->e, UH_ENOMEM, "out of memory reading %s", st->file);
                    return 0;
                }
                st->values[st->n_values++] = copy;
                st->rc = set(&st->from_ini, ini_keys[i].id, copy, what, st->e);
                return !st->rc;
            }
        st->rc = err_set(st->e, UH_EUSAGE,
                         "%s:%d: unknown key '%s' in [dataset] (known: path, format, dtype, "
                         "byte_order, nav_shape, sig_shape, offset, frame_header, frame_footer, "
                         "sig_dims, hdf5_path, sync_offset, io)",
                         st->file, line, key);
        return 0;
    }
    if (!strcmp(section, "udfhost")) {
        if (!strcmp(key, "threads")) {
            if (uint_parse(value, what, 1024, &st->from_ini.threads, st->e) ||
                !st->from_ini.threads)
                st->rc = err_set(st->e, UH_EUSAGE, "%s: '%s' is not a number from 1 to 1024",
                                 what, value);
        } else if (!strcmp(key, "output")) {
            free(st->from_ini.output);
            if (!(st->from_ini.output = strdup(value)))
                st->rc = err_set(st->e, UH_ENOMEM, "out of memory reading %s", st->file);
        } else {
            st->rc = err_set(st->e, UH_EUSAGE,
                             "%s:%d: unknown key '%s' in [udfhost] (known: threads, output)",
                             st->file, line, key);
        }
        return !st->rc;
    }
    st->rc = err_set(st->e, UH_EUSAGE, "%s:%d: unknown section [%s] (known: dataset, udfhost)",
                     st->file, line, section);
    return 0;
}

static bool is_ini(const char *path)
{
    size_t n = strlen(path);
    return n > 4 && !strcasecmp(path + n - 4, ".ini");
}

/* The descriptor's data path, relative to the descriptor's directory unless absolute. */
static char *resolve(const char *ini, const char *path)
{
    if (path[0] == '/')
        return strdup(path);
    const char *slash = strrchr(ini, '/');
    size_t dir = slash ? (size_t)(slash - ini) + 1 : 0;
    char *out = malloc(dir + strlen(path) + 1);
    if (out) {
        memcpy(out, ini, dir);
        strcpy(out + dir, path);
    }
    return out;
}

/* Take from the descriptor what the command line left unset. */
static void merge(dsopt *s, const dsopt *f)
{
    ds_options *o = &s->ds;
    const ds_options *g = &f->ds;
    if (!o->format)
        o->format = g->format;
    if (o->dtype == UDF_DTYPE_NONE) {
        o->dtype = g->dtype;
        s->dtype_order_explicit = f->dtype_order_explicit;
        if (f->dtype_order_explicit)
            o->big_endian = g->big_endian;
    }
    if (!s->byte_order_given && f->byte_order_given) {
        s->byte_order_given = true;
        s->big_endian_flag = f->big_endian_flag;
    }
    if (!o->nav_ndim) {
        o->nav_ndim = g->nav_ndim;
        memcpy(o->nav_shape, g->nav_shape, sizeof o->nav_shape);
    }
    if (!o->sig_ndim) {
        o->sig_ndim = g->sig_ndim;
        memcpy(o->sig_shape, g->sig_shape, sizeof o->sig_shape);
    }
    if (!o->offset)
        o->offset = g->offset;
    if (!o->frame_header)
        o->frame_header = g->frame_header;
    if (!o->frame_footer)
        o->frame_footer = g->frame_footer;
    if (!o->sig_dims)
        o->sig_dims = g->sig_dims;
    if (!o->hdf5_path)
        o->hdf5_path = g->hdf5_path;
    if (!s->sync_given)
        o->sync_offset = g->sync_offset;
    if (s->io == DS_IO_AUTO)
        s->io = f->io;
    if (!s->threads)
        s->threads = f->threads;
}

static int load_ini(dsopt *s, err *e)
{
    const char *file = s->ds.path;
    FILE *fp = fopen(file, "r");
    if (!fp)
        return err_sys(e, errno == ENOMEM ? UH_ENOMEM : UH_EDATA, errno, "%s: cannot open", file);
    ini_state st = {.file = file, .e = e, .fp = fp};
    int line = ini_parse_stream(ini_gets, &st, ini_line, &st);
    /* fgets returns NULL on a read error as at the end: without this a failed read would pass
     * for a shorter file. */
    int read_errno = !ferror(fp) ? 0 : errno ? errno : EIO;
    fclose(fp);
    int rc = st.rc;
    if (!rc && read_errno)
        rc = err_sys(e, UH_EDATA, read_errno, "%s: read failed after line %d", file, st.line);
    if (!rc && line > 0)
        rc = err_set(e, UH_EUSAGE, "%s:%d: not an ini line (KEY = VALUE or [section])", file,
                     line);
    if (!rc && !st.path)
        rc = err_set(e, UH_EUSAGE, "%s: [dataset] has no path = DATAFILE", file);
    if (!rc) {
        merge(s, &st.from_ini);
        s->owned_path = resolve(file, st.path);
        if (!s->owned_path)
            rc = err_set(e, UH_ENOMEM, "out of memory reading %s", file);
        else
            s->ds.path = s->owned_path;
        if (!s->output && st.from_ini.output) {
            s->output = st.from_ini.output;
            st.from_ini.output = NULL;
        }
    }
    free(st.path);
    free(st.from_ini.output);
    /* Settings point into values: keep them as long as s lives, by handing them over. */
    if (!rc) {
        char **keep = realloc(NULL, (st.n_values + 1) * sizeof *keep);
        if (keep) {
            memcpy(keep, st.values, st.n_values * sizeof *keep);
            keep[st.n_values] = NULL;
            s->ini_values = keep;
            return 0;
        }
        rc = err_set(e, UH_ENOMEM, "out of memory reading %s", file);
    }
    for (unsigned i = 0; i < st.n_values; i++)
        free(st.values[i]);
    return rc;
}

int dsopt_finish(dsopt *s, err *e)
{
    int rc = 0;
    if (s->ds.path && is_ini(s->ds.path))
        rc = load_ini(s, e);
    if (!rc && s->byte_order_given && !s->dtype_order_explicit)
        s->ds.big_endian = s->big_endian_flag;
    s->ds.byte_order_given = s->byte_order_given || s->dtype_order_explicit;
    s->ds.io = s->io;
    return rc;
}

void dsopt_free(dsopt *s)
{
    free(s->owned_path);
    free(s->output);
    if (s->ini_values)
        for (char **v = s->ini_values; *v; v++)
            free(*v);
    free(s->ini_values);
    memset(s, 0, sizeof *s);
}
