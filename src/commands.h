/* The subcommands: each cmd_<name> gets the arguments after its name and returns a status. */
#ifndef UDFHOST_COMMANDS_H
#define UDFHOST_COMMANDS_H

#include "err.h"

int cmd_run(int argc, char **argv, err *e);
int cmd_plugin_info(int argc, char **argv, err *e);
int cmd_info(int argc, char **argv, err *e);
int cmd_list_plugins(int argc, char **argv, err *e);
int cmd_check_plugin(int argc, char **argv, err *e);

#endif
