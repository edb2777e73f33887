/* libudfhost's public API (udfhost/udfhost.h) as a C caller uses it: datasets, runs, results,
 * partial results, cancelling and every error kind. Uses nothing but the public header. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "udfhost/udfhost.h"

#define NAV_Y 24
#define NAV_X 32
#define SIG 48
#define FRAMES (NAV_Y * NAV_X)
#define PIXELS (SIG * SIG)

static char sample_path[4096];
static uint16_t *sample; /* the sample scan, read here independently of the library */

static const char *const sample_options[] = {"format", "raw", "dtype", "uint16", "nav_shape",
                                             "24,32", "sig-shape", "48,48", NULL};

static void setup(void)
{
    const char *src = getenv("UDFHOST_SRCDIR");
    snprintf(sample_path, sizeof sample_path, "%s/data/sample.raw", src ? src : ".");
    sample = malloc((size_t)FRAMES * PIXELS * sizeof *sample);
    FILE *f = fopen(sample_path, "rb");
    cr_assert(f, "cannot open %s", sample_path);
    cr_assert_eq(fread(sample, sizeof *sample, (size_t)FRAMES * PIXELS, f), (size_t)FRAMES * PIXELS);
    fclose(f);
}

static void teardown(void)
{
    free(sample);
}

TestSuite(api, .init = setup, .fini = teardown);

static udfhost_dataset *open_sample(void)
{
    udfhost_dataset *ds;
    udfhost_error err = {0};
    int rc = udfhost_dataset_open(sample_path, sample_options, &ds, &err);
    cr_assert_eq(rc, 0, "open: %s", err.message);
    return ds;
}

/* The buffer plugin k, index i of res, which must be called name. */
static udfhost_buffer get(const udfhost_results *res, uint32_t k, const char *name)
{
    for (uint32_t i = 0; i < udfhost_results_buffer_count(res, k); i++) {
        udfhost_buffer b;
        cr_assert_eq(udfhost_results_buffer(res, k, i, &b, NULL), 0);
        if (!strcmp(b.name, name))
            return b;
    }
    cr_assert_fail("no buffer %s", name);
    udfhost_buffer none = {0};
    return none;
}

Test(api, describes_a_dataset)
{
    udfhost_dataset *ds = open_sample();
    udfhost_dataset_info info;
    udfhost_dataset_describe(ds, &info);
    cr_assert_str_eq(info.format, "raw");
    cr_assert_str_eq(info.dtype, "uint16");
    cr_assert_eq(info.nav_ndim, 2);
    cr_assert_eq(info.nav_shape[0], NAV_Y);
    cr_assert_eq(info.nav_shape[1], NAV_X);
    cr_assert_eq(info.sig_ndim, 2);
    cr_assert_eq(info.sig_shape[0], SIG);
    cr_assert_eq(info.num_frames, FRAMES);
    cr_assert_eq(info.frame_bytes, PIXELS * 2);
    udfhost_dataset_close(ds);
}

Test(api, option_errors_name_the_option_as_given)
{
    udfhost_dataset *ds = (udfhost_dataset *)1;
    udfhost_error err = {0};
    const char *const unknown[] = {"nav_shap", "24,32", NULL};
    cr_assert_eq(udfhost_dataset_open(sample_path, unknown, &ds, &err), UDFHOST_EUSAGE);
    cr_assert_null(ds);
    cr_assert(strstr(err.message, "unknown dataset option 'nav_shap'"), "%s", err.message);
    const char *const bad[] = {"format", "raw", "dtype", "uint16", "nav_shape", "a", NULL};
    cr_assert_eq(udfhost_dataset_open(sample_path, bad, &ds, &err), UDFHOST_EUSAGE);
    cr_assert(strstr(err.message, "nav_shape") && !strstr(err.message, "--nav-shape"), "%s",
              err.message);
    cr_assert_eq(err.code, UDFHOST_EUSAGE);
    cr_assert_str_eq(udfhost_code_name(err.code), "usage");
    cr_assert_eq(udfhost_dataset_open("/nonexistent/scan.raw", sample_options, &ds, &err),
                 UDFHOST_EDATA);
    cr_assert(strstr(err.message, "/nonexistent/scan.raw"), "%s", err.message);
}

