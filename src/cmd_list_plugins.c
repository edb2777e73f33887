/* `udfhost list-plugins`: every plugin `--plugin NAME` can find, in search order, with its
 * version, description and file; files that fail to load are listed with the reason. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "json.h"
#include "plugin.h"

enum { OPT_HELP = 1, OPT_JSON, OPT_ALLOW_UNSAFE };

static const cli_option list_options[] = {
    {"json", 0, NULL, "print one JSON array of {name, version, description, path[, error]}",
     OPT_JSON},
    {"allow-unsafe-plugins", 0, NULL,
     "load plugin files that others could have changed (see udfhost(1), PLUGIN SAFETY)",
     OPT_ALLOW_UNSAFE},
    {"help", 'h', NULL, "show this help and exit", OPT_HELP},
    {NULL, 0, NULL, NULL, 0},
};

static const char list_usage[] =
    "Usage: udfhost list-plugins [--json]\n"
    "List the plugins that --plugin NAME finds: NAME.so in each directory of\n"
    "$UDFHOST_PLUGIN_PATH (':'-separated), then in the installed plugin directory. One line\n"
    "each: name, version, description, file. A name found in several directories is listed once,\n"
    "from the first (the file --plugin NAME loads); the others are shadowed and not shown.\n"
    "A file that fails to load (or that others could have changed: see udfhost(1), PLUGIN\n"
    "SAFETY) is listed as \"unloadable: REASON\" (with --json: version and\n"
    "description null, the reason in \"error\"); the exit status stays 0.";

typedef struct list_args {
    int json;
    int help;
} list_args;

static int list_option(void *state, int id, const char *v, err *e)
{
    list_args *a = state;
    switch (id) {
    case OPT_HELP: a->help = 1; return 0;
    case OPT_JSON: a->json = 1; return 0;
    case OPT_ALLOW_UNSAFE: plugin_allow_unsafe = true; return 0;
    default: return err_set(e, UH_EUSAGE, "list-plugins takes no arguments ('%s')", v);
    }
}

/* One listed plugin; all strings owned. version and description are NULL when it did not load. */
typedef struct entry {
    char *name;  /* the file name without .so: what --plugin takes */
    char *path;
    char *version;
    char *description;
    char *self_name; /* the descriptor's name when it differs from `name` */
    char *error;     /* why it did not load */
} entry;

typedef struct entry_list {
    entry *v;
    size_t n, cap;
} entry_list;

static void entries_free(entry_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        entry *x = &l->v[i];
        free(x->name);
        free(x->path);
        free(x->version);
        free(x->description);
        free(x->self_name);
        free(x->error);
    }
    free(l->v);
}

