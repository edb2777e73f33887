/* Host status codes and the error record that carries one message from where most is known
 * (file, offset, key) up to main, which prints it as one line and picks the exit status. */
#ifndef UDFHOST_ERR_H
#define UDFHOST_ERR_H

#include <stddef.h>

/* Host status codes: 0 ok, negative failure. Each maps to one exit status (err_exit_status). The
 * numbers are fixed; a retired code keeps its number. */
enum {
    UH_OK = 0,
    UH_EUSAGE = -1,   /* bad command line: exit 2 */
    UH_EDATA = -2,    /* bad or unreadable input data (dataset, ROI, ...): exit 3 */
    UH_EPLUGIN = -3,  /* a plugin failed to load or reported an error: exit 4 */
    UH_EIO = -4,      /* writing results failed: exit 5 */
    UH_ENOMEM = -5,   /* out of memory: exit 6 */
    UH_EINTERNAL = -6, /* a bug in udfhost: exit 70 */
    UH_EINTR = -7      /* stopped by SIGINT or SIGTERM: exit 128 + the signal (main's job) */
};

/* The message of the first failure. Functions that fail fill it and return its code; callers
 * higher up may prefix context with err_prefix(). */
typedef struct err {
    int code;
    char msg[1024];
} err;

/* Record a failure: stores code and the printf-style message, returns code (so that
 * `return err_set(e, UH_EDATA, "...")` works). A NULL e only returns the code. */
int err_set(err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Like err_set for a failed system call: appends ": strerror(errno_value)". */
int err_sys(err *e, int code, int errno_value, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Put "prefix: " before the stored message. Returns e->code. */
int err_prefix(err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Replace the first `from` in the stored message by `to` (cut to fit): a file written under a
 * temporary name is then named as the user knows it. Returns e->code. */
int err_rename(err *e, const char *from, const char *to);

/* Exit status for a status code (0 for UH_OK). */
int err_exit_status(int code);

#endif
