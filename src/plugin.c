/* Plugin loading and checking: finding the .so, the ABI handshake (entry name, major, struct size,
 * signature), descriptor validation, buffer declarations, and the udf_host services table. */
#include "plugin.h"

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "array.h"
#include "convert.h"
#include "dtype.h"
#include "npy.h"
#include "param.h"
#include "sig.h"

const char *plugin_install_dir(void)
{
    return UDFHOST_PLUGIN_DIR;
}

static int is_file(const char *path)
{
    struct stat st;
    return !stat(path, &st) && S_ISREG(st.st_mode);
}

static int valid_name(const char *s)
{
    if (!*s || strlen(s) >= PLUGIN_NAME_MAX)
        return 0;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_'))
            return 0;
    return 1;
}

/* Find the file for a plugin name; *path is malloc'ed. */
static int plugin_find(const char *spec, char **path, err *e)
{
    if (strchr(spec, '/')) {
        if (!is_file(spec))
            return err_set(e, UH_EUSAGE, "plugin %s: no such file", spec);
        return (*path = strdup(spec)) ? 0 : err_set(e, UH_ENOMEM, "out of memory");
    }
    if (!valid_name(spec))
        return err_set(e, UH_EUSAGE,
                       "--plugin %s: not a plugin name ([a-z0-9_]+) nor a path (containing '/')",
                       spec);
    char searched[1024] = "";
    const char *env = getenv("UDFHOST_PLUGIN_PATH");
    char *dirs = NULL;
    if (asprintf(&dirs, "%s%s%s", env ? env : "", env && *env ? ":" : "", UDFHOST_PLUGIN_DIR) < 0)
        return err_set(e, UH_ENOMEM, "out of memory");
    int rc = 1;
    for (char *save = NULL, *dir = strtok_r(dirs, ":", &save); dir && rc == 1;
         dir = strtok_r(NULL, ":", &save)) {
        char *candidate;
        if (asprintf(&candidate, "%s/%s.so", dir, spec) < 0) {
            rc = err_set(e, UH_ENOMEM, "out of memory");
            break;
        }
        if (is_file(candidate)) {
            *path = candidate;
            rc = 0;
        } else {
            free(candidate);
            snprintf(searched + strlen(searched), sizeof searched - strlen(searched), "%s%s",
                     *searched ? ", " : "", dir);
        }
    }
    free(dirs);
    if (rc == 1)
        rc = err_set(e, UH_EUSAGE, "plugin '%s' not found (searched %s; set UDFHOST_PLUGIN_PATH "
                     "or give a path)", spec, searched);
    return rc;
}

bool plugin_allow_unsafe = false;

/* The file's group is the user's private group (named as the user, with no other members): the
 * usual primary group under umask 002, where group write gives nobody else access. */
static bool private_group(gid_t gid)
{
    const struct passwd *pw = getpwuid(geteuid());
    const struct group *gr = getgrgid(gid);
    if (!pw || !gr || pw->pw_gid != gid || strcmp(pw->pw_name, gr->gr_name))
        return false;
    for (char **m = gr->gr_mem; *m; m++)
        if (strcmp(*m, pw->pw_name))
            return false;
    return true;
}

/* Refuse a plugin someone else could have changed: dlopen runs its constructors, and every hook
 * runs with our rights. The file must not be writable by others, nor by its group unless that is
 * the user's private group. Its directory must not be writable by others (who could put another
 * file under its name), unless it has the sticky bit, as /tmp does: there only owners can
 * replace a file, so the file must be ours or root's. Both the directory named and, through
 * symbolic links, the file's real directory are checked. Group-writable directories are allowed:
 * shared installations (a group's plugin directory) have them, and their members are trusted as
 * the group's files are. Returns 0 or UH_EPLUGIN saying why. */
