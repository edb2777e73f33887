/* The error record: formatting messages and mapping status codes to exit statuses. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_set(err *e, int code, const char *fmt, ...)
{
    if (!e)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->code = code;
    return code;
}

int err_sys(err *e, int code, int errno_value, const char *fmt, ...)
{
    if (!e)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    size_t n = strlen(e->msg);
    snprintf(e->msg + n, sizeof e->msg - n, ": %s", strerror(errno_value));
    e->code = code;
    return code;
}

int err_prefix(err *e, const char *fmt, ...)
{
    char prefix[512], old[sizeof e->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    /* Keep the prefix whole; the old message is cut if both do not fit. */
    size_t n = strlen(prefix);
    if (n > sizeof e->msg - 3)
        n = sizeof e->msg - 3;
    memcpy(e->msg, prefix, n);
    memcpy(e->msg + n, ": ", 2);
    size_t room = sizeof e->msg - n - 3;
    size_t m = strnlen(old, room);
    memcpy(e->msg + n + 2, old, m);
    e->msg[n + 2 + m] = '\0';
    return e->code;
}

int err_rename(err *e, const char *from, const char *to)
{
    char *at = *from ? strstr(e->msg, from) : NULL;
    if (!at)
        return e->code;
    char rest[sizeof e->msg];
    snprintf(rest, sizeof rest, "%s", at + strlen(from));
    snprintf(at, sizeof e->msg - (size_t)(at - e->msg), "%s%s", to, rest);
    return e->code;
}

int err_exit_status(int code)
{
    switch (code) {
    case UH_OK: return 0;
    case UH_EUSAGE: return 2;
    case UH_EDATA: return 3;
    case UH_EPLUGIN: return 4;
    case UH_EIO: return 5;
    case UH_ENOMEM: return 6;
    default: return 70;
    }
}
