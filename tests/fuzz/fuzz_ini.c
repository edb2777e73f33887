/* Fuzz target: .ini dataset descriptors (inih plus dsopt's keys and values) through
 * dsopt_finish, as `udfhost run x.ini` reads them. */
#include "fuzz_common.h"

#include <string.h>

#include "dsopt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* dsopt reads a descriptor only when the name ends in .ini. */
    const char *path;
    fuzz_tmpfile_fill(data, size, "x.ini", &path);
    dsopt s = {0};
    s.ds.path = path;
    err e = {0};
    dsopt_finish(&s, &e);
    dsopt_free(&s);
    return 0;
}