static int path_check_safe(const char *path, err *e)
{
    static const char hint[] = "give --allow-unsafe-plugins to load it anyway";
    struct stat st;
    if (stat(path, &st))
        return err_sys(e, UH_EPLUGIN, errno, "%s", path);
    if (st.st_mode & S_IWOTH)
        return err_set(e, UH_EPLUGIN, "%s: refusing to load a plugin file that anyone may change "
                       "(mode %03o; chmod o-w it, or %s)", path, st.st_mode & 0777, hint);
    if ((st.st_mode & S_IWGRP) && !private_group(st.st_gid))
        return err_set(e, UH_EPLUGIN, "%s: refusing to load a plugin file that its group may "
                       "change (mode %03o; chmod g-w it, or %s)", path, st.st_mode & 0777, hint);
    char real[PATH_MAX], named[PATH_MAX];
    if (!realpath(path, real))
        return err_sys(e, UH_EPLUGIN, errno, "%s", path);
    snprintf(named, sizeof named, "%s", path);
    const char *dirs[2] = {dirname(named), dirname(real)};
    for (int k = 0; k < 2; k++) {
        struct stat ds;
        if (stat(dirs[k], &ds))
            return err_sys(e, UH_EPLUGIN, errno, "%s", dirs[k]);
        if (!(ds.st_mode & S_IWOTH))
            continue;
        if (!(ds.st_mode & S_ISVTX))
            return err_set(e, UH_EPLUGIN, "%s: refusing to load a plugin from directory %s, "
                           "where anyone may replace it (mode %03o; %s)", path, dirs[k],
                           ds.st_mode & 0777, hint);
        if (st.st_uid != geteuid() && st.st_uid != 0)
            return err_set(e, UH_EPLUGIN, "%s: refusing to load a plugin that user %ld put into "
                           "the shared directory %s (%s)", path, (long)st.st_uid, dirs[k], hint);
    }
    return 0;
}

/* Say which part of the ABI signature differs. */
static void signature_mismatch(const char *path, const char *theirs, err *e)
{
    const char *ours = UDF_ABI_SIGNATURE;
    const char *their_dash = strchr(theirs, '-'), *our_dash = strchr(ours, '-');
    size_t their_len = their_dash ? (size_t)(their_dash - theirs) : strlen(theirs);
    size_t our_len = (size_t)(our_dash - ours);
    if (their_len != our_len || strncmp(theirs, ours, our_len))
        err_set(e, UH_EPLUGIN,
                "%s: not binary compatible: pointer size differs (plugin '%.*s', udfhost '%.*s')",
                path, (int)their_len, theirs, (int)our_len, ours);
    else
        err_set(e, UH_EPLUGIN,
                "%s: not binary compatible: byte order differs (plugin '%s', udfhost '%s')", path,
                their_dash ? their_dash + 1 : "?", our_dash + 1);
}

