/* min: the per-pixel minimum over the selected frames, in the dataset's own element type (exact).
 * NaN propagates as in np.min: a pixel that is NaN in any frame is NaN in the result. */
#define EXTREMUM_NAME "min"
#define EXTREMUM_DESCRIPTION "per-pixel minimum over frames, in the data's own type"
#define EXTREMUM_BEYOND(x, m) ((x) < (m))
#define EXTREMUM_FILL INFINITY
#include "extremum.h"
