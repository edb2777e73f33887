/* udfhost: the subcommand table and the top level, which prints the one-line error and picks the
 * exit status. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "sig.h"
#include "config.h"
#include "err.h"
#include "mpi_run.h"
#include "plugin.h"
#include <udfhost/udf.h>

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv, err *e);
    const char *summary;
} command;

static const command commands[] = {
    {"run", cmd_run, "run UDF plugins over a dataset and write their results as .npy"},
    {"info", cmd_info, "show what udfhost makes of a dataset (format, shapes, dtype, size)"},
    {"plugin-info", cmd_plugin_info, "show a plugin's description, parameters and buffers"},
    {"list-plugins", cmd_list_plugins, "list the plugins udfhost finds: name, version, description"},
    {"check-plugin", cmd_check_plugin, "validate a plugin and run it on generated data"},
};

/* Plugins' log messages, one line each on stderr. */
static void log_to_stderr(const char *name, int level, const char *message)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    fprintf(stderr, "udfhost: %s: %s: %s\n", name, names[level], message);
}

static void usage(FILE *out)
{
    fprintf(out, "Usage: udfhost COMMAND [OPTIONS] [ARGS]\n"
                 "Run user-defined reduction functions (UDF plugins) over electron-microscopy\n"
                 "datasets, at the speed of the memory bus.\n\nCommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nOptions:\n"
                 "  -h, --help     show this help (udfhost COMMAND --help for a command's options)\n"
                 "  -V, --version  show the version\n"
                 "\nExit status: 0 success, 2 usage error, 3 bad input data, 4 plugin error,\n"
                 "5 error writing results, 6 out of memory, 70 internal error, 130 stopped by SIGINT,\n"
                 "143 stopped by SIGTERM.\n"
                 "See udfhost(1), udfhost-sdk(3) and, for the library and the Python package udfhost,\n"
                 "libudfhost(3).\n");
}

/* A command's output is only complete if stdout flushed and closed cleanly (full disk, closed
 * pipe): check it as git does. */
static int stdout_finish(err *e)
{
    if (fflush(stdout) || ferror(stdout))
        return err_sys(e, UH_EIO, errno, "write error on standard output");
    if (fclose(stdout) && errno != EBADF)
        return err_sys(e, UH_EIO, errno, "close failed on standard output");
    return 0;
}

int main(int argc, char **argv)
{
    err e = {0};
    int rc;
    /* Before sig_install: MPI installs signal handlers of its own, which ours replace. */
    mpi_run_start(&argc, &argv);
    sig_install();
    plugin_log_sink = log_to_stderr;
    if (argc < 2) {
        usage(stderr);
        return mpi_run_end(err_exit_status(UH_EUSAGE));
    }
    const char *name = argv[1];
    if (!strcmp(name, "-h") || !strcmp(name, "--help") || !strcmp(name, "help")) {
        usage(stdout);
        rc = stdout_finish(&e);
    } else if (!strcmp(name, "-V") || !strcmp(name, "--version")) {
#ifdef HAVE_MPI
        printf("udfhost %s (plugin ABI %d.%d) (MPI)\n", PACKAGE_VERSION, UDF_ABI_MAJOR,
               UDF_ABI_MINOR);
#else
        printf("udfhost %s (plugin ABI %d.%d)\n", PACKAGE_VERSION, UDF_ABI_MAJOR, UDF_ABI_MINOR);
#endif
        rc = stdout_finish(&e);
    } else {
        const command *cmd = NULL;
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
            if (!strcmp(commands[i].name, name))
                cmd = &commands[i];
        if (!cmd)
            rc = err_set(&e, UH_EUSAGE, "unknown command '%s' (see udfhost --help)", name);
        else if (!(rc = cmd->run(argc - 2, argv + 2, &e)))
            rc = stdout_finish(&e);
    }
    if (rc) {
        mpi_run_name_failure(&e);
        fprintf(stderr, "udfhost: %s\n", e.msg[0] ? e.msg : "failed");
    }
    if (rc == UH_EINTR && sig_stop_signal())
        return mpi_run_end(128 + sig_stop_signal());
    return mpi_run_end(err_exit_status(rc));
}
