/* `udfhost check-plugin`: load a plugin, check its declarations, then run it (this binary's own
 * `run`, in a child process) on small generated datasets and compare the results across thread
 * counts, partitionings and an ROI. Findings are printed one per line. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "dtype.h"
#include "npy.h"
#include "param.h"
#include "plan.h"
#include "plugin.h"

extern char **environ;

enum { OPT_HELP = 1, OPT_PARAM, OPT_VERBOSE, OPT_ALLOW_UNSAFE };

static const cli_option check_options[] = {
    {"param", 'p', "NAME=VALUE", "a parameter for every run (required ones must be given)",
     OPT_PARAM},
    {"verbose", 'v', NULL, "also say what was checked and each run", OPT_VERBOSE},
    {"allow-unsafe-plugins", 0, NULL,
     "load plugin files that others could have changed (see udfhost(1), PLUGIN SAFETY)",
     OPT_ALLOW_UNSAFE},
    {"help", 'h', NULL, "show this help and exit", OPT_HELP},
    {NULL, 0, NULL, NULL, 0},
};

static const char check_usage[] =
    "Usage: udfhost check-plugin [-v] [-p NAME=VALUE ...] PATH.so|NAME\n"
    "Load a plugin and check it: its descriptor and parameter declarations, the buffers it\n"
    "declares for a few datasets, then runs with `udfhost run` on generated data (uint16 and\n"
    "float32, odd shapes): results must be byte-identical for 1, 2 and 3 threads, agree between\n"
    "a few partitions and one frame per partition (a merge must combine partitions), and a run\n"
    "with an ROI must succeed with nav results NaN (float) or 0 (integer) outside it.\n"
    "Prints one finding per line (\"problem: ...\" or \"note: ...\"), then \"OK: ...\" and exits 0,\n"
    "or \"PROBLEMS: N\" and exits 4. A plugin that does not load counts as a problem.";

#define CHECK_MAX_PARAMS 256
/* The reference run uses the default partitioning: PLAN_MIN_PARTITIONS partitions of a few frames
 * each for these small datasets. The others use one frame per partition: the most merges, and
 * with the ROI many partitions without any frame. */
#define CHECK_FEW_PARTITIONS ((uint64_t)1 << 30) /* --partition-size beyond the whole dataset */

typedef struct check_args {
    const char *spec;
    const char *params[CHECK_MAX_PARAMS];
    unsigned n_params;
    int verbose;
    int help;
} check_args;

static int check_option(void *state, int id, const char *v, err *e)
{
    check_args *a = state;
    switch (id) {
    case OPT_HELP: a->help = 1; return 0;
    case OPT_VERBOSE: a->verbose = 1; return 0;
    case OPT_ALLOW_UNSAFE: plugin_allow_unsafe = true; return 0;
    case OPT_PARAM:
        if (a->n_params == CHECK_MAX_PARAMS)
            return err_set(e, UH_EUSAGE, "-p: more than %d parameters", CHECK_MAX_PARAMS);
        a->params[a->n_params++] = v;
        return 0;
    default:
        if (a->spec)
            return err_set(e, UH_EUSAGE, "check-plugin takes one plugin");
        a->spec = v;
        return 0;
    }
}

/* The state of one check: the plugin, where its files go, and the findings so far. */
typedef struct checker {
    const check_args *args;
    plugin *pl;
    char plugin_path[PATH_MAX]; /* absolute: the child runs with its own -o */
    char exe[PATH_MAX];         /* this udfhost */
    char tmp[PATH_MAX];         /* temporary directory, removed at the end */
    unsigned problems;
    unsigned runs;
} checker;

