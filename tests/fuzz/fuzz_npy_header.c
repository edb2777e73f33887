/* Fuzz target: the .npy preamble parser (magic, version, header length, the Python-dict header)
 * on arbitrary bytes. */
#include "fuzz_common.h"

#include "npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    npy_info info;
    err e = {0};
    /* Parse a private copy so that ASan sees reads past `size` exactly. */
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf)
        abort();
    for (size_t i = 0; i < size; i++)
        buf[i] = data[i];
    if (npy_header_parse(buf, size, "fuzz.npy", &info, &e) == 0) {
        /* What the parser promised: a sane offset and an overflow-checked size. */
        if (info.ndim > NPY_MAX_DIMS || info.data_offset < 10 || info.version < 1 ||
            info.version > 3)
            abort();
    }
    free(buf);
    return 0;
}