/* The names plugin_load accepts: [a-z0-9_]+ below PLUGIN_NAME_MAX. */
static int plugin_name_ok(const char *s, size_t len)
{
    if (!len || len >= PLUGIN_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

static int so_filter(const struct dirent *d)
{
    size_t len = strlen(d->d_name);
    return len > 3 && !strcmp(d->d_name + len - 3, ".so") && plugin_name_ok(d->d_name, len - 3);
}

/* Load the file to read its identity; a failure becomes the entry's error (without the leading
 * "PATH: " the loader puts before its messages, as the path has a column of its own). */
static int entry_fill(entry *x, err *e)
{
    plugin *pl;
    err le = {0};
    if (plugin_load(x->path, &pl, &le)) {
        if (le.code == UH_ENOMEM)
            return err_set(e, UH_ENOMEM, "out of memory");
        const char *why = le.msg;
        size_t plen = strlen(x->path);
        if (!strncmp(why, x->path, plen) && !strncmp(why + plen, ": ", 2))
            why += plen + 2;
        x->error = strdup(why);
        return x->error ? 0 : err_set(e, UH_ENOMEM, "out of memory");
    }
    x->version = strdup(pl->desc.version);
    x->description = strdup(pl->desc.description ? pl->desc.description : "");
    int bad = !x->version || !x->description;
    if (strcmp(pl->desc.name, x->name) && !(x->self_name = strdup(pl->desc.name)))
        bad = 1;
    plugin_unload(pl);
    return bad ? err_set(e, UH_ENOMEM, "out of memory") : 0;
}

/* Add the plugins of one directory (sorted by name) that no earlier directory had. A directory
 * that does not exist or cannot be read is skipped, as the loader skips it. */
static int list_directory(const char *dir, entry_list *l, err *e)
{
    struct dirent **names;
    int n = scandir(dir, &names, so_filter, alphasort);
    if (n < 0)
        return 0;
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const char *file = names[i]->d_name;
        size_t stem = strlen(file) - 3;
        int shadowed = 0;
        /* After a failure the last entry may lack its name: only freeing is left to do. */
        for (size_t j = 0; !rc && j < l->n && !shadowed; j++)
            shadowed = strlen(l->v[j].name) == stem && !strncmp(l->v[j].name, file, stem);
        if (!rc && !shadowed) {
            if (l->n == l->cap) {
                size_t cap = l->cap ? 2 * l->cap : 16;
                entry *v = realloc(l->v, cap * sizeof *v);
                if (!v) {
                    rc = err_set(e, UH_ENOMEM, "out of memory");
                    free(names[i]);
                    continue;
                }
                l->v = v;
                l->cap = cap;
            }
            entry *x = &l->v[l->n++];
            memset(x, 0, sizeof *x);
            x->name = strndup(file, stem);
            if (!x->name || asprintf(&x->path, "%s/%s", dir, file) < 0) {
                x->path = NULL;
                rc = err_set(e, UH_ENOMEM, "out of memory");
            } else {
                rc = entry_fill(x, e);
            }
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

/* Search order as plugin_load's: $UDFHOST_PLUGIN_PATH, then the installed directory. */
static int list_all(entry_list *l, err *e)
{
    const char *env = getenv("UDFHOST_PLUGIN_PATH");
    char *dirs = NULL;
    if (asprintf(&dirs, "%s%s%s", env ? env : "", env && *env ? ":" : "", plugin_install_dir()) < 0)
        return err_set(e, UH_ENOMEM, "out of memory");
    int rc = 0;
    for (char *save = NULL, *dir = strtok_r(dirs, ":", &save); dir && !rc;
         dir = strtok_r(NULL, ":", &save))
        rc = list_directory(dir, l, e);
    free(dirs);
    return rc;
}

static int print_json(const entry_list *l, err *e)
{
    jbuf b = {0};
    jb_printf(&b, "[");
    for (size_t i = 0; i < l->n; i++) {
        const entry *x = &l->v[i];
        jb_printf(&b, "%s\n  {\"name\": ", i ? "," : "");
        jb_str(&b, x->name);
        jb_printf(&b, ", \"version\": ");
        jb_str(&b, x->version);
        jb_printf(&b, ", \"description\": ");
        jb_str(&b, x->description);
        jb_printf(&b, ", \"path\": ");
        jb_str(&b, x->path);
        if (x->self_name) {
            jb_printf(&b, ", \"plugin_name\": ");
            jb_str(&b, x->self_name);
        }
        if (x->error) {
            jb_printf(&b, ", \"error\": ");
            jb_str(&b, x->error);
        }
        jb_printf(&b, "}");
    }
    jb_printf(&b, "%s]\n", l->n ? "\n" : "");
    int rc = b.oom ? err_set(e, UH_ENOMEM, "out of memory") : 0;
    if (!rc)
        fputs(b.s, stdout);
    jb_free(&b);
    return rc;
}

/* Columns: name, version, description (or "unloadable: REASON"), path. */
static void print_text(const entry_list *l)
{
    int name_w = 4, version_w = 1, text_w = 0;
    for (size_t i = 0; i < l->n; i++) {
        const entry *x = &l->v[i];
        int nw = (int)strlen(x->name), vw = x->version ? (int)strlen(x->version) : 1;
        int tw = x->error ? (int)strlen(x->error) + 12 : (int)strlen(x->description);
        if (x->self_name)
            tw += (int)strlen(x->self_name) + 14;
        name_w = nw > name_w ? nw : name_w;
        version_w = vw > version_w ? vw : version_w;
        text_w = tw > text_w ? tw : text_w;
    }
    if (text_w > 72) /* a very long line would push every path off the screen */
        text_w = 72;
    for (size_t i = 0; i < l->n; i++) {
        const entry *x = &l->v[i];
        char text[1400];
        if (x->error)
            snprintf(text, sizeof text, "unloadable: %s", x->error);
        else if (x->self_name)
            snprintf(text, sizeof text, "%s (calls itself %s)", x->description, x->self_name);
        else
            snprintf(text, sizeof text, "%s", x->description);
        printf("%-*s  %-*s  %-*s  %s\n", name_w, x->name, version_w,
               x->version ? x->version : "-", text_w, text, x->path);
    }
}

int cmd_list_plugins(int argc, char **argv, err *e)
{
    list_args a = {0};
    int rc = cli_parse(argc, argv, list_options, list_option, &a, e);
    if (rc)
        return rc;
    if (a.help) {
        cli_help(stdout, list_usage, list_options);
        return 0;
    }
    entry_list l = {0};
    rc = list_all(&l, e);
    if (!rc) {
        if (a.json)
            rc = print_json(&l, e);
        else
            print_text(&l);
    }
    entries_free(&l);
    return rc;
}