static void problem(checker *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(checker *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(checker *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("problem: ", stdout);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    c->problems++;
}

static void note(checker *c, const char *fmt, ...)
{
    (void)c;
    va_list ap;
    va_start(ap, fmt);
    fputs("note: ", stdout);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
}

/* --- declarations ------------------------------------------------------------------------------ */

static void check_params(checker *c)
{
    const udf_plugin *d = &c->pl->desc;
    for (uint32_t i = 0; i < c->pl->n_params; i++) {
        const udf_param_decl *p = &d->params[i];
        char why[256];
        /* plugin_load checked the defaults already; a second look costs nothing and keeps this
         * check true if the loader ever gets more lenient. */
        if (p->default_value && param_value_check(p, p->default_value, why, sizeof why))
            problem(c, "parameter '%s': its default %s", p->name, why);
        if ((p->flags & UDF_PARAM_REQUIRED) && p->default_value)
            note(c, "parameter '%s' is required and has a default ('%s'), which is never used",
                 p->name, p->default_value);
        if (p->type == UDF_PARAM_CHOICE && p->choices &&
            (strstr(p->choices, "||") || p->choices[0] == '|' ||
             p->choices[strlen(p->choices) - 1] == '|'))
            problem(c, "parameter '%s': choices '%s' contain an empty word", p->name, p->choices);
        if (p->min > p->max)
            note(c, "parameter '%s': range [%g, %g] is empty, so it is ignored", p->name, p->min,
                 p->max);
        if (!p->help || !*p->help)
            note(c, "parameter '%s' has no help text (plugin-info shows an empty line)", p->name);
    }
}

static void check_descriptor(checker *c)
{
    const udf_plugin *d = &c->pl->desc;
    if (!d->description || !*d->description)
        note(c, "no description (list-plugins and plugin-info show nothing)");
    int hooks = !!d->process_tile + !!d->process_frame + !!d->process_partition;
    if (hooks > 1)
        note(c, "several process hooks: only %s is used",
             d->process_tile ? "process_tile" : "process_frame");
    const char *base = strrchr(c->plugin_path, '/');
    base = base ? base + 1 : c->plugin_path;
    size_t len = strlen(d->name);
    if (strncmp(base, d->name, len) || strcmp(base + len, ".so"))
        note(c, "the file is %s but the plugin calls itself '%s': --plugin %s will not find it, "
             "and results are named %s.BUFFER.npy", base, d->name, d->name, d->name);
    check_params(c);
}

/* A generated dataset: raw little-endian frames of one dtype. */
typedef struct dataset {
    const char *label;
    udf_dtype dtype;
    uint32_t nav_ndim, sig_ndim;
    uint64_t nav[2], sig[2];
} dataset;

/* Odd shapes, so that no size is a multiple of another or of a vector width. */
static const dataset datasets[] = {
    {"uint16 data, scan 5x7 of 9x11 frames", UDF_U16, 2, 2, {5, 7}, {9, 11}},
    {"float32 data, scan 3x11 of 7x13 frames", UDF_F32, 2, 2, {3, 11}, {7, 13}},
};

static udf_meta dataset_meta(const dataset *ds)
{
    udf_meta m = {.struct_size = sizeof m, .nav_ndim = ds->nav_ndim, .sig_ndim = ds->sig_ndim,
                  .raw_dtype = ds->dtype, .num_frames = 1, .sig_size = 1};
    for (uint32_t i = 0; i < ds->nav_ndim; i++)
        m.num_frames *= m.nav_shape[i] = ds->nav[i];
    for (uint32_t i = 0; i < ds->sig_ndim; i++)
        m.sig_size *= m.sig_shape[i] = ds->sig[i];
    m.selected_frames = m.num_frames;
    return m;
}

/* Run declare_buffers for meta afresh (the plugin keeps the declarations of the last call).
 * Returns 0, 1 when the plugin does not support the dataset (noted), 2 on a problem (reported),
 * or a negative status for a failure that ends the check (parameters refused). */
static int declare_for(checker *c, const udf_meta *meta, const char *what, err *e)
{
    plugin *pl = c->pl;
    pl->n_buffers = 0;
    err de = {0};
    if (plugin_declare(pl, meta, &de)) {
        if (de.code == UH_EUSAGE)
            return err_set(e, UH_EUSAGE, "%s (give its parameters to check-plugin with -p)",
                           de.msg);
        if (strstr(de.msg, "(status -4)")) {
            note(c, "does not support %s: %s", what, de.msg);
            return 1;
        }
        problem(c, "declaring buffers for %s: %s", what, de.msg);
        return 2;
    }
    for (uint32_t i = 0; i < pl->n_buffers; i++) {
        const plugin_buffer *b = &pl->buffers[i];
        if ((b->decl.flags & UDF_BUFFER_RESULT_ONLY) && !pl->desc.get_results)
            problem(c, "buffer '%s' is result-only but there is no get_results hook to fill it: "
                    "it stays all zeros", b->name);
        if ((b->decl.flags & UDF_BUFFER_RESULT_ONLY) && (b->decl.flags & UDF_BUFFER_PRIVATE))
            note(c, "buffer '%s' is result-only and private: never merged nor written", b->name);
    }
    return 0;
}

/* --- files --------------------------------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static int write_file(const char *path, const void *data, size_t len, err *e)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return err_sys(e, errno == ENOMEM ? UH_ENOMEM : UH_EIO, errno, "%s", path);
    size_t done = fwrite(data, 1, len, f);
    int err_no = done != len ? errno : 0;
    if (fclose(f) && !err_no)
        err_no = errno;
    if (err_no)
        return err_sys(e, UH_EIO, err_no, "%s: write failed at offset %zu", path, done);
    return 0;
}

/* Whole file into *out (malloc'ed, caller frees). */
static int read_file(const char *path, unsigned char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t cap = 4096, n = 0;
    unsigned char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            unsigned char *more = realloc(buf, cap *= 2);
            if (!more)
                free(buf);
            buf = more;
        }
    }
    fclose(f);
    *out = buf;
    *len = n;
    return buf ? 0 : -1;
}

