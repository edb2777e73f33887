/* NumPy .npy files: writing result arrays and reading small arrays (ROI masks, masks, dark
 * frames). Format: magic "\x93NUMPY", version, header length, a Python-dict header padded with
 * spaces and a newline so that the data starts at a multiple of 64 bytes, then the raw data. */
#ifndef UDFHOST_NPY_H
#define UDFHOST_NPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <udfhost/udf.h>

#include "err.h"

#define NPY_MAX_DIMS 32

typedef struct npy_info {
    udf_dtype dtype;
    bool big_endian;       /* data byte order ('>' in descr) */
    bool fortran_order;
    uint32_t ndim;
    uint64_t shape[NPY_MAX_DIMS];
    uint64_t data_offset;  /* byte offset of the first element in the file */
    uint64_t data_bytes;   /* product(shape) * element size, overflow-checked */
    unsigned version;      /* 1, 2 or 3 */
} npy_info;

/* Format the complete preamble (magic, version, length, header dict, padding) for a C-order array
 * of native byte order into out (capacity cap). Uses version 1.0 unless the header needs 2.0.
 * Stores the preamble length in *len. Returns 0 or UH_EINTERNAL if cap is too small. */
int npy_header_format(udf_dtype dtype, uint32_t ndim, const uint64_t *shape, char *out, size_t cap,
                      size_t *len, err *e);

/* Write a whole .npy (preamble + data) to the open fd, retrying short writes and EINTR. `path`
 * only names the file in messages. Returns 0 or UH_EIO with the message set. */
int npy_write_fd(int fd, const char *path, udf_dtype dtype, uint32_t ndim, const uint64_t *shape,
                 const void *data, err *e);

/* Parse the preamble in buf[0..len) (len may exceed the preamble; at most the first 64 KiB +
 * header matter). Accepts versions 1.0, 2.0 and 3.0, descr of all dtypes udf_dtype has, both byte
 * orders, fortran_order, shape () (ndim 0). Checks that shape products do not overflow. `path`
 * only names the file in messages. Returns 0, or UH_EDATA with a message naming path and problem. */
int npy_header_parse(const unsigned char *buf, size_t len, const char *path, npy_info *info, err *e);

/* Read a whole .npy file into memory: parses the header, checks the file holds data_bytes after
 * data_offset, reads the data, converts it to native byte order, and returns a malloc'ed buffer in
 * *data (caller frees), always in C order (a Fortran-order file is rearranged; info->fortran_order
 * still tells how the file stored it). max_bytes bounds data_bytes (an error
 * beyond). Returns 0 or UH_EDATA/UH_ENOMEM with the message set. */
int npy_read_file(const char *path, uint64_t max_bytes, npy_info *info, void **data, err *e);

#endif