/* Sum and sumsig of the sample, checked against sums computed here. */
static void check_sums(const udfhost_results *res, const uint8_t *roi)
{
    cr_assert_eq(udfhost_results_plugin_count(res), 2);
    cr_assert_str_eq(udfhost_results_plugin_name(res, 0), "sum");
    udfhost_buffer sum = get(res, 0, "intensity"), sumsig = get(res, 1, "intensity");
    cr_assert_str_eq(sum.dtype, "float64");
    cr_assert_eq(sum.kind, UDFHOST_KIND_SIG);
    cr_assert_eq(sum.ndim, 2);
    cr_assert_eq(sum.shape[0], SIG);
    cr_assert_eq(sumsig.kind, UDFHOST_KIND_NAV);
    cr_assert_eq(sumsig.ndim, 2);
    cr_assert_eq(sumsig.shape[1], NAV_X);
    cr_assert_eq(sumsig.bytes, FRAMES * 4);
    const double *s = sum.data;
    const float *ss = sumsig.data;
    for (int p = 0; p < PIXELS; p++) {
        double want = 0;
        for (int f = 0; f < FRAMES; f++)
            if (!roi || roi[f])
                want += sample[(size_t)f * PIXELS + p];
        cr_assert_eq(s[p], want, "pixel %d: %g != %g", p, s[p], want);
    }
    for (int f = 0; f < FRAMES; f++) {
        double want = 0;
        for (int p = 0; p < PIXELS; p++)
            want += sample[(size_t)f * PIXELS + p];
        if (roi && !roi[f])
            cr_assert(isnan(ss[f]), "frame %d outside the ROI: %g", f, ss[f]);
        else
            cr_assert_eq(ss[f], (float)want, "frame %d", f);
    }
    uint64_t n;
    const uint8_t *valid = udfhost_results_valid(res, &n);
    cr_assert_eq(n, FRAMES);
    for (int f = 0; f < FRAMES; f++)
        cr_assert_eq(valid[f], roi ? roi[f] : 1);
}

static udfhost_results *run_sums(udfhost_dataset *ds, const uint8_t *roi, unsigned threads)
{
    udfhost_run *run;
    udfhost_error err = {0};
    const char *const f64[] = {"dtype=float64", NULL};
    cr_assert_eq(udfhost_run_create(ds, &run, &err), 0);
    cr_assert_eq(udfhost_run_add_plugin(run, "sum", f64, NULL, &err), 0, "%s", err.message);
    uint32_t index = 9;
    cr_assert_eq(udfhost_run_add_plugin(run, "sumsig", NULL, &index, &err), 0, "%s", err.message);
    cr_assert_eq(index, 1);
    cr_assert_eq(udfhost_run_set_threads(run, threads, &err), 0);
    if (roi)
        cr_assert_eq(udfhost_run_set_roi(run, roi, FRAMES, &err), 0, "%s", err.message);
    cr_assert_eq(udfhost_run_execute(run, &err), 0, "%s", err.message);
    udfhost_results *res;
    cr_assert_eq(udfhost_run_take_results(run, &res, &err), 0);
    udfhost_results *again = (udfhost_results *)1;
    cr_assert_eq(udfhost_run_take_results(run, &again, &err), UDFHOST_EUSAGE);
    cr_assert_null(again);
    cr_assert_eq(udfhost_run_execute(run, &err), UDFHOST_EUSAGE, "a run executes once");
    udfhost_run_free(run);
    return res;
}

Test(api, runs_plugins_and_results_outlive_run_and_dataset)
{
    udfhost_dataset *ds = open_sample();
    udfhost_results *res = run_sums(ds, NULL, 2);
    udfhost_dataset_close(ds);
    check_sums(res, NULL);
    udfhost_results_free(res);
}

