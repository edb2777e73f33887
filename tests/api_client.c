/* A client of libudfhost: the sum of all frames of a raw uint16 scan
 * of nav 24 x 32 and sig 48 x 48 (data/sample.raw), with partial
 * results on the way and a misspelt option to show the error path.
 * Prints one line; exits with the status `udfhost run` would give. */
#include <stdio.h>
#include <udfhost/udfhost.h>

/* The command line's exit status for a code (udfhost(1)). */
static int exit_status(int code)
{
    switch (code) {
    case UDFHOST_OK: return 0;
    case UDFHOST_EUSAGE: return 2;
    case UDFHOST_EDATA: return 3;
    case UDFHOST_EPLUGIN: return 4;
    case UDFHOST_EIO: return 5;
    case UDFHOST_ENOMEM: return 6;
    case UDFHOST_ECANCELLED: return 130;
    default: return 70;
    }
}

/* [execute's thread] Count the snapshots, note the frames merged
 * into the last one, and free it: it is ours. */
static int on_partial(void *arg, udfhost_results *partial,
                      udfhost_error *err)
{
    uint64_t *seen = arg;
    (void)err;
    seen[0]++;
    udfhost_results_progress(partial, &seen[1], NULL);
    udfhost_results_free(partial);
    return 0; /* a negative udfhost_code would end the run */
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE.raw\n", argv[0]);
        return 2;
    }
    udfhost_error err = {0};
    udfhost_dataset *ds = NULL;
    udfhost_run *run = NULL;
    udfhost_results *res = NULL;
    uint64_t seen[2] = {0, 0}; /* partial results, frames in last */
    int rc;

    /* A bad value is refused with a code and a one-line message. */
    const char *const typo[] = {"format", "raw", "dtype", "uint12",
                                NULL};
    if (udfhost_dataset_open(argv[1], typo, &ds, &err) == 0) {
        fprintf(stderr, "api-client: dtype uint12 was accepted\n");
        udfhost_dataset_close(ds);
        return 70;
    }
    fprintf(stderr, "api-client: refused (%s): %s\n",
            udfhost_code_name(err.code), err.message);

    const char *const options[] = {
        "format", "raw", "dtype", "uint16",
        "nav_shape", "24,32", "sig_shape", "48,48", NULL};
    const char *const params[] = {"dtype=float64", NULL};
    if ((rc = udfhost_dataset_open(argv[1], options, &ds, &err)) ||
        (rc = udfhost_run_create(ds, &run, &err)) ||
        (rc = udfhost_run_add_plugin(run, "sum", params, NULL,
                                     &err)) ||
        (rc = udfhost_run_set_partial(run, 4, on_partial, seen,
                                      &err)) ||
        (rc = udfhost_run_execute(run, &err)) ||
        (rc = udfhost_run_take_results(run, &res, &err)))
        goto out;

    /* Plugin 0 (sum), buffer 0 (intensity): sig-shaped float64. */
    udfhost_buffer sum;
    if ((rc = udfhost_results_buffer(res, 0, 0, &sum, &err)))
        goto out;
    const double *px = sum.data;
    double total = 0;
    for (uint64_t i = 0; i < sum.bytes / sum.item_size; i++)
        total += px[i];
    uint64_t frames;
    udfhost_results_progress(res, &frames, NULL);
    printf("%s.%s: %llu x %llu %s over %llu frames, total %.0f; "
           "%llu partial results, the last after %llu frames\n",
           sum.plugin, sum.name, (unsigned long long)sum.shape[0],
           (unsigned long long)sum.shape[1], sum.dtype,
           (unsigned long long)frames, total,
           (unsigned long long)seen[0],
           (unsigned long long)seen[1]);
out:
    if (rc)
        fprintf(stderr, "api-client: %s\n", err.message);
    udfhost_results_free(res); /* independent of run and dataset */
    udfhost_run_free(run);
    udfhost_dataset_close(ds);
    return exit_status(rc);
}
