/* Shape parsing and overflow-checked size arithmetic. */
#include "shape.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int uint_parse(const char *text, const char *what, uint64_t max, uint64_t *out, err *e)
{
    if (!text || !isdigit((unsigned char)text[0]))
        return err_set(e, UH_EUSAGE, "%s: '%s' is not a non-negative integer", what,
                       text ? text : "");
    errno = 0;
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (*end)
        return err_set(e, UH_EUSAGE, "%s: '%s' is not a non-negative integer", what, text);
    if (errno == ERANGE || v > max)
        return err_set(e, UH_EUSAGE, "%s: %s is too large (at most %llu)", what, text,
                       (unsigned long long)max);
    *out = v;
    return 0;
}

int shape_parse(const char *text, const char *what, uint32_t max_ndim, uint64_t *dims,
                uint32_t *ndim, err *e)
{
    uint32_t n = 0;
    const char *p = text;
    if (!*p)
        return err_set(e, UH_EUSAGE, "%s: empty shape", what);
    for (;;) {
        if (!isdigit((unsigned char)*p))
            return err_set(e, UH_EUSAGE,
                           "%s: '%s' is not a shape (positive integers separated by ',' or 'x')",
                           what, text);
        errno = 0;
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno == ERANGE)
            return err_set(e, UH_EUSAGE, "%s: '%s' has a dimension that is too large", what, text);
        if (v == 0)
            return err_set(e, UH_EUSAGE, "%s: '%s' has a dimension of 0", what, text);
        if (n == max_ndim)
            return err_set(e, UH_EUSAGE, "%s: '%s' has more than %u dimensions", what, text,
                           max_ndim);
        dims[n++] = v;
        p = end;
        if (!*p)
            break;
        if (*p != ',' && *p != 'x' && *p != 'X')
            return err_set(e, UH_EUSAGE,
                           "%s: '%s' is not a shape (positive integers separated by ',' or 'x')",
                           what, text);
        p++;
    }
    uint64_t total;
    if (!shape_product(dims, n, &total))
        return err_set(e, UH_EUSAGE, "%s: '%s' has more than 2^64 elements", what, text);
    *ndim = n;
    return 0;
}

bool shape_product(const uint64_t *dims, uint32_t ndim, uint64_t *out)
{
    uint64_t p = 1;
    for (uint32_t i = 0; i < ndim; i++)
        if (!size_mul(p, dims[i], &p))
            return false;
    *out = p;
    return true;
}

void shape_format(const uint64_t *dims, uint32_t ndim, char *buf, unsigned long cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < ndim && used < cap; i++) {
        int n = snprintf(buf + used, cap - used, "%s%llu", i ? "," : "",
                         (unsigned long long)dims[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

int size_parse(const char *text, const char *what, uint64_t *out, err *e)
{
    if (!text || !isdigit((unsigned char)text[0]))
        return err_set(e, UH_EUSAGE, "%s: '%s' is not a size (e.g. 64M)", what, text ? text : "");
    errno = 0;
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno == ERANGE)
        return err_set(e, UH_EUSAGE, "%s: '%s' is too large", what, text);
    unsigned shift = 0;
    switch (toupper((unsigned char)*end)) {
    case '\0': break;
    case 'K': shift = 10; break;
    case 'M': shift = 20; break;
    case 'G': shift = 30; break;
    case 'T': shift = 40; break;
    default: return err_set(e, UH_EUSAGE, "%s: '%s' is not a size (e.g. 64M)", what, text);
    }
    if (*end) {
        const char *rest = end + 1;
        if (strcmp(rest, "") && strcmp(rest, "B") && strcmp(rest, "iB") && strcmp(rest, "b"))
            return err_set(e, UH_EUSAGE, "%s: '%s' is not a size (e.g. 64M)", what, text);
    }
    if (shift && v > (UINT64_MAX >> shift))
        return err_set(e, UH_EUSAGE, "%s: '%s' is too large", what, text);
    *out = (uint64_t)v << shift;
    return 0;
}