/* Deterministic pseudo-random frames in little-endian byte order: uint16 in [0, 4096) (sums stay
 * exact in float32), float32 with fractions and some negative values. */
static int dataset_write(const dataset *ds, const char *path, err *e)
{
    udf_meta m = dataset_meta(ds);
    size_t count = (size_t)(m.num_frames * m.sig_size), size = udf_dtype_size(ds->dtype);
    unsigned char *buf = malloc(count * size);
    if (!buf)
        return err_set(e, UH_ENOMEM, "out of memory");
    uint32_t state = 20261129u;
    for (size_t i = 0; i < count; i++) {
        state = state * 1664525u + 1013904223u; /* Numerical Recipes' LCG */
        uint32_t bits = state >> 8;
        if (ds->dtype == UDF_U16) {
            bits &= 4095;
        } else {
            float v = (float)(bits % 100000) / 64.0f - 200.0f;
            memcpy(&bits, &v, 4);
        }
        for (size_t k = 0; k < size; k++)
            buf[i * size + k] = (unsigned char)(bits >> (8 * k));
    }
    int rc = write_file(path, buf, count * size, e);
    free(buf);
    return rc;
}

/* The ROI: every fifth frame, starting at 1, and the last; most partitions of one frame have no
 * selected frame at all, and are skipped. */
static int roi_selected(uint64_t i, uint64_t n)
{
    return i % 5 == 1 || i == n - 1;
}

static int roi_write(const dataset *ds, const char *path, err *e)
{
    udf_meta m = dataset_meta(ds);
    uint8_t *mask = malloc(m.num_frames);
    if (!mask)
        return err_set(e, UH_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < m.num_frames; i++)
        mask[i] = (uint8_t)roi_selected(i, m.num_frames);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int rc = fd < 0 ? err_sys(e, UH_EIO, errno, "%s", path)
                    : npy_write_fd(fd, path, UDF_BOOL, m.nav_ndim, m.nav_shape, mask, e);
    if (fd >= 0 && close(fd) && !rc)
        rc = err_sys(e, UH_EIO, errno, "%s", path);
    free(mask);
    return rc;
}