Test(api, roi_selects_frames)
{
    uint8_t roi[FRAMES] = {0};
    for (int f = 40; f < 300; f += 3)
        roi[f] = 1;
    udfhost_dataset *ds = open_sample();
    udfhost_results *res = run_sums(ds, roi, 1);
    check_sums(res, roi);
    udfhost_results_free(res);
    udfhost_error err;
    udfhost_run *run;
    cr_assert_eq(udfhost_run_create(ds, &run, &err), 0);
    cr_assert_eq(udfhost_run_set_roi(run, roi, FRAMES - 1, &err), UDFHOST_EDATA);
    udfhost_run_free(run);
    udfhost_dataset_close(ds);
}

Test(api, memory_dataset_equals_the_file)
{
    uint64_t shape[4] = {NAV_Y, NAV_X, SIG, SIG};
    udfhost_dataset *ds;
    udfhost_error err = {0};
    cr_assert_eq(udfhost_dataset_from_memory(sample, "uint16", 4, shape, 2, &ds, &err), 0, "%s",
                 err.message);
    udfhost_dataset_info info;
    udfhost_dataset_describe(ds, &info);
    cr_assert_str_eq(info.format, "memory");
    udfhost_results *res = run_sums(ds, NULL, 3);
    udfhost_dataset_close(ds);
    check_sums(res, NULL);
    udfhost_results_free(res);
    cr_assert_eq(udfhost_dataset_from_memory(sample, "complex64", 4, shape, 2, &ds, &err),
                 UDFHOST_EUSAGE);
    cr_assert_eq(udfhost_dataset_from_memory(sample, "int64", 4, shape, 2, &ds, &err),
                 UDFHOST_EUSAGE);
    cr_assert(strstr(err.message, "int64"), "%s", err.message);
    cr_assert_eq(udfhost_dataset_from_memory(sample, "uint16", 2, shape, 2, &ds, &err),
                 UDFHOST_EUSAGE);
}

typedef struct partials {
    int calls;
    uint64_t last_done;
    uint8_t seen[FRAMES];
    int cancel_at; /* cancel the run in this call (0: never) */
    udfhost_run *run;
} partials;

static int on_partial(void *arg, udfhost_results *part, udfhost_error *err)
{
    (void)err;
    partials *p = arg;
    p->calls++;
    uint64_t done, total, n;
    udfhost_results_progress(part, &done, &total);
    cr_assert_eq(total, FRAMES);
    cr_assert_gt(done, p->last_done, "partial results grow");
    p->last_done = done;
    const uint8_t *valid = udfhost_results_valid(part, &n);
    uint64_t count = 0;
    for (uint64_t f = 0; f < n; f++) {
        cr_assert(!p->seen[f] || valid[f], "a frame merged before is still valid");
        p->seen[f] = valid[f];
        count += valid[f];
    }
    cr_assert_eq(count, done);
    udfhost_buffer sumsig = get(part, 1, "intensity");
    const float *ss = sumsig.data;
    for (uint64_t f = 0; f < n; f++)
        cr_assert(valid[f] ? !isnan(ss[f]) : isnan(ss[f]), "frame %llu", (unsigned long long)f);
    udfhost_results_free(part);
    if (p->calls == p->cancel_at)
        udfhost_run_cancel(p->run);
    return 0;
}

