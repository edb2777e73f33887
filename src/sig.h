/* Signals: SIGINT and SIGTERM stop a run cleanly (workers notice between tiles, temporaries are
 * removed, exit status 128 + signal); SIGBUS from a mapped file that shrank or failed is turned
 * into an error for the partition being read; a crash (SIGSEGV, SIGABRT, SIGFPE, SIGILL) is
 * reported with the last plugin call of the crashing thread before the process dies. */
#ifndef UDFHOST_SIG_H
#define UDFHOST_SIG_H

#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Install the handlers (once, at start): the tool's. */
void sig_install(void);

/* The library's only handler, installed when its caller asks (udfhost_guard_bus_errors): SIGBUS
 * in a guarded read becomes an error of that read; any other goes on to the handler installed
 * before. Once per process; returns 0 or -1 (sigaction failed). */
int sig_guard_bus_errors(void);

/* A stop was requested (SIGINT or SIGTERM); sig_stop_signal() says which (0: none). */
bool sig_stop_requested(void);
int sig_stop_signal(void);

/* While a guard is set on this thread, SIGBUS jumps to it (siglongjmp with value 1) instead of
 * killing the process. Set it right after sigsetjmp(*jb, 1); clear it before returning. */
void sig_guard_set(sigjmp_buf *jb);
void sig_guard_clear(void);

/* The plugin call this thread is making, named in a crash report: plugin and hook names (static
 * strings or the plugin's own) and the partition (-1: none). */
void sig_note_call(const char *plugin, const char *hook, int64_t partition);

/* A thread's current plugin call, published for a watchdog (--plugin-timeout: another thread, or
 * with --isolate the parent process, in shared memory). The names are the plugin's and static
 * strings: a forked worker process has them at the same addresses as its parent. */
typedef struct sig_call {
    _Atomic int64_t since; /* CLOCK_MONOTONIC nanoseconds when the call began; 0: none */
    _Atomic(const char *) plugin;
    _Atomic(const char *) hook;
    _Atomic int64_t partition;
} sig_call;

/* From now on this thread's sig_note_call also fills slot (NULL: none). */
void sig_watch(sig_call *slot);

/* The thread left its plugin calls (the watchdog has nothing to time). */
void sig_note_idle(void);

/* Now on CLOCK_MONOTONIC, in nanoseconds. */
int64_t sig_now(void);

/* In a forked worker process: crashes kill it with the signal, without a report of its own (the
 * parent reports them); SIGINT and SIGTERM are left to the parent, which ends its workers. */
void sig_worker_process(void);

#endif