/* --- runs ---------------------------------------------------------------------------------------- */

/* One `udfhost run` of the plugin. */
typedef struct run_spec {
    const dataset *ds;
    const char *data;
    const char *roi;      /* NULL: none */
    unsigned threads;
    uint64_t partition;   /* bytes */
    char out[PATH_MAX + 64]; /* result directory */
    char what[160];       /* for messages */
} run_spec;

static void shape_text(char *out, size_t cap, const uint64_t *dims, uint32_t n)
{
    out[0] = '\0';
    for (uint32_t i = 0; i < n; i++)
        snprintf(out + strlen(out), cap - strlen(out), "%s%llu", i ? "," : "",
                 (unsigned long long)dims[i]);
}

/* The most telling line of the child's stderr: a sanitizer report, else udfhost's message. */
static void stderr_summary(const char *path, char *out, size_t cap)
{
    unsigned char *text;
    size_t len;
    snprintf(out, cap, "no message");
    if (read_file(path, &text, &len))
        return;
    char *s = (char *)text;
    s[len ? len - 1 : 0] = '\0';
    char *line = strstr(s, "ERROR: AddressSanitizer");
    if (!line)
        line = strstr(s, "runtime error:");
    if (!line)
        line = strstr(s, "udfhost: ");
    if (!line)
        line = s;
    char *end = strchr(line, '\n');
    snprintf(out, cap, "%.*s", end ? (int)(end - line) : (int)strlen(line), line);
    free(text);
}

/* Run; returns 0, 1 when the run failed (why in msg), or a status for a failure of the check. */
static int run_plugin(checker *c, run_spec *r, char *msg, size_t cap, err *e)
{
    char threads[16], part[32], nav[64], sig[64], errpath[PATH_MAX + 80];
    snprintf(threads, sizeof threads, "%u", r->threads);
    snprintf(part, sizeof part, "%llu", (unsigned long long)r->partition);
    shape_text(nav, sizeof nav, r->ds->nav, r->ds->nav_ndim);
    shape_text(sig, sizeof sig, r->ds->sig, r->ds->sig_ndim);
    snprintf(errpath, sizeof errpath, "%s.stderr", r->out);
    const char *argv[32 + 2 * CHECK_MAX_PARAMS];
    int n = 0;
    argv[n++] = c->exe;
    argv[n++] = "run";
    argv[n++] = "-q";
    if (plugin_allow_unsafe)
        argv[n++] = "--allow-unsafe-plugins";
    argv[n++] = "--plugin";
    argv[n++] = c->plugin_path;
    for (unsigned i = 0; i < c->args->n_params; i++) {
        argv[n++] = "-p";
        argv[n++] = c->args->params[i];
    }
    const char *fixed[] = {"--format", "raw", "--dtype", dtype_name(r->ds->dtype), "--byte-order",
                           "little", "--nav-shape", nav, "--sig-shape", sig, "--threads", threads,
                           "--partition-size", part, "-o", r->out};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        argv[n++] = fixed[i];
    if (r->roi) {
        argv[n++] = "--roi";
        argv[n++] = r->roi;
    }
    argv[n++] = r->data;
    argv[n] = NULL;

    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa))
        return err_set(e, UH_ENOMEM, "out of memory");
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawn(&pid, c->exe, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc)
        return err_sys(e, UH_EINTERNAL, rc, "check-plugin: cannot run %s", c->exe);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return err_sys(e, UH_EINTERNAL, errno, "check-plugin: waitpid");
    c->runs++;
    if (c->args->verbose)
        printf("ran %s: %s\n", r->what,
               WIFEXITED(status) && !WEXITSTATUS(status) ? "ok" : "failed");
    if (WIFEXITED(status) && !WEXITSTATUS(status))
        return 0;
    char why[600];
    stderr_summary(errpath, why, sizeof why);
    if (WIFSIGNALED(status))
        snprintf(msg, cap, "killed by signal %d (%s)", WTERMSIG(status), why);
    else
        snprintf(msg, cap, "exit %d: %s", WEXITSTATUS(status), why);
    return 1;
}

