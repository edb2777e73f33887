/* The HDF5 reader as the host sees it: detection here, everything else in the module
 * udfhost-hdf5.so (ds_hdf5.h), loaded on the first HDF5 file. Fuzz builds link the reader in
 * (UDFHOST_HDF5_BUILTIN). */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "ds.h"
#include "ds_hdf5.h"

static const ds_hdf5_host host = {
    .apply_user_sig = ds_apply_user_sig,
    .apply_user_nav = ds_apply_user_nav,
    .map_frames = ds_map_frames,
    .map_read = ds_map_read,
    .map_release = ds_map_release,
    .map_close = ds_map_close,
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const ds_reader *module;
static char why[768];

#ifdef UDFHOST_HDF5_BUILTIN
static void load(void)
{
    module = udfhost_hdf5_reader(&host, PACKAGE_VERSION);
}
#else
/* Try one place; on failure keep dlerror's words in why. */
static void *try_open(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        snprintf(why, sizeof why, "%s", dlerror());
    return h;
}

/* An uninstalled build keeps the module where libtool put it, .libs/ beside the udfhost binary
 * (or where $UDFHOST_MODULE_DIR says: the Python package in the build tree sets it); an
 * installed one finds it in UDFHOST_MODULE_DIR. The build's own comes first, so that a program
 * under development never loads an older installed module. */
static void load(void)
{
    char exe[PATH_MAX], path[PATH_MAX + 64];
    void *h = NULL;
    const char *dir = getenv("UDFHOST_MODULE_DIR");
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (dir && *dir) {
        snprintf(path, sizeof path, "%s/udfhost-hdf5.so", dir);
        h = try_open(path);
    } else if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(path, sizeof path, "%s/.libs/udfhost-hdf5.so", exe);
            if (!access(path, F_OK))
                h = try_open(path);
        }
    }
    if (!h && !why[0])
        h = try_open(UDFHOST_MODULE_DIR "/udfhost-hdf5.so");
    if (!h)
        return;
    const ds_reader *(*entry)(const ds_hdf5_host *, const char *);
    *(void **)&entry = dlsym(h, DS_HDF5_ENTRY);
    module = entry ? entry(&host, PACKAGE_VERSION) : NULL;
    if (!module) {
        snprintf(why, sizeof why, "%s", entry ? "it belongs to another udfhost version"
                                              : "it lacks " DS_HDF5_ENTRY);
        dlclose(h);
    }
}
#endif

static int hdf5_open(ds *d, const ds_options *o, err *e)
{
    pthread_once(&once, load);
    if (!module)
        return err_set(e, UH_EDATA, "%s: cannot read HDF5 files: the HDF5 module of udfhost "
                       "did not load (%s)", o->path, why);
    d->reader = module;
    return module->open(d, o, e);
}

/* The signature may also sit at 512, 1024, ... after a user block; those files are found by
 * their name instead. */
static bool hdf5_probe(const unsigned char *head, size_t n)
{
    static const unsigned char magic[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    return n >= sizeof magic && !memcmp(head, magic, sizeof magic);
}

const ds_reader ds_hdf5_reader = {
    .name = "hdf5",
    .extensions = ".h5|.hdf5|.hdf|.he5|.emd|.nxs",
    .probe = hdf5_probe,
    .open = hdf5_open,
};