static int execute_with_partials(partials *p, unsigned threads)
{
    udfhost_dataset *ds = open_sample();
    udfhost_run *run;
    udfhost_error err = {0};
    cr_assert_eq(udfhost_run_create(ds, &run, &err), 0);
    p->run = run;
    cr_assert_eq(udfhost_run_add_plugin(run, "sum", NULL, NULL, &err), 0);
    cr_assert_eq(udfhost_run_add_plugin(run, "sumsig", NULL, NULL, &err), 0);
    cr_assert_eq(udfhost_run_set_threads(run, threads, &err), 0);
    /* Small partitions: the sample's 3.5 MB in 64 of them. */
    cr_assert_eq(udfhost_run_set_partition_bytes(run, 48 * PIXELS * 2 / 4, &err), 0);
    cr_assert_eq(udfhost_run_set_partial(run, 1, on_partial, p, &err), 0);
    int rc = udfhost_run_execute(run, &err);
    if (rc == UDFHOST_ECANCELLED)
        cr_assert(strstr(err.message, "cancelled"), "%s", err.message);
    udfhost_results *res = NULL;
    cr_assert_eq(udfhost_run_take_results(run, &res, NULL), rc ? UDFHOST_EUSAGE : 0);
    udfhost_results_free(res);
    udfhost_run_free(run);
    udfhost_dataset_close(ds);
    return rc;
}

Test(api, partial_results_grow_to_the_final_ones)
{
    partials p = {0};
    cr_assert_eq(execute_with_partials(&p, 2), 0);
    cr_assert_gt(p.calls, 30, "one partial result per merged partition but the last");
    cr_assert_lt(p.last_done, FRAMES);
}

Test(api, cancel_stops_a_run)
{
    partials p = {.cancel_at = 5};
    cr_assert_eq(execute_with_partials(&p, 2), UDFHOST_ECANCELLED);
    cr_assert_lt(p.calls, 12, "the run stopped soon after the cancel");
    udfhost_dataset *ds = open_sample();
    udfhost_run *run;
    udfhost_error err;
    cr_assert_eq(udfhost_run_create(ds, &run, &err), 0);
    cr_assert_eq(udfhost_run_add_plugin(run, "sum", NULL, NULL, &err), 0);
    udfhost_run_cancel(run);
    cr_assert_eq(udfhost_run_execute(run, &err), UDFHOST_ECANCELLED);
    udfhost_run_free(run);
    /* A run after a cancelled one works. */
    udfhost_results *res = run_sums(ds, NULL, 2);
    check_sums(res, NULL);
    udfhost_results_free(res);
    udfhost_dataset_close(ds);
}

static void *cancel_later(void *arg)
{
    struct timespec t = {0, 20 * 1000 * 1000};
    nanosleep(&t, NULL);
    udfhost_run_cancel(arg);
    return NULL;
}

Test(api, cancel_from_another_thread)
{
    /* 8192 frames of 128 x 128 float32 (512 MiB of zeros, untouched pages cost nothing) through
     * 16 dense masks: far longer than the 20 ms before the cancel, while one tile (what a worker
     * finishes before it notices) stays short even under a sanitizer. */
    uint64_t shape[3] = {8192, 128, 128};
    float *zeros = calloc(8192ull * 128 * 128, sizeof *zeros);
    cr_assert(zeros);
    udfhost_dataset *ds;
    udfhost_error err;
    cr_assert_eq(udfhost_dataset_from_memory(zeros, "float32", 3, shape, 2, &ds, &err), 0);
    udfhost_run *run;
    cr_assert_eq(udfhost_run_create(ds, &run, &err), 0);
    const char *masks[18];
    char buf[16][40];
    for (int i = 0; i < 16; i++) {
        snprintf(buf[i], sizeof buf[i], "disk=64,64,%d", 10 + 3 * i);
        masks[i] = buf[i];
    }
    masks[16] = "sparse=false";
    masks[17] = NULL;
    cr_assert_eq(udfhost_run_add_plugin(run, "masks", masks, NULL, &err), 0, "%s", err.message);
    pthread_t t;
    pthread_create(&t, NULL, cancel_later, run);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    cr_assert_eq(udfhost_run_execute(run, &err), UDFHOST_ECANCELLED, "%s", err.message);
    clock_gettime(CLOCK_MONOTONIC, &b);
    pthread_join(t, NULL);
    double secs = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
    cr_assert_lt(secs, 2.0, "cancelled after %.2f s", secs);
    udfhost_run_free(run);
    udfhost_dataset_close(ds);
    free(zeros);
}

