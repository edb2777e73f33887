/* Plugin parameters: values from "-p name=value" checked against the plugin's declarations, and
 * the services through which hooks read them. */
#include "param.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "plugin.h"

static int parse_int(const char *s, int64_t *out)
{
    if (!*s || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end || errno == ERANGE)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    if (!*s || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (*end || errno == ERANGE || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"}, *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(s, yes[i]))
            return *out = 1, 0;
        if (!strcasecmp(s, no[i]))
            return *out = 0, 0;
    }
    return -1;
}

static int choice_ok(const char *choices, const char *s)
{
    size_t n = strlen(s);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncmp(p, s, n))
            return 1;
        p += len + (bar != NULL);
    }
    return 0;
}

/* Walk a comma-separated list, calling one(element) for each; -1 on an empty element. */
static int list_each(const char *s, int (*one)(const char *elem, void *arg), void *arg)
{
    char buf[128];
    for (const char *p = s;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len >= sizeof buf)
            return -1;
        memcpy(buf, p, len);
        buf[len] = '\0';
        if (one(buf, arg))
            return -1;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

static int in_range(const udf_param_decl *d, double v)
{
    return !(d->min < d->max) || (v >= d->min && v <= d->max);
}

typedef struct check_arg {
    const udf_param_decl *decl;
    int is_int;
} check_arg;

static int check_elem(const char *elem, void *arg)
{
    const check_arg *c = arg;
    double v;
    if (c->is_int) {
        int64_t i;
        if (parse_int(elem, &i))
            return -1;
        v = (double)i;
    } else if (parse_double(elem, &v)) {
        return -1;
    }
    return in_range(c->decl, v) ? 0 : -1;
}

static const char *type_word(udf_param_type t)
{
    switch (t) {
    case UDF_PARAM_INT: return "an integer";
    case UDF_PARAM_FLOAT: return "a number";
    case UDF_PARAM_BOOL: return "true or false";
    case UDF_PARAM_STRING: return "text";
    case UDF_PARAM_CHOICE: return "one of the choices";
    case UDF_PARAM_INTS: return "a comma-separated list of integers";
    case UDF_PARAM_FLOATS: return "a comma-separated list of numbers";
    default: return "?";
    }
}

int param_value_check(const udf_param_decl *d, const char *value, char *why, size_t cap)
{
    int ok = 0;
    check_arg c = {d, d->type == UDF_PARAM_INT || d->type == UDF_PARAM_INTS};
    int b;
    switch (d->type) {
    case UDF_PARAM_INT:
    case UDF_PARAM_FLOAT: ok = !check_elem(value, &c); break;
    case UDF_PARAM_INTS:
    case UDF_PARAM_FLOATS: ok = !list_each(value, check_elem, &c); break;
    case UDF_PARAM_BOOL: ok = !parse_bool(value, &b); break;
    case UDF_PARAM_STRING: ok = 1; break;
    case UDF_PARAM_CHOICE: ok = choice_ok(d->choices, value); break;
    }
    if (ok)
        return 0;
    if (d->type == UDF_PARAM_CHOICE)
        snprintf(why, cap, "'%s' is not one of %s", value, d->choices);
    else if (d->min < d->max)
        snprintf(why, cap, "'%s' is not %s in [%g, %g]", value, type_word(d->type), d->min,
                 d->max);
    else
        snprintf(why, cap, "'%s' is not %s", value, type_word(d->type));
    return -1;
}

static int name_ok(const char *s)
{
    if (!s || !*s || strlen(s) >= PLUGIN_NAME_MAX)
        return 0;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_'))
            return 0;
    return 1;
}

int param_decls_check(const udf_param_decl *decls, uint32_t *count, char *why, size_t cap)
{
    uint32_t n = 0;
    for (; decls && decls[n].name; n++) {
        const udf_param_decl *d = &decls[n];
        if (!name_ok(d->name))
            return snprintf(why, cap, "parameter name '%s' is not [a-z0-9_]+", d->name), -1;
        for (uint32_t j = 0; j < n; j++)
            if (!strcmp(decls[j].name, d->name))
                return snprintf(why, cap, "parameter '%s' declared twice", d->name), -1;
        if (d->type < UDF_PARAM_INT || d->type > UDF_PARAM_FLOATS)
            return snprintf(why, cap, "parameter '%s' has unknown type %d", d->name, (int)d->type), -1;
        if (d->type == UDF_PARAM_CHOICE && (!d->choices || !*d->choices))
            return snprintf(why, cap, "choice parameter '%s' has no choices", d->name), -1;
        if (d->flags & ~(uint32_t)(UDF_PARAM_REQUIRED | UDF_PARAM_REPEATABLE))
            return snprintf(why, cap, "parameter '%s' has unknown flags", d->name), -1;
        char sub[256];
        if (d->default_value && param_value_check(d, d->default_value, sub, sizeof sub))
            return snprintf(why, cap, "default of parameter '%s': %s", d->name, sub), -1;
        if (n == 1024)
            return snprintf(why, cap, "more than 1024 parameters"), -1;
    }
    *count = n;
    return 0;
}

int plugin_param_add(plugin *pl, const char *assignment, err *e)
{
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return err_set(e, UH_EUSAGE, "-p %s: expected NAME=VALUE", assignment);
    size_t len = (size_t)(eq - assignment);
    const udf_param_decl *d = NULL;
    for (uint32_t i = 0; i < pl->n_params; i++)
        if (strlen(pl->desc.params[i].name) == len &&
            !strncmp(pl->desc.params[i].name, assignment, len))
            d = &pl->desc.params[i];
    if (!d) {
        char known[512] = "";
        for (uint32_t i = 0; i < pl->n_params; i++)
            snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "",
                     pl->desc.params[i].name);
        return err_set(e, UH_EUSAGE, "plugin %s: unknown parameter '%.*s' (known: %s)",
                       pl->desc.name, (int)len, assignment, *known ? known : "none");
    }
    if (!(d->flags & UDF_PARAM_REPEATABLE))
        for (uint32_t i = 0; i < pl->n_given; i++)
            if (pl->given[i].decl == d)
                return err_set(e, UH_EUSAGE, "plugin %s: parameter '%s' given twice",
                               pl->desc.name, d->name);
    char why[256];
    if (param_value_check(d, eq + 1, why, sizeof why))
        return err_set(e, UH_EUSAGE, "plugin %s: parameter %s: %s", pl->desc.name, d->name, why);
    param_value *g = realloc(pl->given, (pl->n_given + 1) * sizeof *g);
    if (!g)
        return err_set(e, UH_ENOMEM, "out of memory");
    pl->given = g;
    if (!(g[pl->n_given].value = strdup(eq + 1)))
        return err_set(e, UH_ENOMEM, "out of memory");
    g[pl->n_given++].decl = d;
    return 0;
}

