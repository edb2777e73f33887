/* The thread pool under ThreadSanitizer. Criterion cannot start under TSan, so this is a plain
 * program: many runs over thread counts and windows, with jobs writing per-worker scratch and
 * consume reading job outputs, exactly the sharing pattern of the runner. Exit 0 when every run
 * consumed every job once and in order. */
#include <stdio.h>
#include <stdlib.h>

#include "pool.h"

#define WINDOW_MAX 16

typedef struct state {
    uint64_t slot[WINDOW_MAX];   /* job outputs, a ring of `window` slots as in the runner */
    uint64_t scratch[8];         /* per-worker scratch */
    unsigned window;
    uint64_t consumed, bad;
} state;

static int job(void *arg, unsigned worker, uint64_t index)
{
    state *s = arg;
    s->scratch[worker] += index; /* only this worker's thread touches scratch[worker] */
    s->slot[index % s->window] = index * 3 + 1;
    return 0;
}

static int consume(void *arg, uint64_t index)
{
    state *s = arg;
    if (s->slot[index % s->window] != index * 3 + 1 || index != s->consumed)
        s->bad++;
    s->consumed++;
    return 0;
}

static int fail_at_7(void *arg, unsigned worker, uint64_t index)
{
    job(arg, worker, index);
    return index == 7 ? -3 : 0;
}

int main(void)
{
    const unsigned threads[] = {1, 2, 8}, windows[] = {1, 2, 16};
    int failures = 0;
    for (unsigned t = 0; t < 3; t++)
        for (unsigned w = 0; w < 3; w++) {
            pool *p = pool_create(threads[t]);
            if (!p)
                return 1;
            for (int rep = 0; rep < 20; rep++) {
                state s = {.window = windows[w]};
                int rc = pool_run(p, 200, s.window, job, consume, &s);
                if (rc || s.consumed != 200 || s.bad)
                    failures++;
                state f = {.window = windows[w]};
                rc = pool_run(p, 200, f.window, fail_at_7, consume, &f);
                if (rc != -3 || f.consumed > 7 || f.bad)
                    failures++;
            }
            pool_destroy(p);
        }
    printf("%s: %d failed runs\n", failures ? "FAIL" : "PASS", failures);
    return failures != 0;
}
