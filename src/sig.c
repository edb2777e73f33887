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

static const int stop_signals[] = {SIGINT, SIGTERM};
static const int bus_signal[] = {SIGBUS};
/* Reported by udfhost, except under a sanitizer, whose own report of a crash says more. */
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
static const int crash_signals[] = {SIGSEGV, SIGABRT, SIGFPE, SIGILL};
#else
static const int crash_signals[] = {0};
#endif

/* The handler fn (or SIG_DFL, SIG_IGN), or with info_fn that one, for each of sigs (0: none). */
static void handle(const int *sigs, size_t n, void (*fn)(int),
                   void (*info_fn)(int, siginfo_t *, void *))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    if (info_fn) {
        sa.sa_sigaction = info_fn;
        sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    } else {
        sa.sa_handler = fn;
    }
    for (size_t i = 0; i < n; i++)
        if (sigs[i])
            sigaction(sigs[i], &sa, NULL);
}

#define COUNT(a) (sizeof(a) / sizeof *(a))

void sig_install(void)
{
    handle(stop_signals, COUNT(stop_signals), on_stop, NULL);
    handle(bus_signal, COUNT(bus_signal), NULL, on_fault);
    handle(crash_signals, COUNT(crash_signals), NULL, on_fault);
}

/* The library's SIGBUS handler (sig_guard_bus_errors): a guarded read jumps to its guard, any other
 * SIGBUS goes to whatever handled it before. */
static struct sigaction bus_previous;

static void on_bus_chained(int sig, siginfo_t *info, void *uctx)
{
    if (bus_guard) {
        sigjmp_buf *jb = bus_guard;
        bus_guard = NULL;
        siglongjmp(*jb, 1);
    }
    if ((bus_previous.sa_flags & SA_SIGINFO) && bus_previous.sa_sigaction) {
        bus_previous.sa_sigaction(sig, info, uctx);
    } else if (bus_previous.sa_handler != SIG_DFL && bus_previous.sa_handler != SIG_IGN) {
        bus_previous.sa_handler(sig);
    } else {
        /* Die of it as the process would have without us. */
        sigaction(SIGBUS, &bus_previous, NULL);
        raise(sig);
    }
}

int sig_guard_bus_errors(void)
{
    static atomic_flag done = ATOMIC_FLAG_INIT;
    if (atomic_flag_test_and_set(&done))
        return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_sigaction = on_bus_chained;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    return sigaction(SIGBUS, &sa, &bus_previous) ? -1 : 0;
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
    handle(stop_signals, COUNT(stop_signals), SIG_IGN, NULL);
    handle(crash_signals, COUNT(crash_signals), SIG_DFL, NULL);
}