int plugin_params_check(const plugin *pl, err *e)
{
    for (uint32_t i = 0; i < pl->n_params; i++) {
        const udf_param_decl *d = &pl->desc.params[i];
        if (!(d->flags & UDF_PARAM_REQUIRED))
            continue;
        uint32_t j = 0;
        while (j < pl->n_given && pl->given[j].decl != d)
            j++;
        if (j == pl->n_given)
            return err_set(e, UH_EUSAGE, "plugin %s: parameter '%s' is required (-p %s=...)",
                           pl->desc.name, d->name, d->name);
    }
    return 0;
}

/* --- services -------------------------------------------------------------------------------- */

static plugin *ctx_plugin(udf_ctx *ctx)
{
    return ((hook_call *)ctx->host_private)->pl;
}

/* The index-th value of `name`, with the default as the only value when none was given. */
static int value_of(udf_ctx *ctx, const char *name, uint32_t index, const udf_param_decl **decl,
                    const char **value)
{
    plugin *pl = ctx_plugin(ctx);
    const udf_param_decl *d = NULL;
    for (uint32_t i = 0; i < pl->n_params; i++)
        if (!strcmp(pl->desc.params[i].name, name))
            d = &pl->desc.params[i];
    if (!d)
        return UDF_ERR_NOT_FOUND;
    *decl = d;
    uint32_t seen = 0, given = 0;
    for (uint32_t i = 0; i < pl->n_given; i++) {
        if (pl->given[i].decl != d)
            continue;
        given++;
        if (seen++ == index) {
            *value = pl->given[i].value;
            return UDF_OK;
        }
    }
    if (!given && index == 0 && d->default_value) {
        *value = d->default_value;
        return UDF_OK;
    }
    return UDF_ERR_RANGE;
}

