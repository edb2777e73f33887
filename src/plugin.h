/* Plugins as the host holds them: finding and loading the .so, checking its descriptor, the
 * parameters the user gave, the buffers it declared, and the udf_host services table. */
#ifndef UDFHOST_PLUGIN_H
#define UDFHOST_PLUGIN_H

#include <stdbool.h>
#include <stdint.h>
#include <udfhost/udf.h>

#include "err.h"

/* Size of udf_plugin at ABI 1.0: the least a v1 descriptor may declare. */
#define PLUGIN_DESC_SIZE_1_0 sizeof(udf_plugin)

#define PLUGIN_NAME_MAX 64
#define PLUGIN_MAX_BUFFERS 256

typedef enum plugin_method {
    PLUGIN_PROCESS_TILE,
    PLUGIN_PROCESS_FRAME,
    PLUGIN_PROCESS_PARTITION
} plugin_method;

typedef struct plugin_buffer {
    udf_buffer_decl decl; /* decl.name is NULL: use name */
    char name[PLUGIN_NAME_MAX];
    uint64_t extra_size;  /* product of decl.extra_shape */
} plugin_buffer;

typedef struct param_value {
    const udf_param_decl *decl;
    char *value; /* owned */
} param_value;

typedef struct plugin {
    char *path;                  /* the file loaded */
    void *handle;                /* dlopen handle */
    udf_plugin desc;             /* the descriptor, zero past the plugin's struct_size */
    uint32_t n_params;
    param_value *given;          /* values in command-line order */
    uint32_t n_given;
    plugin_buffer *buffers;      /* declaration order */
    uint32_t n_buffers;
    plugin_method method;
    udf_meta meta;               /* the dataset as this plugin sees it (input_dtype is its own) */
    void *task_data;             /* from init_task */
    bool task_ready;             /* init_task succeeded (or there is none): cleanup is due */
    uint64_t *wanted;            /* frames asked for with select_frames, or NULL: all */
    uint64_t n_wanted;
} plugin;

/* Per-hook-call record behind udf_ctx.host_private: which plugin, which hook, and the message the
 * plugin reported. One per worker and plugin, so reporting needs no lock. */
typedef struct hook_call {
    plugin *pl;
    const char *hook;
    bool declaring; /* declare_buffer is allowed */
    bool has_msg;
    char msg[512];
} hook_call;

/* Resolve `spec` to a file: a path if it contains '/', else NAME.so in each directory of
 * $UDFHOST_PLUGIN_PATH (':'-separated), then in the installed plugin directory; never the current
 * directory unless the path or $UDFHOST_PLUGIN_PATH names it. Refuse a file others could have
 * changed unless plugin_allow_unsafe (before dlopen runs any of its code). Load it, check its
 * ABI, signature and descriptor. Returns 0 and *out, or UH_EPLUGIN/UH_EUSAGE with a message naming
 * the plugin file and the problem. */
int plugin_load(const char *spec, plugin **out, err *e);

/* Load plugin files that others could have changed (writable by others or a group, or in a
 * directory where others may replace them), which plugin_load refuses otherwise:
 * --allow-unsafe-plugins. Set before plugin_load; default false. */
extern bool plugin_allow_unsafe;

/* Unload; calls nothing in the plugin (cleanup is plugin_cleanup's). NULL is fine. */
void plugin_unload(plugin *pl);

/* Directory the installed plugins live in. */
const char *plugin_install_dir(void);

/* Add a "-p name=value" for pl: checks the name is declared, the value parses as its type and lies
 * in its range or choices, and a non-repeatable name is given once. UH_EUSAGE otherwise. */
int plugin_param_add(plugin *pl, const char *assignment, err *e);

/* After all -p: every required parameter was given. UH_EUSAGE otherwise. */
int plugin_params_check(const plugin *pl, err *e);

/* Set up a udf_ctx for a hook call of pl with `call` as its private record. */
void plugin_ctx_init(udf_ctx *ctx, hook_call *call, plugin *pl, const char *hook);

/* Run declare_buffers alone (plugin-info; plugin_setup's first step): sets pl->meta from meta
 * with the plugin's input_dtype, collects and checks the declarations. */
int plugin_declare(plugin *pl, const udf_meta *meta, err *e);

/* Run declare_buffers and init_task on the main thread, after the dataset is known (meta filled
 * except input_dtype, which this sets). Checks the declarations (a merge hook exists when sig or
 * single buffers need merging). UH_EPLUGIN with "plugin NAME: ..." on failure. */
int plugin_setup(plugin *pl, const udf_meta *meta, err *e);

/* Call cleanup if init_task succeeded. Safe to call more than once. */
void plugin_cleanup(plugin *pl);

/* Turn a failed hook call into the host's message: "plugin NAME failed in HOOK[ on partition P]:
 * MESSAGE". partition < 0: none. Returns UH_ENOMEM for UDF_ERR_NOMEM (out of memory is exit 6
 * wherever it happens), else UH_EPLUGIN. */
int plugin_hook_failed(const hook_call *call, int status, int64_t partition, err *e);

/* Messages from host->log up to this level are shown (0 errors ... 3 debug); default 1. */
extern int plugin_log_level;

/* Where they go: the library discards them (NULL, the default); the tool prints them. Called on
 * the plugin's thread, possibly on several at once. */
extern void (*plugin_log_sink)(const char *name, int level, const char *message);

/* The services table handed to every hook. */
extern const udf_host plugin_host_services;

#endif
