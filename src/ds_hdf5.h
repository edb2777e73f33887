/* The HDF5 reader is a module of its own, udfhost-hdf5.so, loaded when an HDF5 file is opened:
 * libhdf5 brings some 35 libraries (curl, gnutls, kerberos, ...) whose loading would otherwise
 * cost every run about 5 ms before main, more than reducing 64 MiB takes. The module builds
 * err.c, dtype.c and shape.c in itself and calls back into the host only through this table. */
#ifndef UDFHOST_DS_HDF5_H
#define UDFHOST_DS_HDF5_H

#include "ds.h"

typedef struct ds_hdf5_host {
    int (*apply_user_sig)(ds *d, const ds_options *o, err *e);
    int (*apply_user_nav)(ds *d, const ds_options *o, err *e);
    int (*map_frames)(ds *d, const char *path, uint64_t first, uint64_t stride, err *e);
    int (*map_read)(ds *d, uint64_t first, uint64_t count, void *scratch,
                    const unsigned char **data, size_t *stride, err *e);
    void (*map_release)(ds *d, uint64_t first, uint64_t count);
    void (*map_close)(ds *d);
} ds_hdf5_host;

/* The module's one exported function: the reader, or NULL when the module was built from
 * another udfhost version (version differs from its PACKAGE_VERSION), whose ds layout may
 * differ. */
#define DS_HDF5_ENTRY "udfhost_hdf5_reader"
const ds_reader *udfhost_hdf5_reader(const ds_hdf5_host *host, const char *version);

#endif
