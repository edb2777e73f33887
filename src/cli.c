/* Table-driven option parsing and help. */
#include "cli.h"

#include <string.h>

static const cli_option *find_long(const cli_option *opts, const char *name, size_t len)
{
    for (; opts->long_name; opts++)
        if (strlen(opts->long_name) == len && !strncmp(opts->long_name, name, len))
            return opts;
    return NULL;
}

static const cli_option *find_short(const cli_option *opts, char c)
{
    for (; opts->long_name; opts++)
        if (opts->short_name && opts->short_name == c)
            return opts;
    return NULL;
}

int cli_parse(int argc, char **argv, const cli_option *opts, cli_handler handler, void *state,
              err *e)
{
    int only_positional = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int rc;
        if (only_positional || a[0] != '-' || !a[1]) {
            if ((rc = handler(state, CLI_POSITIONAL, a, e)))
                return rc;
            continue;
        }
        if (!strcmp(a, "--")) {
            only_positional = 1;
            continue;
        }
        const cli_option *o;
        const char *value = NULL;
        if (a[1] == '-') {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            if (!(o = find_long(opts, name, len)))
                return err_set(e, UH_EUSAGE, "unknown option --%.*s (see --help)", (int)len, name);
            if (eq) {
                if (!o->arg)
                    return err_set(e, UH_EUSAGE, "option --%s takes no value", o->long_name);
                value = eq + 1;
            }
        } else {
            if (!(o = find_short(opts, a[1])))
                return err_set(e, UH_EUSAGE, "unknown option -%c (see --help)", a[1]);
            if (a[2]) {
                if (!o->arg)
                    return err_set(e, UH_EUSAGE, "option -%c takes no value", a[1]);
                value = a + 2;
            }
        }
        if (o->arg && !value) {
            if (i + 1 >= argc)
                return err_set(e, UH_EUSAGE, "option --%s needs a value (%s)", o->long_name,
                               o->arg);
            value = argv[++i];
        }
        if ((rc = handler(state, o->id, value, e)))
            return rc;
    }
    return 0;
}

void cli_help(FILE *out, const char *usage, const cli_option *opts)
{
    fprintf(out, "%s\n\nOptions:\n", usage);
    for (; opts->long_name; opts++) {
        char left[64];
        snprintf(left, sizeof left, "%c%c%s--%s%s%s", opts->short_name ? '-' : ' ',
                 opts->short_name ? opts->short_name : ' ', opts->short_name ? ", " : "  ",
                 opts->long_name, opts->arg ? " " : "", opts->arg ? opts->arg : "");
        /* Help text starts in column 32 and wraps at 100; a long option gets a line of its own
         * (also one of 28 characters, which would leave a single space before its help). */
        if (strlen(left) >= 28)
            fprintf(out, "  %s\n%31s", left, "");
        else
            fprintf(out, "  %-28s ", left);
        const char *h = opts->help;
        while (strlen(h) > 68) {
            int cut = 68;
            while (cut > 0 && h[cut] != ' ')
                cut--;
            if (!cut)
                break;
            fprintf(out, "%.*s\n%31s", cut, h, "");
            h += cut + 1;
        }
        fprintf(out, "%s\n", h);
    }
}