static int descriptor_check(plugin *pl, const udf_plugin *d, err *e)
{
    const char *path = pl->path;
    if (d->abi_major != UDF_ABI_MAJOR)
        return err_set(e, UH_EPLUGIN, "%s: descriptor says ABI %u, this udfhost speaks ABI %u",
                       path, d->abi_major, UDF_ABI_MAJOR);
    if (d->struct_size < PLUGIN_DESC_SIZE_1_0)
        return err_set(e, UH_EPLUGIN,
                       "%s: descriptor is %u bytes, ABI %u.0 needs at least %zu (not built with "
                       "UDF_PLUGIN_HEADER?)",
                       path, d->struct_size, UDF_ABI_MAJOR, PLUGIN_DESC_SIZE_1_0);
    if (!d->signature) {
        return err_set(e, UH_EPLUGIN, "%s: descriptor has no ABI signature", path);
    } else if (strcmp(d->signature, UDF_ABI_SIGNATURE)) {
        signature_mismatch(path, d->signature, e);
        return UH_EPLUGIN;
    }
    /* Copy only what this host knows; later fields of a newer minor are ignored. */
    memcpy(&pl->desc, d, sizeof pl->desc);
    const udf_plugin *p = &pl->desc;
    if (!p->name || !valid_name(p->name))
        return err_set(e, UH_EPLUGIN, "%s: invalid descriptor: name '%s' is not [a-z0-9_]+", path,
                       p->name ? p->name : "(null)");
    if (!p->version)
        return err_set(e, UH_EPLUGIN, "%s: invalid descriptor: no version", path);
    if (!p->declare_buffers)
        return err_set(e, UH_EPLUGIN, "%s: invalid descriptor: no declare_buffers hook", path);
    if (p->process_tile)
        pl->method = PLUGIN_PROCESS_TILE;
    else if (p->process_frame)
        pl->method = PLUGIN_PROCESS_FRAME;
    else if (p->process_partition)
        pl->method = PLUGIN_PROCESS_PARTITION;
    else
        return err_set(e, UH_EPLUGIN, "%s: invalid descriptor: no process hook", path);
    if (p->input_dtype != UDF_DTYPE_NONE && p->input_dtype != UDF_F32 &&
        p->input_dtype != UDF_F64 && p->input_dtype != UDF_DTYPE_NATIVE)
        return err_set(e, UH_EPLUGIN, "%s: invalid descriptor: input_dtype %d", path,
                       (int)p->input_dtype);
    if (p->tiling & ~(uint32_t)UDF_TILE_FULL_FRAMES)
        return err_set(e, UH_EPLUGIN, "%s: invalid descriptor: unknown tiling flags 0x%x", path,
                       p->tiling);
    char why[256];
    if (param_decls_check(p->params, &pl->n_params, why, sizeof why))
        return err_set(e, UH_EPLUGIN, "%s: invalid descriptor: %s", path, why);
    return 0;
}

int plugin_load(const char *spec, plugin **out, err *e)
{
    plugin *pl = calloc(1, sizeof *pl);
    if (!pl)
        return err_set(e, UH_ENOMEM, "out of memory");
    int rc = plugin_find(spec, &pl->path, e);
    if (rc)
        goto fail;
    /* Before dlopen, which already runs the library's code. */
    if (!plugin_allow_unsafe && (rc = path_check_safe(pl->path, e)))
        goto fail;
    pl->handle = dlopen(pl->path, RTLD_NOW | RTLD_LOCAL);
    if (!pl->handle) {
        rc = err_set(e, UH_EPLUGIN, "%s: cannot load plugin: %s", pl->path, dlerror());
        goto fail;
    }
    const udf_plugin *(*entry)(void);
    *(void **)&entry = dlsym(pl->handle, UDF_ENTRY_NAME);
    if (!entry) {
        /* A plugin for another ABI major exports another name: say so rather than "missing". */
        for (unsigned major = 0; major < 100; major++) {
            char name[64];
            snprintf(name, sizeof name, "udf_plugin_entry_v%u", major);
            if (major != UDF_ABI_MAJOR && dlsym(pl->handle, name)) {
                rc = err_set(e, UH_EPLUGIN, "%s: plugin is built for udfhost ABI %u (exports %s), "
                             "this udfhost speaks ABI %u", pl->path, major, name, UDF_ABI_MAJOR);
                goto fail;
            }
        }
        rc = err_set(e, UH_EPLUGIN, "%s: not a udfhost plugin: no symbol %s", pl->path,
                     UDF_ENTRY_NAME);
        goto fail;
    }
    const udf_plugin *d = entry();
    if (!d) {
        rc = err_set(e, UH_EPLUGIN, "%s: %s returned no descriptor", pl->path, UDF_ENTRY_NAME);
        goto fail;
    }
    if ((rc = descriptor_check(pl, d, e)))
        goto fail;
    *out = pl;
    return 0;
fail:
    plugin_unload(pl);
    return rc;
}

