/* framestats: an example of a one-function plugin (UDF_MAP_PLUGIN). For every frame it writes
 * three numbers to the nav buffer `result` (nav shape x 3): the mean intensity, the standard
 * deviation of the intensities, and the fraction of pixels above the threshold -p above=VALUE. */
#include <math.h>
#include <udfhost/udf.h>

static const udf_param_decl framestats_params[] = {
    {.name = "above", .type = UDF_PARAM_FLOAT, .default_value = "0",
     .help = "count the pixels brighter than this"},
    {0},
};

static int framestats(udf_ctx *ctx, const float *frame, double *out)
{
    uint64_t n = ctx->meta->sig_size;
    double above;
    int status = ctx->host->param_double(ctx, "above", 0, &above);
    if (status != UDF_OK)
        return status;
    /* Two passes over the frame (it is in cache): the mean, then squared deviations from it,
     * which is stable where the sum of squares is not. */
    double sum = 0;
    uint64_t bright = 0;
    for (uint64_t p = 0; p < n; p++) {
        sum += frame[p];
        bright += frame[p] > above;
    }
    double mean = sum / (double)n, dev = 0;
    for (uint64_t p = 0; p < n; p++)
        dev += ((double)frame[p] - mean) * ((double)frame[p] - mean);
    out[0] = mean;
    out[1] = sqrt(dev / (double)n);
    out[2] = (double)bright / (double)n;
    return UDF_OK;
}

UDF_MAP_PLUGIN_PARAMS("framestats", framestats, 3, "mean, standard deviation and bright fraction",
                      framestats_params)
