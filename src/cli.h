/* Command-line parsing driven by one options table per subcommand; the same table prints --help.
 * Options are handled in the order given (so "-p" binds to the preceding "--plugin"). */
#ifndef UDFHOST_CLI_H
#define UDFHOST_CLI_H

#include <stdio.h>

#include "err.h"

typedef struct cli_option {
    const char *long_name;  /* without "--" */
    char short_name;        /* 0: none */
    const char *arg;        /* argument name for --help; NULL: a flag without argument */
    const char *help;       /* one line */
    int id;
} cli_option;

/* Called for each option in order (value NULL for flags) and for each positional argument (id
 * CLI_POSITIONAL). Returns 0 or a negative status with e set. */
typedef int (*cli_handler)(void *state, int id, const char *value, err *e);

#define CLI_POSITIONAL (-1)

/* Parse argv[0..argc) (argv[0] is the first argument, not the program name). Accepts --name=value,
 * --name value, -x value, -xvalue; "--" ends options; "-" is positional. The table ends with a
 * NULL long_name. Returns 0 or UH_EUSAGE for unknown options and missing arguments. */
int cli_parse(int argc, char **argv, const cli_option *opts, cli_handler handler, void *state,
              err *e);

/* Print "usage" and then the options table, aligned. */
void cli_help(FILE *out, const char *usage, const cli_option *opts);

#endif