static char *result_path(const run_spec *r, const plugin *pl, const plugin_buffer *b)
{
    char *p;
    return asprintf(&p, "%s/%s.%s.npy", r->out, pl->desc.name, b->name) < 0 ? NULL : p;
}

/* Element i of a native-order array as a double. */
static double element(const void *data, udf_dtype t, uint64_t i)
{
    switch (t) {
    case UDF_U8: case UDF_BOOL: return ((const uint8_t *)data)[i];
    case UDF_I8: return ((const int8_t *)data)[i];
    case UDF_U16: return ((const uint16_t *)data)[i];
    case UDF_I16: return ((const int16_t *)data)[i];
    case UDF_U32: return ((const uint32_t *)data)[i];
    case UDF_I32: return ((const int32_t *)data)[i];
    case UDF_U64: return (double)((const uint64_t *)data)[i];
    case UDF_I64: return (double)((const int64_t *)data)[i];
    case UDF_F32: return ((const float *)data)[i];
    case UDF_F64: return ((const double *)data)[i];
    default: return 0;
    }
}

/* Read a result; 0 or -1 (reported as a problem). */
static int result_read(checker *c, const char *path, const plugin_buffer *b, const run_spec *r,
                       npy_info *info, void **data)
{
    err le = {0};
    if (npy_read_file(path, (uint64_t)1 << 30, info, data, &le)) {
        problem(c, "%s: no readable result for buffer '%s': %s", r->what, b->name, le.msg);
        return -1;
    }
    return 0;
}

/* Same files, byte for byte, for every written buffer. */
static void compare_identical(checker *c, const run_spec *a, const run_spec *b, const char *why)
{
    const plugin *pl = c->pl;
    for (uint32_t i = 0; i < pl->n_buffers; i++) {
        const plugin_buffer *buf = &pl->buffers[i];
        if (buf->decl.flags & UDF_BUFFER_PRIVATE)
            continue;
        char *pa = result_path(a, pl, buf), *pb = result_path(b, pl, buf);
        unsigned char *da = NULL, *db = NULL;
        size_t la = 0, lb = 0;
        int ra = pa ? read_file(pa, &da, &la) : -1, rb = pb ? read_file(pb, &db, &lb) : -1;
        if (ra || rb)
            problem(c, "%s: buffer '%s' has no result file", ra ? a->what : b->what, buf->name);
        else if (la != lb || memcmp(da, db, la))
            problem(c, "non-deterministic: results differ between %s in buffer '%s' (%s)", why,
                    buf->name, a->ds->label);
        free(da);
        free(db);
        free(pa);
        free(pb);
    }
}

/* Few partitions against many: equal up to rounding (integers exactly), else the merge does not
 * combine partitions the way processing them together would. */