Test(api, plugin_errors)
{
    udfhost_dataset *ds = open_sample();
    udfhost_run *run;
    udfhost_error err = {0};
    cr_assert_eq(udfhost_run_create(ds, &run, &err), 0);
    cr_assert_eq(udfhost_run_add_plugin(run, "nosuchplugin", NULL, NULL, &err), UDFHOST_EUSAGE);
    cr_assert(strstr(err.message, "nosuchplugin"), "%s", err.message);
    const char *const bad[] = {"dtype=int7", NULL};
    cr_assert_eq(udfhost_run_add_plugin(run, "sum", bad, NULL, &err), UDFHOST_EUSAGE);
    cr_assert(strstr(err.message, "int7"), "%s", err.message);
    cr_assert_eq(udfhost_run_add_plugin(run, "sum", NULL, NULL, &err), 0);
    cr_assert_eq(udfhost_run_add_plugin(run, "sum", NULL, NULL, &err), UDFHOST_EUSAGE);
    char fail[4096];
    const char *fixtures = getenv("UDFHOST_FIXTURES");
    snprintf(fail, sizeof fail, "%s/fail.so", fixtures ? fixtures : ".");
    const char *const when[] = {"hook=process_tile", "partition=3", NULL};
    cr_assert_eq(udfhost_run_add_plugin(run, fail, when, NULL, &err), 0, "%s", err.message);
    cr_assert_eq(udfhost_run_execute(run, &err), UDFHOST_EPLUGIN);
    cr_assert(strstr(err.message, "process_tile") && strstr(err.message, "partition 3"), "%s",
              err.message);
    cr_assert_eq(udfhost_run_take_results(run, &(udfhost_results *){NULL}, NULL), UDFHOST_EUSAGE);
    udfhost_run_free(run);
    udfhost_dataset_close(ds);
}

Test(api, corrections_from_arrays_equal_subtracting_here)
{
    static float dark[PIXELS];
    static uint8_t excluded[PIXELS];
    for (int p = 0; p < PIXELS; p++)
        dark[p] = (float)(p % 7);
    excluded[5 * SIG + 6] = 1;
    udfhost_array d = {.data = dark, .dtype = "float32", .ndim = 2, .shape = {SIG, SIG}};
    udfhost_array x = {.data = excluded, .dtype = "bool", .ndim = 2, .shape = {SIG, SIG}};
    udfhost_array wrong = {.data = dark, .dtype = "float32", .ndim = 2, .shape = {SIG, SIG - 1}};
    udfhost_dataset *ds = open_sample();
    udfhost_run *run;
    udfhost_error err = {0};
    cr_assert_eq(udfhost_run_create(ds, &run, &err), 0);
    cr_assert_eq(udfhost_run_set_corrections(run, &wrong, NULL, NULL, &err), UDFHOST_EDATA);
    cr_assert(strstr(err.message, "dark"), "%s", err.message);
    cr_assert_eq(udfhost_run_set_corrections(run, &d, NULL, &x, &err), 0, "%s", err.message);
    const char *const f64[] = {"dtype=float64", NULL};
    cr_assert_eq(udfhost_run_add_plugin(run, "sum", f64, NULL, &err), 0);
    cr_assert_eq(udfhost_run_execute(run, &err), 0, "%s", err.message);
    udfhost_results *res;
    cr_assert_eq(udfhost_run_take_results(run, &res, &err), 0);
    const double *s = get(res, 0, "intensity").data;
    for (int p = 0; p < PIXELS; p++) {
        if (excluded[p])
            continue;
        double want = 0;
        for (int f = 0; f < FRAMES; f++)
            want += (double)((float)sample[(size_t)f * PIXELS + p] - dark[p]);
        cr_assert(fabs(s[p] - want) <= 1e-9 * fabs(want) + 1e-6, "pixel %d: %g != %g", p, s[p],
                  want);
    }
    udfhost_results_free(res);
    udfhost_run_free(run);
    udfhost_dataset_close(ds);
}
