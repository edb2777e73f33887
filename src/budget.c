/* The memory budget check: buffer bytes from the plugins' declarations, limits from getrlimit,
 * /proc/self/status and sysinfo. */
#include "budget.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>

#include "bufs.h"
#include "plan.h"
#include "shape.h"

/* A field of /proc/self/status in bytes ("VmSize:   1234 kB"), 0 if it cannot be read. */
static uint64_t status_bytes(const char *field)
{
    FILE *f = fopen("/proc/self/status", "re");
    if (!f)
        return 0;
    char line[256];
    unsigned long long kb = 0;
    size_t len = strlen(field);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, len) && line[len] == ':' &&
            sscanf(line + len + 1, "%llu", &kb) == 1)
            break;
    fclose(f);
    return (uint64_t)kb * 1024;
}

/* The tighter of the limit `resource` and the current bound: what is left of it after `used`. */
static void limit_apply(int resource, const char *field, const char *name, uint64_t *avail,
                        const char **why)
{
    struct rlimit rl;
    if (getrlimit(resource, &rl) || rl.rlim_cur == RLIM_INFINITY)
        return;
    uint64_t used = status_bytes(field);
    uint64_t left = rl.rlim_cur > used ? rl.rlim_cur - used : 0;
    if (left < *avail) {
        *avail = left;
        *why = name;
    }
}

static void gib_format(char *buf, size_t cap, uint64_t bytes)
{
    double g = (double)bytes / 1073741824.0;
    snprintf(buf, cap, g < 10 ? "%.2f GiB" : "%.0f GiB", g);
}

int budget_check(const run_config *c, err *e)
{
    const ds *d = c->d;
    /* Frames of the largest partition, as plan_partitions sizes them without chunk alignment
     * (aligned ones may hold a chunk more: this stays a lower bound). */
    uint64_t part_frames = d->frame_bytes ? (c->partition_bytes ? c->partition_bytes
                                                                : PLAN_PARTITION_BYTES) /
                                                d->frame_bytes
                                          : d->num_frames;
    if (part_frames < 1)
        part_frames = 1;
    if (part_frames > d->num_frames)
        part_frames = d->num_frames;
    uint64_t in_flight = 2 * (uint64_t)c->threads, total = 0, most = 0;
    const char *largest = NULL;
    for (uint32_t k = 0; k < c->n_plugins; k++) {
        const plugin *pl = c->plugins[k];
        uint64_t result = bufs_bytes(pl, d->num_frames, d->sig_size, true);
        uint64_t part = bufs_bytes(pl, part_frames, d->sig_size, false), need;
        if (!size_mul(result, c->live_every ? 2 : 1, &need) || !size_mul(part, in_flight, &part) ||
            !size_add(need, part, &need))
            need = UINT64_MAX;
        if (!largest || need > most) {
            most = need;
            largest = pl->desc.name;
        }
        if (!size_add(total, need, &total))
            total = UINT64_MAX;
    }
    struct sysinfo si;
    uint64_t avail = UINT64_MAX;
    const char *why = NULL;
    if (!sysinfo(&si)) {
        avail = ((uint64_t)si.totalram + si.totalswap) * si.mem_unit;
        why = "RAM + swap";
    }
    limit_apply(RLIMIT_AS, "VmSize", "the address space left under ulimit -v", &avail, &why);
    limit_apply(RLIMIT_DATA, "VmData", "the data size left under ulimit -d", &avail, &why);
    if (total <= avail)
        return 0;
    char need_s[32], most_s[32], avail_s[32];
    gib_format(need_s, sizeof need_s, total);
    gib_format(most_s, sizeof most_s, most);
    gib_format(avail_s, sizeof avail_s, avail);
    return err_set(e, UH_ENOMEM, "out of memory for result buffers (needs %s, plugin %s %s; %s "
                   "is %s)", total == UINT64_MAX ? "more than 16 EiB" : need_s, largest,
                   most == UINT64_MAX ? "more than 16 EiB" : most_s, why, avail_s);
}