void plugin_unload(plugin *pl)
{
    if (!pl)
        return;
    for (uint32_t i = 0; i < pl->n_given; i++)
        free(pl->given[i].value);
    free(pl->given);
    free(pl->buffers);
    free(pl->wanted);
    if (pl->handle)
        dlclose(pl->handle);
    free(pl->path);
    free(pl);
}

void plugin_ctx_init(udf_ctx *ctx, hook_call *call, plugin *pl, const char *hook)
{
    /* Field by field rather than memset: this runs once per tile or frame, and msg is large. */
    call->pl = pl;
    call->hook = hook;
    call->declaring = false;
    call->has_msg = false;
    call->msg[0] = '\0';
    ctx->struct_size = sizeof *ctx;
    ctx->num_buffers = 0;
    ctx->host = &plugin_host_services;
    ctx->meta = &pl->meta;
    ctx->partition = NULL;
    ctx->buffers = NULL;
    ctx->task_data = pl->task_data;
    ctx->host_private = call;
    sig_note_call(pl->desc.name, hook, -1);
}

int plugin_hook_failed(const hook_call *call, int status, int64_t partition, err *e)
{
    char where[64] = "";
    if (partition >= 0)
        snprintf(where, sizeof where, " on partition %lld", (long long)partition);
    return err_set(e, status == UDF_ERR_NOMEM ? UH_ENOMEM : UH_EPLUGIN,
                   "plugin %s failed in %s%s: %s (status %d)", call->pl->desc.name, call->hook,
                   where, call->has_msg ? call->msg : "no message given", status);
}

/* A plugin that refuses its parameters before any data is read reports a usage error (exit 2),
 * like the host's own parameter checks; any other setup failure is the plugin's (exit 4). */
static int setup_failed(const hook_call *call, int status, err *e)
{
    plugin_hook_failed(call, status, -1, e);
    if (status == UDF_ERR_PARAM)
        e->code = UH_EUSAGE;
    return e->code;
}

int plugin_declare(plugin *pl, const udf_meta *meta, err *e)
{
    pl->meta = *meta;
    udf_dtype want = pl->desc.input_dtype;
    pl->meta.input_dtype = want == UDF_DTYPE_NATIVE ? meta->raw_dtype
                           : want == UDF_F64        ? UDF_F64
                                                    : UDF_F32;
    udf_ctx ctx;
    hook_call call;
    plugin_ctx_init(&ctx, &call, pl, "declare_buffers");
    call.declaring = true;
    int rc = pl->desc.declare_buffers(&ctx);
    if (rc)
        return setup_failed(&call, rc, e);
    int needs_merge = 0;
    for (uint32_t i = 0; i < pl->n_buffers; i++) {
        const udf_buffer_decl *b = &pl->buffers[i].decl;
        if (b->kind != UDF_KIND_NAV && !(b->flags & UDF_BUFFER_RESULT_ONLY))
            needs_merge = 1;
    }
    if (needs_merge && !pl->desc.merge)
        return err_set(e, UH_EPLUGIN,
                       "plugin %s: declares sig or single buffers but has no merge hook",
                       pl->desc.name);
    return 0;
}

int plugin_setup(plugin *pl, const udf_meta *meta, err *e)
{
    int rc = plugin_declare(pl, meta, e);
    if (rc)
        return rc;
    udf_ctx ctx;
    hook_call call;
    if (pl->desc.init_task) {
        plugin_ctx_init(&ctx, &call, pl, "init_task");
        void *task = NULL;
        rc = pl->desc.init_task(&ctx, &task);
        if (rc)
            return setup_failed(&call, rc, e);
        pl->task_data = task;
    }
    pl->task_ready = true;
    return 0;
}

void plugin_cleanup(plugin *pl)
{
    if (!pl->task_ready)
        return;
    pl->task_ready = false;
    if (pl->desc.cleanup) {
        udf_ctx ctx;
        hook_call call;
        plugin_ctx_init(&ctx, &call, pl, "cleanup");
        pl->desc.cleanup(&ctx, pl->task_data);
    }
    pl->task_data = NULL;
}

