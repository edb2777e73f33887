/* Worker processes for --isolate. Each worker is forked before the parent starts any thread and
 * talks to the parent over a socket pair: the parent sends partition indices (UINT64_MAX: no
 * more), the worker answers each with a report (index, status, message) once the partition's
 * buffers are in its slot of a shared mapping, where they lie in plugin and buffer order, each
 * view's bytes after the previous one's: both sides allocate the partition's buffers with
 * bufs_alloc from the same plan, so sizes and order agree without being sent (as in mpi_run.c).
 * A worker that dies closes its socket: the parent reads end of file and asks waitpid what killed
 * it; the worker's current plugin call is in shared memory too, for the message and for
 * --plugin-timeout. A socket rather than a pipe, so that writing to a dead worker is an error
 * (MSG_NOSIGNAL), not SIGPIPE. */
#include "isolate.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sig.h"

#define NONE UINT64_MAX

typedef struct report {
    uint64_t index;
    int32_t rc;
    err e;
} report;

typedef struct proc {
    pid_t pid;           /* 0: reaped */
    int fd;              /* the parent's end of the socket pair; -1: closed */
    uint64_t busy;       /* the partition it computes; NONE: idle */
    sig_call *calls;     /* shared: its pool worker's call, then its main thread's */
    unsigned char *slot; /* shared: the buffers of its last partition */
} proc;

typedef struct iso {
    const run_config *c;
    runner *r;
    unsigned n;
    proc *w;
    void *shared;
    size_t shared_bytes;
    uint64_t count, limit, next_free, next_merge;
    bufset *pending; /* limit x n_plugins: arrived partitions waiting for their turn to merge */
    bool *arrived;
} iso;

static int send_all(int fd, const void *p, size_t n)
{
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p = (const char *)p + k;
        n -= (size_t)k;
    }
    return 0;
}

/* 0 when all n bytes came, -1 on end of file or an error. */
static int recv_all(int fd, void *p, size_t n)
{
    while (n) {
        ssize_t k = recv(fd, p, n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p = (char *)p + k;
        n -= (size_t)k;
    }
    return 0;
}

static size_t view_bytes(const udf_view *v)
{
    return v->data ? v->count * v->extra_size * udf_dtype_size(v->dtype) : 0;
}

/* --- the worker process ------------------------------------------------------------------- */

typedef struct store {
    const run_config *c;
    unsigned char *slot;
} store;

/* run_deliver_fn in a worker: the partition's buffers into the slot. */
static int slot_store(void *arg, uint64_t index, bufset *sets, err *e)
{
    const store *to = arg;
    (void)index;
    (void)e;
    unsigned char *at = to->slot;
    for (uint32_t k = 0; k < to->c->n_plugins; k++) {
        for (uint32_t i = 0; i < sets[k].n; i++) {
            size_t n = view_bytes(&sets[k].views[i]);
            if (n)
                memcpy(at, sets[k].views[i].data, n);
            at += n;
        }
        bufs_free(&sets[k]);
    }
    return 0;
}

/* Compute the partitions the parent sends until it says there are no more, or goes away. */
static _Noreturn void worker_main(iso *s, unsigned me, int fd, pid_t parent)
{
    proc *w = &s->w[me];
    sig_worker_process();
#ifdef PR_SET_PDEATHSIG
    /* A worker stuck in a plugin call must not outlive a parent that was killed. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) /* it died before prctl took effect */
        _exit(0);
#endif
    run_config c = *s->c;
    c.threads = 1;
    c.calls = w->calls;
    c.timeout = 0; /* the parent times this process's calls */
    c.progress = NULL;
    c.live = NULL;
    c.live_every = 0;
    store to = {.c = &c, .slot = w->slot};
    runner *r = NULL;
    err begin = {0};
    int begun = run_begin(&c, NULL, &r, &begin);
    uint64_t index;
    while (!recv_all(fd, &index, sizeof index) && index != NONE) {
        report rep;
        memset(&rep, 0, sizeof rep);
        rep.index = index;
        if (begun) {
            rep.rc = begun;
            rep.e = begin;
        } else {
            rep.rc = run_partitions(r, &index, 1, slot_store, &to, &rep.e);
        }
        if (send_all(fd, &rep, sizeof rep))
            break;
    }
    run_end(r);
    _exit(0);
}

/* --- the parent ------------------------------------------------------------------------------ */

static const char *signal_name(int sig, char *buf, size_t cap)
{
    static const struct {
        int sig;
        const char *name;
    } names[] = {{SIGSEGV, "SIGSEGV"}, {SIGABRT, "SIGABRT"}, {SIGBUS, "SIGBUS"},
                 {SIGFPE, "SIGFPE"},   {SIGILL, "SIGILL"},   {SIGKILL, "SIGKILL"},
                 {SIGTERM, "SIGTERM"}, {SIGINT, "SIGINT"},   {SIGPIPE, "SIGPIPE"}};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (names[i].sig == sig)
            return names[i].name;
    snprintf(buf, cap, "signal %d", sig);
    return buf;
}

/* Worker w closed its socket: it died. Reap it and say what happened. */
static int worker_died(proc *w, err *e)
{
    int status = 0;
    while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
        ;
    w->pid = 0;
    char how[96], buf[32];
    if (WIFSIGNALED(status))
        snprintf(how, sizeof how, "crashed with %s%s", signal_name(WTERMSIG(status), buf, sizeof buf),
                 WTERMSIG(status) == SIGKILL ? " (killed; out of memory?)" : "");
    else
        snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(status));
    const sig_call *call = &w->calls[0];
    const char *name = atomic_load(&call->plugin), *hook = atomic_load(&call->hook);
    unsigned long long part = (unsigned long long)w->busy;
    if (atomic_load(&call->since) && name)
        return err_set(e, UH_EPLUGIN, "plugin %s %s in %s on partition %llu", name, how, hook,
                       part);
    return err_set(e, UH_EINTERNAL, "the worker process of partition %llu %s outside any plugin "
                   "call%s%s", part, how, name ? "; last plugin call: " : "", name ? name : "");
}

