/* Signal handling. Handlers only touch sig_atomic_t flags, thread-local pointers and write(2). */
#include "sig.h"

#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_signal;
static _Thread_local sigjmp_buf *bus_guard;
static _Thread_local const char *call_plugin, *call_hook;
static _Thread_local int64_t call_partition = -1;
static _Thread_local sig_call *call_slot;

static void on_stop(int sig)
{
    if (!stop_signal)
        stop_signal = sig;
}

/* Async-signal-safe text assembly for the crash report. */
static size_t put(char *buf, size_t n, size_t cap, const char *s)
{
    while (s && *s && n + 1 < cap)
        buf[n++] = *s++;
    return n;
}

static size_t put_u64(char *buf, size_t n, size_t cap, uint64_t v)
{
    char digits[24];
    int k = 0;
    do {
        digits[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k && n + 1 < cap)
        buf[n++] = digits[--k];
    return n;
}

static void on_fault(int sig, siginfo_t *info, void *uctx)
{
    (void)info;
    (void)uctx;
    if (sig == SIGBUS && bus_guard) {
        sigjmp_buf *jb = bus_guard;
        bus_guard = NULL;
        siglongjmp(*jb, 1);
    }
    const char *name = sig == SIGSEGV ? "SIGSEGV" : sig == SIGBUS ? "SIGBUS"
                       : sig == SIGABRT ? "SIGABRT" : sig == SIGFPE ? "SIGFPE" : "SIGILL";
    char msg[512];
    size_t n = put(msg, 0, sizeof msg, "udfhost: crashed with ");
    n = put(msg, n, sizeof msg, name);
    if (call_plugin) {
        n = put(msg, n, sizeof msg, "; last plugin call: ");
        n = put(msg, n, sizeof msg, call_plugin);
        n = put(msg, n, sizeof msg, " in ");
        n = put(msg, n, sizeof msg, call_hook);
        if (call_partition >= 0) {
            n = put(msg, n, sizeof msg, " on partition ");
            n = put_u64(msg, n, sizeof msg, (uint64_t)call_partition);
        }
    }
    n = put(msg, n, sizeof msg, "\n");
    ssize_t ignored = write(STDERR_FILENO, msg, n);
    (void)ignored;
    /* Die of the same signal, so the exit status tells what happened. */
    signal(sig, SIG_DFL);
    raise(sig);
}

void sig_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    /* Under a sanitizer its own report of a crash says more. */
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGABRT, &sa, NULL);
    sigaction(SIGFPE, &sa, NULL);
    sigaction(SIGILL, &sa, NULL);
#endif
}

bool sig_stop_requested(void)
{
    return stop_signal != 0;
}

int sig_stop_signal(void)
{
    return stop_signal;
}

void sig_guard_set(sigjmp_buf *jb)
{
    bus_guard = jb;
}

void sig_guard_clear(void)
{
    bus_guard = NULL;
}

void sig_note_call(const char *plugin, const char *hook, int64_t partition)
{
    call_plugin = plugin;
    call_hook = hook;
    call_partition = partition;
    if (call_slot) {
        atomic_store(&call_slot->plugin, plugin);
        atomic_store(&call_slot->hook, hook);
        atomic_store(&call_slot->partition, partition);
        atomic_store(&call_slot->since, sig_now());
    }
}

void sig_watch(sig_call *slot)
{
    call_slot = slot;
}

void sig_note_idle(void)
{
    if (call_slot)
        atomic_store(&call_slot->since, 0);
}

int64_t sig_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

void sig_worker_process(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGABRT, &sa, NULL);
    sigaction(SIGFPE, &sa, NULL);
    sigaction(SIGILL, &sa, NULL);
}
