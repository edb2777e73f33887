/* JSON text building. */
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static bool reserve(jbuf *b, size_t more)
{
    if (b->oom)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        b->oom = true;
        return false;
    }
    b->s = s;
    b->cap = cap;
    return true;
}

void jb_printf(jbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void jb_str(jbuf *b, const char *s)
{
    if (!s) {
        jb_printf(b, "null");
        return;
    }
    jb_printf(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            jb_printf(b, "\\%c", c);
        else if (c < 0x20)
            jb_printf(b, "\\u%04x", c);
        else
            jb_printf(b, "%c", c);
    }
    jb_printf(b, "\"");
}

void jb_dims(jbuf *b, const uint64_t *dims, uint32_t n)
{
    jb_printf(b, "[");
    for (uint32_t i = 0; i < n; i++)
        jb_printf(b, "%s%llu", i ? ", " : "", (unsigned long long)dims[i]);
    jb_printf(b, "]");
}

void jb_free(jbuf *b)
{
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}