/* A report from worker w: its partition's buffers go to their pending place. */
static int worker_report(iso *s, proc *w, err *e)
{
    report rep;
    if (recv_all(w->fd, &rep, sizeof rep))
        return worker_died(w, e);
    if (rep.rc) {
        rep.e.msg[sizeof rep.e.msg - 1] = '\0';
        *e = rep.e;
        return rep.rc;
    }
    if (rep.index != w->busy)
        return err_set(e, UH_EINTERNAL, "a worker process reported partition %llu instead of %llu",
                       (unsigned long long)rep.index, (unsigned long long)w->busy);
    const run_config *c = s->c;
    bufset *sets = &s->pending[(rep.index % s->limit) * c->n_plugins];
    uint64_t selected = run_partition_selected(s->r, rep.index);
    const unsigned char *at = w->slot;
    for (uint32_t k = 0; k < c->n_plugins && selected; k++) {
        int rc = bufs_alloc(c->plugins[k], &sets[k], selected, c->d->sig_size, false, e);
        if (rc)
            return rc;
        for (uint32_t i = 0; i < sets[k].n; i++) {
            size_t n = view_bytes(&sets[k].views[i]);
            if (n)
                memcpy(sets[k].views[i].data, at, n);
            at += n;
        }
    }
    s->arrived[rep.index % s->limit] = true;
    w->busy = NONE;
    return 0;
}

/* Kill a worker whose plugin call overran c->timeout. */
static int check_timeouts(iso *s, err *e)
{
    if (s->c->timeout <= 0)
        return 0;
    int64_t now = sig_now(), limit = (int64_t)(s->c->timeout * 1e9);
    for (unsigned i = 0; i < s->n; i++) {
        proc *w = &s->w[i];
        int64_t since = atomic_load(&w->calls[0].since);
        if (w->pid && w->busy != NONE && since && now - since > limit) {
            kill(w->pid, SIGKILL);
            err late;
            run_timed_out(&w->calls[0], s->c->timeout, &late);
            return err_set(e, late.code, "%.900s; its worker process was killed", late.msg);
        }
    }
    return 0;
}