static void compare_partitionings(checker *c, const run_spec *few, const run_spec *many,
                                  unsigned n_few, unsigned n_many)
{
    const plugin *pl = c->pl;
    for (uint32_t i = 0; i < pl->n_buffers; i++) {
        const plugin_buffer *buf = &pl->buffers[i];
        if (buf->decl.flags & UDF_BUFFER_PRIVATE)
            continue;
        char *pa = result_path(few, pl, buf), *pb = result_path(many, pl, buf);
        npy_info ia, ib;
        void *da = NULL, *db = NULL;
        if (pa && pb && !result_read(c, pa, buf, few, &ia, &da) &&
            !result_read(c, pb, buf, many, &ib, &db)) {
            uint64_t n = ia.data_bytes / (udf_dtype_size(ia.dtype) ? udf_dtype_size(ia.dtype) : 1);
            /* float32 sums of a few thousand values in another order differ by far less than
             * 1e-4 of the largest; float64 by far less than 1e-9. */
            double tol = ia.dtype == UDF_F32 ? 1e-4 : ia.dtype == UDF_F64 ? 1e-9 : 0;
            double scale = 0, worst = 0;
            uint64_t where = 0, bad = 0;
            for (uint64_t k = 0; ia.data_bytes == ib.data_bytes && k < n; k++) {
                double x = fabs(element(da, ia.dtype, k));
                scale = isfinite(x) && x > scale ? x : scale;
            }
            for (uint64_t k = 0; ia.data_bytes == ib.data_bytes && k < n; k++) {
                double x = element(da, ia.dtype, k), y = element(db, ib.dtype, k);
                if (isnan(x) && isnan(y))
                    continue;
                double d = x == y ? 0 : isnan(x) || isnan(y) ? INFINITY : fabs(x - y);
                if (d > tol * (scale > 1 ? scale : 1)) {
                    if (!bad++ || d > worst)
                        worst = d, where = k;
                }
            }
            if (ia.dtype != ib.dtype || ia.data_bytes != ib.data_bytes)
                problem(c, "buffer '%s' has another dtype or shape with %u partitions than with "
                        "%u (%s)", buf->name, n_many, n_few, few->ds->label);
            else if (bad)
                problem(c, "results depend on the partitioning: buffer '%s' differs between %u "
                        "and %u partitions in %llu of %llu elements (element %llu: %g vs %g): merge "
                        "must combine every partition into the result (e.g. add), not replace it "
                        "(%s)", buf->name, n_few, n_many, (unsigned long long)bad,
                        (unsigned long long)n, (unsigned long long)where,
                        element(da, ia.dtype, where), element(db, ib.dtype, where),
                        few->ds->label);
        }
        free(da);
        free(db);
        free(pa);
        free(pb);
    }
}

/* Nav results outside the ROI must be NaN (float) or 0 (integer). */
static void check_outside_roi(checker *c, const run_spec *r, const udf_meta *m)
{
    const plugin *pl = c->pl;
    for (uint32_t i = 0; i < pl->n_buffers; i++) {
        const plugin_buffer *buf = &pl->buffers[i];
        if (buf->decl.kind != UDF_KIND_NAV || (buf->decl.flags & UDF_BUFFER_PRIVATE))
            continue;
        char *p = result_path(r, pl, buf);
        npy_info info;
        void *data = NULL;
        if (p && !result_read(c, p, buf, r, &info, &data)) {
            int is_float = dtype_is_float(info.dtype);
            uint64_t wrong = 0;
            for (uint64_t f = 0; f < m->num_frames; f++)
                for (uint64_t k = 0; !roi_selected(f, m->num_frames) && k < buf->extra_size; k++) {
                    double v = element(data, info.dtype, f * buf->extra_size + k);
                    wrong += is_float ? !isnan(v) : v != 0;
                }
            if (wrong)
                problem(c, "%s: nav buffer '%s' has %llu values outside the ROI that are not %s",
                        r->what, buf->name, (unsigned long long)wrong, is_float ? "NaN" : "0");
        }
        free(data);
        free(p);
    }
}

static void spec_init(checker *c, run_spec *r, const dataset *ds, const char *data, const char *roi,
                      unsigned threads, uint64_t partition, const char *name)
{
    r->ds = ds;
    r->data = data;
    r->roi = roi;
    r->threads = threads;
    r->partition = partition;
    snprintf(r->out, sizeof r->out, "%s/%s", c->tmp, name);
    snprintf(r->what, sizeof r->what, "%s, %u thread%s, %s%s", ds->label, threads,
             threads > 1 ? "s" : "", partition == CHECK_FEW_PARTITIONS ? "default partitions"
                                                                       : "1 frame per partition",
             roi ? ", ROI" : "");
}