/* --- services -------------------------------------------------------------------------------- */

static void host_error(udf_ctx *ctx, const char *fmt, ...)
{
    hook_call *call = ctx->host_private;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(call->msg, sizeof call->msg, fmt, ap);
    va_end(ap);
    /* One line: the host prints it after its own prefix. */
    for (char *c = call->msg; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    call->has_msg = true;
}

int plugin_log_level = 1; /* warnings and errors; --verbose raises it */
void (*plugin_log_sink)(const char *name, int level, const char *message);

static void host_log(udf_ctx *ctx, int level, const char *fmt, ...)
{
    if (level > plugin_log_level || !plugin_log_sink)
        return;
    hook_call *call = ctx->host_private;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    plugin_log_sink(call->pl->desc.name, level < 0 ? 0 : level > 3 ? 3 : level, msg);
}

static int buffer_name_ok(const char *s)
{
    if (!s || !*s || strlen(s) >= PLUGIN_NAME_MAX)
        return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_'))
            return 0;
    return 1;
}

static int host_declare_buffer(udf_ctx *ctx, const udf_buffer_decl *d)
{
    hook_call *call = ctx->host_private;
    plugin *pl = call->pl;
    if (!call->declaring) {
        host_error(ctx, "declare_buffer called outside declare_buffers");
        return UDF_ERR_PARAM;
    }
    if (!buffer_name_ok(d->name)) {
        host_error(ctx, "buffer name '%s' is not [A-Za-z0-9_]+", d->name ? d->name : "(null)");
        return UDF_ERR_PARAM;
    }
    if (pl->n_buffers == PLUGIN_MAX_BUFFERS) {
        host_error(ctx, "more than %d buffers", PLUGIN_MAX_BUFFERS);
        return UDF_ERR_PARAM;
    }
    for (uint32_t i = 0; i < pl->n_buffers; i++)
        if (!strcmp(pl->buffers[i].name, d->name)) {
            host_error(ctx, "buffer '%s' declared twice", d->name);
            return UDF_ERR_PARAM;
        }
    if (d->kind < UDF_KIND_NAV || d->kind > UDF_KIND_SINGLE || d->dtype < UDF_U8 ||
        d->dtype > UDF_BOOL || d->extra_ndim > UDF_MAX_DIMS ||
        (d->flags & ~(uint32_t)(UDF_BUFFER_PRIVATE | UDF_BUFFER_RESULT_ONLY))) {
        host_error(ctx, "buffer '%s': invalid kind, dtype, extra_ndim or flags", d->name);
        return UDF_ERR_PARAM;
    }
    uint64_t extra = 1;
    for (uint32_t i = 0; i < d->extra_ndim; i++)
        if (d->extra_shape[i] == 0 || __builtin_mul_overflow(extra, d->extra_shape[i], &extra)) {
            host_error(ctx, "buffer '%s': extra shape has a zero or overflowing dimension", d->name);
            return UDF_ERR_PARAM;
        }
    plugin_buffer *b = realloc(pl->buffers, (pl->n_buffers + 1) * sizeof *b);
    if (!b) {
        host_error(ctx, "out of memory");
        return UDF_ERR_NOMEM;
    }
    pl->buffers = b;
    b += pl->n_buffers++;
    b->decl = *d;
    snprintf(b->name, sizeof b->name, "%s", d->name);
    b->extra_size = extra;
    /* The array moves on realloc: names are read from b->name, never through decl.name. */
    b->decl.name = NULL;
    return UDF_OK;
}

/* Arrays a plugin may load: 4 GiB is far beyond any mask stack or reference frame. */
#define LOAD_ARRAY_MAX ((uint64_t)4 << 30)

static int host_load_array(udf_ctx *ctx, const char *path, udf_dtype dtype, uint32_t *ndim,
                           uint64_t *shape, void **data)
{
    *data = NULL;
    if (dtype != UDF_F32 && dtype != UDF_F64) {
        host_error(ctx, "load_array: dtype must be float32 or float64");
        return UDF_ERR_PARAM;
    }
    npy_info info;
    void *raw;
    err e = {0};
    if (array_read_file(path, LOAD_ARRAY_MAX, &info, &raw, &e)) {
        host_error(ctx, "%s", e.msg);
        return e.code == UH_ENOMEM ? UDF_ERR_NOMEM : UDF_ERR_PARAM;
    }
    if (info.ndim > UDF_MAX_DIMS) {
        free(raw);
        host_error(ctx, "%s: %u dimensions, at most %d are supported", path, info.ndim,
                   UDF_MAX_DIMS);
        return UDF_ERR_PARAM;
    }
    uint64_t n = 1;
    for (uint32_t i = 0; i < info.ndim; i++)
        n *= info.shape[i]; /* npy_read_file checked the product */
    void *out = malloc(n ? n * udf_dtype_size(dtype) : 1);
    if (!out) {
        free(raw);
        host_error(ctx, "%s: out of memory", path);
        return UDF_ERR_NOMEM;
    }
    udf_dtype from = info.dtype == UDF_BOOL ? UDF_U8 : info.dtype; /* bool is one byte of 0/1 */
    if (!convert_run(out, dtype, raw, from, false, n)) {
        free(raw);
        free(out);
        host_error(ctx, "%s: cannot convert %s", path, dtype_name(info.dtype));
        return UDF_ERR_PARAM;
    }
    free(raw);
    *ndim = info.ndim;
    memcpy(shape, info.shape, info.ndim * sizeof *shape);
    *data = out;
    return UDF_OK;
}

static int host_select_frames(udf_ctx *ctx, const uint64_t *flat, uint64_t n)
{
    hook_call *call = ctx->host_private;
    plugin *pl = call->pl;
    if (strcmp(call->hook, "init_task")) {
        host_error(ctx, "select_frames may only be called in init_task");
        return UDF_ERR;
    }
    if (n == 0 || n > pl->meta.num_frames) {
        host_error(ctx, "select_frames: %llu frames asked for, the dataset has %llu",
                   (unsigned long long)n, (unsigned long long)pl->meta.num_frames);
        return UDF_ERR_RANGE;
    }
    for (uint64_t i = 0; i < n; i++)
        if (flat[i] >= pl->meta.num_frames) {
            host_error(ctx, "select_frames: frame %llu is beyond the %llu frames of the dataset",
                       (unsigned long long)flat[i], (unsigned long long)pl->meta.num_frames);
            return UDF_ERR_RANGE;
        }
    uint64_t *w = realloc(pl->wanted, n * sizeof *w);
    if (!w) {
        host_error(ctx, "out of memory");
        return UDF_ERR_NOMEM;
    }
    memcpy(w, flat, n * sizeof *w);
    pl->wanted = w;
    pl->n_wanted = n;
    return UDF_OK;
}

static const void *host_get_extension(udf_ctx *ctx, const char *id)
{
    (void)ctx;
    (void)id;
    return NULL;
}

const udf_host plugin_host_services = {
    .struct_size = sizeof(udf_host),
    .abi_major = UDF_ABI_MAJOR,
    .abi_minor = UDF_ABI_MINOR,
    .error = host_error,
    .log = host_log,
    .declare_buffer = host_declare_buffer,
    .param_count = param_count,
    .param_int = param_int,
    .param_double = param_double,
    .param_bool = param_bool,
    .param_string = param_string,
    .param_ints = param_ints,
    .param_doubles = param_doubles,
    .param_given = param_given,
    .get_extension = host_get_extension,
    .load_array = host_load_array,
    .select_frames = host_select_frames,
};
