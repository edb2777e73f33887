/* Plugin parameters: checking declarations and values, and the udf_host services that read them. */
#ifndef UDFHOST_PARAM_H
#define UDFHOST_PARAM_H

#include <stddef.h>
#include <udfhost/udf.h>

/* Check `value` against decl's type, range and choices. Returns 0, or -1 with the reason in why. */
int param_value_check(const udf_param_decl *decl, const char *value, char *why, size_t cap);

/* Check a declaration array (names, types, defaults); stores the entry count in *count. Returns 0,
 * or -1 with the reason in why. */
int param_decls_check(const udf_param_decl *decls, uint32_t *count, char *why, size_t cap);

/* The parameter services of udf_host (see udf.h for their contracts). */
uint32_t param_count(udf_ctx *ctx, const char *name);
int param_int(udf_ctx *ctx, const char *name, uint32_t index, int64_t *out);
int param_double(udf_ctx *ctx, const char *name, uint32_t index, double *out);
int param_bool(udf_ctx *ctx, const char *name, uint32_t index, int *out);
int param_string(udf_ctx *ctx, const char *name, uint32_t index, const char **out);
int param_ints(udf_ctx *ctx, const char *name, uint32_t index, int64_t *out, uint32_t max,
               uint32_t *n);
int param_doubles(udf_ctx *ctx, const char *name, uint32_t index, double *out, uint32_t max,
                  uint32_t *n);
int param_given(udf_ctx *ctx, uint32_t position, const char **name, const char **value);

#endif