/* A failed run is a problem, unless the plugin refused this dataset: UDF_ERR_UNSUPPORTED (status
 * -4), or UDF_ERR_PARAM from setup, which the run reports as a usage error (exit 2): the
 * parameters do not fit this dataset or ROI. The remaining runs on the dataset are skipped. */
static void run_failed(checker *c, const run_spec *r, const char *why)
{
    int refused = !strncmp(why, "exit 2:", 7);
    if (refused || strstr(why, "(status -4)"))
        note(c, "skipped %s: the plugin %s it: %s", r->what,
             refused ? "refuses its parameters for" : "does not support", why);
    else
        problem(c, "run failed on %s: %s", r->what, why);
}

/* The runs on one dataset (index k). */
static int check_dataset(checker *c, size_t k, err *e)
{
    const dataset *ds = &datasets[k];
    udf_meta m = dataset_meta(ds);
    int rc = declare_for(c, &m, ds->label, e);
    if (rc)
        return rc < 0 ? rc : 0; /* unsupported or broken for this dataset: no runs */
    char data[PATH_MAX + 32], roi[PATH_MAX + 32], name[64];
    snprintf(data, sizeof data, "%s/data%zu.raw", c->tmp, k);
    snprintf(roi, sizeof roi, "%s/roi%zu.npy", c->tmp, k);
    if ((rc = dataset_write(ds, data, e)) || (rc = roi_write(ds, roi, e)))
        return rc;
    uint64_t small = m.sig_size * udf_dtype_size(ds->dtype); /* one frame */
    unsigned n_few = m.num_frames < PLAN_MIN_PARTITIONS ? (unsigned)m.num_frames
                                                        : PLAN_MIN_PARTITIONS;
    char why[800];

    run_spec few, many[3], with_roi[2];
    snprintf(name, sizeof name, "out%zu-few", k);
    spec_init(c, &few, ds, data, NULL, 1, CHECK_FEW_PARTITIONS, name);
    if ((rc = run_plugin(c, &few, why, sizeof why, e)) < 0)
        return rc;
    if (rc) {
        run_failed(c, &few, why);
        return 0;
    }
    for (unsigned t = 0; t < 3; t++) {
        snprintf(name, sizeof name, "out%zu-many%u", k, t + 1);
        spec_init(c, &many[t], ds, data, NULL, t + 1, small, name);
        if ((rc = run_plugin(c, &many[t], why, sizeof why, e)) < 0)
            return rc;
        if (rc) {
            run_failed(c, &many[t], why);
            return 0;
        }
    }
    compare_partitionings(c, &few, &many[0], n_few, (unsigned)m.num_frames);
    compare_identical(c, &many[0], &many[1], "1 and 2 threads");
    compare_identical(c, &many[0], &many[2], "1 and 3 threads");
    for (unsigned t = 0; t < 2; t++) {
        snprintf(name, sizeof name, "out%zu-roi%u", k, t);
        spec_init(c, &with_roi[t], ds, data, roi, t ? 3 : 1, small, name);
        if ((rc = run_plugin(c, &with_roi[t], why, sizeof why, e)) < 0)
            return rc;
        if (rc) {
            run_failed(c, &with_roi[t], why);
            return 0;
        }
    }
    check_outside_roi(c, &with_roi[0], &m);
    compare_identical(c, &with_roi[0], &with_roi[1], "1 and 3 threads with an ROI");
    return 0;
}

