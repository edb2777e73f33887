/* Test fixture: a plugin built for a future ABI 2, which exports udf_plugin_entry_v2 only. */
#include <udfhost/udf.h>

const void *udf_plugin_entry_v2(void);
const void *udf_plugin_entry_v2(void)
{
    return 0;
}