uint32_t param_count(udf_ctx *ctx, const char *name)
{
    const udf_param_decl *d;
    const char *v;
    uint32_t n = 0;
    while (value_of(ctx, name, n, &d, &v) == UDF_OK)
        n++;
    return n;
}

/* The index-th value of `name` if the parameter's type is one of the bits in `types`. */
static int typed_value(udf_ctx *ctx, const char *name, uint32_t index, unsigned types,
                       const char **value)
{
    const udf_param_decl *d;
    int rc = value_of(ctx, name, index, &d, value);
    if (rc)
        return rc;
    return (types >> d->type) & 1u ? UDF_OK : UDF_ERR_PARAM;
}

int param_int(udf_ctx *ctx, const char *name, uint32_t index, int64_t *out)
{
    const char *v;
    int rc = typed_value(ctx, name, index, 1u << UDF_PARAM_INT, &v);
    return rc ? rc : parse_int(v, out) ? UDF_ERR_PARAM : UDF_OK;
}

int param_double(udf_ctx *ctx, const char *name, uint32_t index, double *out)
{
    const char *v;
    int rc = typed_value(ctx, name, index, 1u << UDF_PARAM_FLOAT | 1u << UDF_PARAM_INT, &v);
    return rc ? rc : parse_double(v, out) ? UDF_ERR_PARAM : UDF_OK;
}

int param_bool(udf_ctx *ctx, const char *name, uint32_t index, int *out)
{
    const char *v;
    int rc = typed_value(ctx, name, index, 1u << UDF_PARAM_BOOL, &v);
    return rc ? rc : parse_bool(v, out) ? UDF_ERR_PARAM : UDF_OK;
}

int param_string(udf_ctx *ctx, const char *name, uint32_t index, const char **out)
{
    const udf_param_decl *d;
    return value_of(ctx, name, index, &d, out);
}

typedef struct collect_arg {
    int is_int;
    void *out;
    uint32_t max, n;
} collect_arg;

static int collect_elem(const char *elem, void *arg)
{
    collect_arg *c = arg;
    if (c->n < c->max) {
        if (c->is_int) {
            if (parse_int(elem, (int64_t *)c->out + c->n))
                return -1;
        } else if (parse_double(elem, (double *)c->out + c->n)) {
            return -1;
        }
    }
    c->n++;
    return 0;
}

static int list_values(udf_ctx *ctx, const char *name, uint32_t index, int want_int, void *out,
                       uint32_t max, uint32_t *n)
{
    const unsigned ints = 1u << UDF_PARAM_INT | 1u << UDF_PARAM_INTS;
    const unsigned floats = 1u << UDF_PARAM_FLOAT | 1u << UDF_PARAM_FLOATS;
    const char *v;
    int rc = typed_value(ctx, name, index, want_int ? ints : ints | floats, &v);
    if (rc)
        return rc;
    collect_arg c = {want_int, out, max, 0};
    if (list_each(v, collect_elem, &c))
        return UDF_ERR_PARAM;
    *n = c.n;
    return UDF_OK;
}

int param_ints(udf_ctx *ctx, const char *name, uint32_t index, int64_t *out, uint32_t max,
               uint32_t *n)
{
    return list_values(ctx, name, index, 1, out, max, n);
}

int param_doubles(udf_ctx *ctx, const char *name, uint32_t index, double *out, uint32_t max,
                  uint32_t *n)
{
    return list_values(ctx, name, index, 0, out, max, n);
}

int param_given(udf_ctx *ctx, uint32_t position, const char **name, const char **value)
{
    plugin *pl = ctx_plugin(ctx);
    if (position >= pl->n_given)
        return UDF_ERR_RANGE;
    *name = pl->given[position].decl->name;
    *value = pl->given[position].value;
    return UDF_OK;
}
