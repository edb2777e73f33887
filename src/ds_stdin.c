/* Raw frames from standard input ("-"): `cat scan.raw | udfhost run ... -`. The stream is read
 * once, front to back, by whichever worker needs the next frame; frames wait in a ring of slots
 * until the worker whose partition holds them copies them out, so partitions are processed as
 * the data arrives, with memory bounded by the ring. Frames outside the ROI are read and dropped
 * at once. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ds.h"
#include "shape.h"

/* Ring budget: enough frames for every worker's tiles to be in flight several times over. */
#define STDIN_RING_BYTES ((uint64_t)256 << 20)
#define STDIN_RING_MIN 64

typedef struct stdin_state {
    int fd;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    unsigned char *ring;
    uint64_t slots;
    uint64_t *slot_frame;     /* frame held by each slot, UINT64_MAX: free */
    uint64_t next;            /* next frame of the stream to be read */
    uint64_t offset;          /* bytes of the stream read so far; only the reading worker */
    bool reading;             /* a worker is reading from the stream (outside the lock) */
    int failed;               /* the stream failed: every later read fails too */
    err failure;
    uint64_t skip_lead;       /* bytes before frame 0 not yet skipped */
    uint64_t frame_header, frame_footer;
} stdin_state;

/* Read exactly n bytes of the stream (or skip them when buf is NULL). Returns bytes read before
 * EOF. */
static uint64_t read_full(stdin_state *s, unsigned char *buf, uint64_t n, int *err_no)
{
    unsigned char sink[65536];
    uint64_t done = 0;
    *err_no = 0;
    while (done < n) {
        size_t want = (size_t)(n - done);
        unsigned char *dst = buf ? buf + done : sink;
        if (!buf && want > sizeof sink)
            want = sizeof sink;
        ssize_t got = read(s->fd, dst, want);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            *err_no = errno;
            break;
        }
        if (got == 0)
            break;
        done += (uint64_t)got;
        s->offset += (uint64_t)got;
    }
    return done;
}

static int stdin_open(ds *d, const ds_options *o, err *e)
{
    if (!o->nav_ndim)
        return err_set(e, UH_EUSAGE, "stdin: a stream needs --nav-shape (its length is unknown)");
    int rc = ds_shape_from_options(d, o, e);
    if (rc)
        return rc;
    stdin_state *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(e, UH_ENOMEM, "out of memory opening stdin");
    s->fd = STDIN_FILENO;
    s->slots = STDIN_RING_BYTES / (d->frame_bytes ? d->frame_bytes : 1);
    if (s->slots < STDIN_RING_MIN)
        s->slots = STDIN_RING_MIN;
    if (s->slots > d->num_frames)
        s->slots = d->num_frames;
    uint64_t bytes;
    if (!size_mul(s->slots, d->frame_bytes, &bytes) || bytes > SIZE_MAX ||
        !(s->ring = malloc((size_t)bytes)) ||
        !(s->slot_frame = malloc(s->slots * sizeof *s->slot_frame))) {
        unsigned long long slots = (unsigned long long)s->slots;
        free(s->ring);
        free(s);
        return err_set(e, UH_ENOMEM, "stdin: out of memory for %llu frames in flight", slots);
    }
    for (uint64_t i = 0; i < s->slots; i++)
        s->slot_frame[i] = UINT64_MAX;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->changed, NULL);
    s->skip_lead = o->offset;
    s->frame_header = o->frame_header;
    s->frame_footer = o->frame_footer;
    d->file_bytes = 0; /* unknown */
    d->io = "stream";
    d->state = s;
    return 0;
}

/* With the lock held by the caller: read frame s->next into its slot (the lock is released while
 * reading). Returns 0, or the stream's failure. */
static int read_next(ds *d, stdin_state *s)
{
    uint64_t f = s->next;
    uint64_t slot = f % s->slots;
    s->reading = true;
    pthread_mutex_unlock(&s->lock);
    int err_no = 0;
    uint64_t lead = s->skip_lead + s->frame_header, got = 0;
    bool ok = read_full(s, NULL, lead, &err_no) == lead;
    if (ok)
        got = read_full(s, s->ring + slot * d->frame_bytes, d->frame_bytes, &err_no);
    ok = ok && got == d->frame_bytes &&
         read_full(s, NULL, s->frame_footer, &err_no) == s->frame_footer;
    pthread_mutex_lock(&s->lock);
    s->reading = false;
    s->skip_lead = 0;
    if (!ok) {
        s->failed = 1;
        if (err_no)
            err_sys(&s->failure, UH_EDATA, err_no, "stdin: frame %llu: read failed at offset %llu",
                    (unsigned long long)f, (unsigned long long)s->offset);
        else
            err_set(&s->failure, UH_EDATA, "stdin: the stream ended in frame %llu of %llu",
                    (unsigned long long)f, (unsigned long long)d->file_frames);
    } else {
        s->next++;
        /* A frame no partition will ask for (outside the ROI) frees its slot at once. */
        uint64_t scan = (uint64_t)((int64_t)f - d->sync_offset);
        bool wanted = !d->roi || ((int64_t)f - d->sync_offset >= 0 && scan < d->num_frames &&
                                  d->roi[scan]);
        s->slot_frame[slot] = wanted ? f : UINT64_MAX;
    }
    pthread_cond_broadcast(&s->changed);
    return s->failed ? s->failure.code : 0;
}

static int stdin_read(ds *d, uint64_t first, uint64_t count, void *scratch,
                      const unsigned char **data, size_t *stride, err *e)
{
    stdin_state *s = d->state;
    unsigned char *out = scratch;
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    for (uint64_t i = 0; i < count && !rc; i++) {
        uint64_t f = first + i;
        while (!s->failed && f >= s->next) {
            if (!s->reading && s->slot_frame[s->next % s->slots] == UINT64_MAX)
                read_next(d, s);
            else
                pthread_cond_wait(&s->changed, &s->lock);
        }
        if (s->failed) {
            *e = s->failure;
            rc = e->code;
            break;
        }
        uint64_t slot = f % s->slots;
        memcpy(out + i * d->frame_bytes, s->ring + slot * d->frame_bytes, d->frame_bytes);
        s->slot_frame[slot] = UINT64_MAX;
        pthread_cond_broadcast(&s->changed);
    }
    pthread_mutex_unlock(&s->lock);
    *data = out;
    *stride = d->frame_bytes;
    return rc;
}

static void stdin_close(ds *d)
{
    stdin_state *s = d->state;
    if (!s)
        return;
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->changed);
    free(s->ring);
    free(s->slot_frame);
    free(s);
    d->state = NULL;
}

const ds_reader ds_stdin_reader = {
    .name = "stdin",
    .open = stdin_open,
    .read = stdin_read,
    .close = stdin_close,
};
