/* Plugin loading: the ABI handshake refuses malformed plugins with messages naming the file and
 * what was found and expected; parameters are checked before any data is read. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin.h"

static char path_buf[4096];

static const char *fixture(const char *name)
{
    const char *dir = getenv("UDFHOST_FIXTURES");
    cr_assert(dir, "UDFHOST_FIXTURES is set by make check");
    snprintf(path_buf, sizeof path_buf, "%s/%s.so", dir, name);
    return path_buf;
}

static void expect_refused(const char *name, int code, const char *needle)
{
    plugin *pl = NULL;
    err e = {0};
    const char *path = fixture(name);
    cr_assert_eq(plugin_load(path, &pl, &e), code, "%s: %s", name, e.msg);
    cr_assert_null(pl);
    cr_assert(strstr(e.msg, path), "message '%s' names the file", e.msg);
    cr_assert(strstr(e.msg, needle), "message '%s' says '%s'", e.msg, needle);
    cr_assert_null(strchr(e.msg, '\n'), "one line");
}

Test(loader, refuses_other_abi_major_entry)
{
    expect_refused("abi_v2", UH_EPLUGIN, "built for udfhost ABI 2");
}

Test(loader, refuses_descriptor_with_wrong_major)
{
    expect_refused("bad_major", UH_EPLUGIN, "descriptor says ABI 2, this udfhost speaks ABI 1");
}

Test(loader, refuses_short_descriptor)
{
    expect_refused("short_desc", UH_EPLUGIN, "descriptor is 24 bytes");
}

Test(loader, refuses_missing_entry_point)
{
    expect_refused("no_entry", UH_EPLUGIN, "no symbol udf_plugin_entry_v1");
}

Test(loader, says_which_part_of_the_signature_differs)
{
    expect_refused("bad_signature", UH_EPLUGIN, "pointer size differs");
}

Test(loader, unknown_name_lists_searched_directories)
{
    plugin *pl = NULL;
    err e = {0};
    cr_assert_eq(plugin_load("no_such_plugin", &pl, &e), UH_EUSAGE);
    cr_assert(strstr(e.msg, "plugin 'no_such_plugin' not found"), "%s", e.msg);
    cr_assert(strstr(e.msg, plugin_install_dir()), "%s", e.msg);
    cr_assert_eq(plugin_load("../evil", &pl, &e), UH_EUSAGE, "a path that does not exist");
    cr_assert_eq(plugin_load("Bad-Name", &pl, &e), UH_EUSAGE);
    cr_assert(strstr(e.msg, "not a plugin name"), "%s", e.msg);
}

/* A copy of the fail fixture in a fresh directory, with the given file and directory modes. */
static void unsafe_copy(char *dir, size_t cap, char *path, size_t path_cap, mode_t file_mode,
                        mode_t dir_mode)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, cap, "%s/udfhost-loader-XXXXXX", t && *t ? t : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, path_cap, "%s/fail.so", dir);
    FILE *in = fopen(fixture("fail"), "rb"), *out = fopen(path, "wb");
    cr_assert(in && out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)))
        cr_assert_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    cr_assert_eq(fclose(out), 0);
    cr_assert_eq(chmod(path, file_mode), 0);
    cr_assert_eq(chmod(dir, dir_mode), 0);
}