static int serve(iso *s, err *e)
{
    int rc = 0;
    struct pollfd *fds = calloc(s->n, sizeof *fds);
    unsigned *who = calloc(s->n, sizeof *who);
    if (!fds || !who)
        rc = err_set(e, UH_ENOMEM, "out of memory");
    while (!rc && s->next_merge < s->count) {
        if (sig_stop_requested()) {
            rc = err_set(e, UH_EINTR, "stopped by %s; no results written",
                         sig_stop_signal() == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        nfds_t nfds = 0;
        for (unsigned i = 0; i < s->n && !rc; i++) {
            proc *w = &s->w[i];
            if (w->busy == NONE && s->next_free < s->count &&
                s->next_free < s->next_merge + s->limit) {
                w->busy = s->next_free++;
                if (send_all(w->fd, &w->busy, sizeof w->busy))
                    rc = worker_died(w, e);
            }
            if (w->busy != NONE) {
                fds[nfds] = (struct pollfd){.fd = w->fd, .events = POLLIN};
                who[nfds++] = i;
            }
        }
        if (rc)
            break;
        int ready = poll(fds, nfds, 50);
        if (ready < 0 && errno != EINTR)
            rc = err_sys(e, UH_EINTERNAL, errno, "poll");
        for (nfds_t j = 0; j < nfds && ready > 0 && !rc; j++)
            if (fds[j].revents)
                rc = worker_report(s, &s->w[who[j]], e);
        if (!rc)
            rc = check_timeouts(s, e);
        while (!rc && s->next_merge < s->count && s->arrived[s->next_merge % s->limit]) {
            s->arrived[s->next_merge % s->limit] = false;
            rc = run_merge(s->r, s->next_merge,
                           &s->pending[(s->next_merge % s->limit) * s->c->n_plugins], e);
            s->next_merge++;
        }
    }
    free(fds);
    free(who);
    return rc;
}

/* Every worker gone: told to stop after a successful run, killed after a failed one. */
static void workers_end(iso *s, bool killing)
{
    for (unsigned i = 0; i < s->n; i++) {
        proc *w = &s->w[i];
        if (!w->pid)
            continue;
        uint64_t stop = NONE;
        if (killing || send_all(w->fd, &stop, sizeof stop))
            kill(w->pid, SIGKILL);
    }
    for (unsigned i = 0; i < s->n; i++) {
        proc *w = &s->w[i];
        if (w->fd >= 0)
            close(w->fd);
        while (w->pid && waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
}

/* Shared memory, then the workers, each with its socket; before any thread exists here. */
static int workers_start(iso *s, err *e)
{
    uint64_t part_bytes;
    int rc = run_partition_bytes(s->c, &part_bytes, e);
    if (rc)
        return rc;
    size_t head = (2 * sizeof(sig_call) + 63) & ~(size_t)63;
    size_t stride = head + (((size_t)part_bytes + 4095) & ~(size_t)4095);
    s->shared_bytes = stride * s->n;
    s->shared = mmap(NULL, s->shared_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                     -1, 0);
    if (s->shared == MAP_FAILED) {
        s->shared = NULL;
        return err_sys(e, UH_ENOMEM, errno, "--isolate: cannot map %.1f MiB of shared memory",
                       s->shared_bytes / 1048576.0);
    }
    for (unsigned i = 0; i < s->n; i++) {
        s->w[i].calls = (sig_call *)((char *)s->shared + i * stride);
        s->w[i].slot = (unsigned char *)s->shared + i * stride + head;
    }
    fflush(NULL); /* nothing buffered is written twice */
    pid_t parent = getpid();
    for (unsigned i = 0; i < s->n; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
            return err_sys(e, UH_ENOMEM, errno, "--isolate: cannot make a socket pair");
        pid_t pid = fork();
        if (pid < 0) {
            close(sv[0]);
            close(sv[1]);
            return err_sys(e, UH_ENOMEM, errno, "--isolate: cannot start worker process %u", i);
        }
        if (!pid) {
            close(sv[0]);
            for (unsigned j = 0; j < i; j++)
                close(s->w[j].fd);
            worker_main(s, i, sv[1], parent);
        }
        close(sv[1]);
        s->w[i].pid = pid;
        s->w[i].fd = sv[0];
    }
    return 0;
}

int isolate_execute(const run_config *c, bufset *results, err *e)
{
    iso s = {.c = c, .n = c->threads};
    memset(results, 0, c->n_plugins * sizeof *results);
    s.w = calloc(s.n, sizeof *s.w);
    for (unsigned i = 0; s.w && i < s.n; i++) {
        s.w[i].fd = -1;
        s.w[i].busy = NONE;
    }
    int rc = s.w ? workers_start(&s, e) : err_set(e, UH_ENOMEM, "out of memory");
    run_config parent = *c;
    parent.threads = 1; /* its pool stays idle: the parent only merges */
    if (!rc)
        rc = run_begin(&parent, results, &s.r, e);
    if (!rc) {
        s.count = run_partition_count(s.r);
        s.limit = 4 * (uint64_t)s.n;
        s.pending = calloc(s.limit * c->n_plugins, sizeof *s.pending);
        s.arrived = calloc(s.limit, sizeof *s.arrived);
        if (!s.pending || !s.arrived)
            rc = err_set(e, UH_ENOMEM, "out of memory");
    }
    if (!rc)
        rc = serve(&s, e);
    if (s.w)
        workers_end(&s, rc != 0);
    if (!rc)
        rc = run_finish(s.r, e);
    for (uint64_t i = 0; s.pending && i < s.limit * c->n_plugins; i++)
        bufs_free(&s.pending[i]);
    free(s.pending);
    free(s.arrived);
    run_end(s.r);
    if (s.shared)
        munmap(s.shared, s.shared_bytes);
    free(s.w);
    if (rc)
        for (uint32_t k = 0; k < c->n_plugins; k++)
            bufs_free(&results[k]);
    return rc;
}