static int checker_prepare(checker *c, err *e)
{
    ssize_t n = readlink("/proc/self/exe", c->exe, sizeof c->exe - 1);
    if (n < 0)
        return err_sys(e, UH_EINTERNAL, errno, "check-plugin: cannot find the udfhost binary "
                       "(/proc/self/exe)");
    c->exe[n] = '\0';
    const char *t = getenv("TMPDIR");
    snprintf(c->tmp, sizeof c->tmp, "%s/udfhost-check-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(c->tmp))
        return err_sys(e, UH_EIO, errno, "check-plugin: cannot create a temporary directory in %s",
                       t && *t ? t : "/tmp");
    return 0;
}

static int check_loaded(checker *c, err *e)
{
    plugin *pl = c->pl;
    int rc;
    for (unsigned i = 0; i < c->args->n_params; i++)
        if ((rc = plugin_param_add(pl, c->args->params[i], e)))
            return rc;
    for (uint32_t i = 0; i < pl->n_params; i++) {
        const udf_param_decl *p = &pl->desc.params[i];
        uint32_t j = 0;
        while (j < pl->n_given && pl->given[j].decl != p)
            j++;
        if ((p->flags & UDF_PARAM_REQUIRED) && j == pl->n_given)
            return err_set(e, UH_EUSAGE, "plugin %s: parameter '%s' is required: give a value "
                           "with check-plugin -p %s=VALUE", pl->desc.name, p->name, p->name);
    }
    check_descriptor(c);
    /* The nominal dataset plugin-info shows: a 16 x 16 scan of 256 x 256 uint16 frames. */
    udf_meta nominal = {.struct_size = sizeof nominal, .nav_ndim = 2, .nav_shape = {16, 16},
                        .sig_ndim = 2, .sig_shape = {256, 256}, .num_frames = 256,
                        .sig_size = 65536, .raw_dtype = UDF_U16, .selected_frames = 256};
    rc = declare_for(c, &nominal, "a 16x16 scan of 256x256 uint16 frames", e);
    if (rc < 0)
        return rc;
    if (!rc && !pl->n_buffers)
        note(c, "declares no buffers: a run writes no result files");
    if (c->args->verbose)
        printf("checked the descriptor, %u parameter%s and the buffer declarations\n",
               pl->n_params, pl->n_params == 1 ? "" : "s");
    if ((rc = checker_prepare(c, e)))
        return rc;
    for (size_t k = 0; k < sizeof datasets / sizeof datasets[0] && !rc; k++)
        rc = check_dataset(c, k, e);
    nftw(c->tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}

int cmd_check_plugin(int argc, char **argv, err *e)
{
    check_args a = {0};
    int rc = cli_parse(argc, argv, check_options, check_option, &a, e);
    if (rc)
        return rc;
    if (a.help) {
        cli_help(stdout, check_usage, check_options);
        return 0;
    }
    if (!a.spec)
        return err_set(e, UH_EUSAGE, "no plugin given (see udfhost check-plugin --help)");
    checker c = {.args = &a};
    err le = {0};
    if ((rc = plugin_load(a.spec, &c.pl, &le))) {
        if (rc != UH_EPLUGIN) {
            *e = le;
            return rc;
        }
        problem(&c, "does not load: %s", le.msg);
    } else {
        if (!realpath(c.pl->path, c.plugin_path))
            rc = err_sys(e, UH_EUSAGE, errno, "%s", c.pl->path);
        else
            rc = check_loaded(&c, e);
        if (!rc && !c.problems)
            printf("OK: %s %s (%s): descriptor, %u parameter%s, %u buffer%s, %u runs on "
                   "generated data\n", c.pl->desc.name, c.pl->desc.version, c.plugin_path,
                   c.pl->n_params, c.pl->n_params == 1 ? "" : "s", c.pl->n_buffers,
                   c.pl->n_buffers == 1 ? "" : "s", c.runs);
        plugin_unload(c.pl);
        if (rc)
            return rc;
    }
    if (!c.problems)
        return 0;
    printf("PROBLEMS: %u\n", c.problems);
    return err_set(e, UH_EPLUGIN, "check-plugin: %s: %u problem%s found", a.spec, c.problems,
                   c.problems == 1 ? "" : "s");
}