Test(loader, refuses_files_others_could_change_unless_allowed)
{
    static const struct {
        mode_t file, dir;
        const char *why;
    } cases[] = {
        {0757, 0755, "anyone may change"},
        {0755, 0777, "where anyone may replace it"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dir[4096], path[4200];
        unsafe_copy(dir, sizeof dir, path, sizeof path, cases[i].file, cases[i].dir);
        plugin *pl = NULL;
        err e = {0};
        cr_assert_eq(plugin_load(path, &pl, &e), UH_EPLUGIN, "%s", e.msg);
        cr_assert(strstr(e.msg, path) && strstr(e.msg, cases[i].why) &&
                      strstr(e.msg, "--allow-unsafe-plugins"),
                  "message '%s' names the file, says why and names the flag", e.msg);
        plugin_allow_unsafe = true;
        cr_assert_eq(plugin_load(path, &pl, &e), 0, "%s", e.msg);
        plugin_allow_unsafe = false;
        plugin_unload(pl);
        /* With the sticky bit (as /tmp), a file of our own is safe. */
        cr_assert_eq(chmod(dir, 01777), 0);
        cr_assert_eq(chmod(path, 0755), 0);
        cr_assert_eq(plugin_load(path, &pl, &e), 0, "%s", e.msg);
        plugin_unload(pl);
        cr_assert_eq(unlink(path), 0);
        cr_assert_eq(rmdir(dir), 0);
    }
}

Test(loader, loads_fixture_and_checks_parameters)
{
    plugin *pl = NULL;
    err e = {0};
    cr_assert_eq(plugin_load(fixture("fail"), &pl, &e), 0, "%s", e.msg);
    cr_assert_str_eq(pl->desc.name, "fail");
    cr_assert_eq(pl->method, PLUGIN_PROCESS_TILE);
    cr_assert_eq(pl->n_params, 4);
    cr_assert_eq(plugin_param_add(pl, "hook=merge", &e), 0, "%s", e.msg);
    cr_assert_eq(plugin_param_add(pl, "hook=merge", &e), UH_EUSAGE, "not repeatable");
    cr_assert(strstr(e.msg, "given twice"), "%s", e.msg);
    cr_assert_eq(plugin_param_add(pl, "partition=-2", &e), UH_EUSAGE, "below min");
    cr_assert(strstr(e.msg, "partition"), "%s", e.msg);
    cr_assert_eq(plugin_param_add(pl, "partition=1.5", &e), UH_EUSAGE, "not an integer");
    cr_assert_eq(plugin_param_add(pl, "silent=maybe", &e), UH_EUSAGE, "not a bool");
    cr_assert_eq(plugin_param_add(pl, "nope=1", &e), UH_EUSAGE);
    cr_assert(strstr(e.msg, "unknown parameter 'nope' (known: hook, partition, silent, how)"), "%s",
              e.msg);
    cr_assert_eq(plugin_param_add(pl, "novalue", &e), UH_EUSAGE);
    cr_assert_eq(plugin_params_check(pl, &e), 0);
    plugin_unload(pl);
}

Test(loader, services_read_parameters_by_type)
{
    plugin *pl = NULL;
    err e = {0};
    cr_assert_eq(plugin_load(fixture("fail"), &pl, &e), 0, "%s", e.msg);
    cr_assert_eq(plugin_param_add(pl, "partition=7", &e), 0);
    udf_ctx ctx;
    hook_call call;
    plugin_ctx_init(&ctx, &call, pl, "test");
    const udf_host *h = ctx.host;
    int64_t i;
    double d;
    const char *s;
    int64_t list[4];
    uint32_t n;
    cr_assert_eq(h->param_int(&ctx, "partition", 0, &i), UDF_OK);
    cr_assert_eq(i, 7);
    cr_assert_eq(h->param_double(&ctx, "partition", 0, &d), UDF_OK);
    cr_assert_eq(d, 7.0);
    cr_assert_eq(h->param_ints(&ctx, "partition", 0, list, 4, &n), UDF_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(h->param_string(&ctx, "hook", 0, &s), UDF_OK);
    cr_assert_str_eq(s, "none", "the default is the value when none was given");
    cr_assert_eq(h->param_count(&ctx, "hook"), 1);
    cr_assert_eq(h->param_int(&ctx, "hook", 0, &i), UDF_ERR_PARAM, "type mismatch");
    cr_assert_eq(h->param_int(&ctx, "partition", 1, &i), UDF_ERR_RANGE);
    cr_assert_eq(h->param_int(&ctx, "missing", 0, &i), UDF_ERR_NOT_FOUND);
    cr_assert_eq(h->param_count(&ctx, "missing"), 0);
    const char *name, *value;
    cr_assert_eq(h->param_given(&ctx, 0, &name, &value), UDF_OK);
    cr_assert_str_eq(name, "partition");
    cr_assert_str_eq(value, "7");
    cr_assert_eq(h->param_given(&ctx, 1, &name, &value), UDF_ERR_RANGE);
    plugin_unload(pl);
}
