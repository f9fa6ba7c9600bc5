/*
 * core/journal.c: the write-ahead journal of accepted events
 * (core/journal.h explains the design).
 *
 * On disk, in host byte order (a journal is replayed by the machine that
 * wrote it):
 *   segment "{JOURNAL}.{seq}": the 8 bytes "GWJSEG1\n", then records
 *     u32 length, u32 crc32(payload), payload[length]
 *   payload of a submit_json call:
 *     u8 1, f64 now, u8 action, u8 flags, str project, then the JSON bytes
 *   payload of a structured event:
 *     u8 2, f64 now, u8 action, u8 has_ts, u8 has_project, f64 ts, f64 value,
 *     u32 nfilters, [str project], str name, nfilters x (str name, str value)
 *   str: u32 length, the bytes, a NUL (so replay can point into the buffer)
 *   manifest "{JOURNAL}.batches": lines "{first} {last} {batch id}\n"
 * A record whose length runs past the end of the file or whose checksum
 * does not match is a torn write: it and everything after it in that
 * segment are ignored (it was never acknowledged).
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "journal.h"
#include "base/log.h"

#define JN_MAGIC "GWJSEG1\n"
#define JN_MAGIC_LEN 8
#define JN_REC_JSON 1
#define JN_REC_EVENT 2
#ifndef JN_MANIFEST_MAX
#define JN_MANIFEST_MAX (256 * 1024) /* compacted when larger */
#endif

typedef struct jn_seg_s {
    uint64_t seq;
    int stored;
    double stored_at;
} jn_seg_t;

typedef struct jn_batch_s {
    uint64_t first, last;
    char *id;
} jn_batch_t;

typedef struct jn_waiter_s {
    struct jn_waiter_s *next;
    void (*fn)(void *arg, int ok);
    void *arg;
    uint64_t target;
} jn_waiter_t;

struct gw__journal_s {
    struct ev_loop *loop;
    char *path;                /* the JOURNAL base path */
    char *dir;                 /* its directory */
    char *base;                /* its file name */
    int sync_always;
    int retain;

    int fd;                    /* the current segment, -1 before replay */
    uint64_t seq;              /* its number */
    uint64_t seg_records;      /* records appended to it */
    char *buf;                 /* appended, not yet written */
    size_t len, cap;
    uint64_t appended;         /* records appended in all */
    uint64_t durable;          /* records written (and synced) */
    int failed;                /* a write failed: nothing is durable */
    jn_waiter_t *waiters, *waiters_tail;
    ev_prepare prepare;
    int started;

    jn_seg_t *segs;            /* closed segments on disk, in order */
    size_t nsegs, capsegs;

    pthread_mutex_t mu;        /* the manifest (storage thread appends) */
    int mf_fd;
    size_t mf_size;
    jn_batch_t *batches;       /* manifest lines, in order */
    size_t nbatches, capbatches;
};

/* ---- Small helpers ---- */

static uint32_t jn_crc_table[256];
static pthread_once_t jn_crc_once = PTHREAD_ONCE_INIT;

static void
jn_crc_init(void)
{
    uint32_t c, n, k;

    for (n = 0; n < 256; n++) {
        c = n;
        for (k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        jn_crc_table[n] = c;
    }
}

static uint32_t
jn_crc(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint32_t c = 0xffffffffu;
    size_t i;

    pthread_once(&jn_crc_once, jn_crc_init);
    for (i = 0; i < len; i++)
        c = jn_crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static double
jn_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void
jn_seg_path(const gw__journal_t *j, uint64_t seq, char *out, size_t size)
{
    snprintf(out, size, "%s.%020" PRIu64, j->path, seq);
}

static int
jn_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t) w;
    }
    return 0;
}

static void
jn_sync_dir(const gw__journal_t *j)
{
    int fd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* ---- The append buffer ---- */

static void
jn_reserve(gw__journal_t *j, size_t more)
{
    if (j->len + more <= j->cap)
        return;
    while (j->len + more > j->cap)
        j->cap = j->cap != 0 ? j->cap * 2 : 65536;
    j->buf = realloc(j->buf, j->cap);
    if (j->buf == NULL) {
        gw__log_error("journal: out of memory");
        abort();
    }
}

static void
jn_put(gw__journal_t *j, const void *p, size_t n)
{
    jn_reserve(j, n);
    memcpy(j->buf + j->len, p, n);
    j->len += n;
}

static void
jn_put_u8(gw__journal_t *j, unsigned v)
{
    unsigned char c = (unsigned char) v;

    jn_put(j, &c, 1);
}

static void
jn_put_u32(gw__journal_t *j, uint32_t v)
{
    jn_put(j, &v, 4);
}

static void
jn_put_f64(gw__journal_t *j, double v)
{
    jn_put(j, &v, 8);
}

static void
jn_put_str(gw__journal_t *j, const char *s, size_t n)
{
    jn_put_u32(j, (uint32_t) n);
    jn_put(j, s, n);
    jn_put_u8(j, 0);
}

/* Starts a record: returns the offset of its header. */
static size_t
jn_begin(gw__journal_t *j)
{
    size_t at = j->len;

    jn_reserve(j, 8);
    j->len += 8;
    return at;
}

static void
jn_end(gw__journal_t *j, size_t at)
{
    uint32_t n = (uint32_t) (j->len - at - 8);
    uint32_t crc = jn_crc(j->buf + at + 8, n);

    memcpy(j->buf + at, &n, 4);
    memcpy(j->buf + at + 4, &crc, 4);
    j->appended++;
    j->seg_records++;
}

void
gw__journal_append_json(gw__journal_t *j, double now, const char *project,
                        gw_action_t action, unsigned flags, const char *json,
                        size_t len)
{
    size_t at = jn_begin(j);

    jn_put_u8(j, JN_REC_JSON);
    jn_put_f64(j, now);
    jn_put_u8(j, (unsigned) action);
    jn_put_u8(j, flags);
    jn_put_str(j, project, strlen(project));
    jn_put(j, json, len);
    jn_end(j, at);
}

void
gw__journal_append_event(gw__journal_t *j, double now, const char *project,
                         const gw_event_t *ev)
{
    size_t at = jn_begin(j), i;

    jn_put_u8(j, JN_REC_EVENT);
    jn_put_f64(j, now);
    jn_put_u8(j, (unsigned) ev->action);
    jn_put_u8(j, ev->has_ts ? 1 : 0);
    jn_put_u8(j, 1);
    jn_put_f64(j, ev->ts);
    jn_put_f64(j, ev->value);
    jn_put_u32(j, (uint32_t) ev->nfilters);
    jn_put_str(j, project, strlen(project));
    jn_put_str(j, ev->name, strlen(ev->name));
    for (i = 0; i < ev->nfilters; i++) {
        jn_put_str(j, ev->filters[i].name, strlen(ev->filters[i].name));
        jn_put_str(j, ev->filters[i].value, strlen(ev->filters[i].value));
    }
    jn_end(j, at);
}

/* ---- Group commit ---- */

static void
jn_release(gw__journal_t *j)
{
    jn_waiter_t *w;

    while ((w = j->waiters) != NULL &&
           (j->failed || w->target <= j->durable)) {
        j->waiters = w->next;
        if (j->waiters == NULL)
            j->waiters_tail = NULL;
        w->fn(w->arg, !j->failed);
        free(w);
    }
}

/* Writes the buffer to the current segment; syncs if sync or "always". */
static void
jn_commit(gw__journal_t *j, int sync)
{
    if (j->fd < 0 || j->failed) {
        j->len = 0;
        jn_release(j);
        return;
    }
    if (j->len > 0) {
        if (jn_write_all(j->fd, j->buf, j->len) != 0) {
            gw__log_error("journal: cannot write %s.%020" PRIu64 ": %s; "
                          "requests are no longer acknowledged as durable",
                          j->path, j->seq, strerror(errno));
            j->failed = 1;
        }
        j->len = 0;
        if (!j->failed && (sync || j->sync_always) && fdatasync(j->fd) != 0) {
            gw__log_error("journal: cannot sync %s.%020" PRIu64 ": %s",
                          j->path, j->seq, strerror(errno));
            j->failed = 1;
        }
    } else if (sync && fdatasync(j->fd) != 0) {
        gw__log_error("journal: cannot sync %s.%020" PRIu64 ": %s", j->path,
                      j->seq, strerror(errno));
        j->failed = 1;
    }
    j->durable = j->appended;
    jn_release(j);
}

static void
jn_prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    gw__journal_t *j = w->data;

    (void) loop;
    (void) revents;
    if (j->len > 0 || j->waiters != NULL)
        jn_commit(j, 0);
}

void
gw__journal_commit(gw__journal_t *j)
{
    jn_commit(j, 1);
}

void
gw__journal_when_durable(gw__journal_t *j, void (*fn)(void *arg, int ok),
                         void *arg)
{
    jn_waiter_t *w;

    if (j->failed || j->durable == j->appended) {
        fn(arg, !j->failed);
        return;
    }
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        fn(arg, 0);
        return;
    }
    w->fn = fn;
    w->arg = arg;
    w->target = j->appended;
    if (j->waiters_tail != NULL)
        j->waiters_tail->next = w;
    else
        j->waiters = w;
    j->waiters_tail = w;
}

/* ---- Segments ---- */

static int
jn_open_segment(gw__journal_t *j)
{
    char path[4096];

    jn_seg_path(j, j->seq, path, sizeof(path));
    j->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC,
                 0600);
    if (j->fd < 0) {
        gw__log_error("journal: cannot create %s: %s", path,
                      strerror(errno));
        j->failed = 1;
        return GW_ERR;
    }
    if (jn_write_all(j->fd, JN_MAGIC, JN_MAGIC_LEN) != 0) {
        gw__log_error("journal: cannot write %s: %s", path, strerror(errno));
        j->failed = 1;
        return GW_ERR;
    }
    j->seg_records = 0;
    jn_sync_dir(j);
    return GW_OK;
}

static void
jn_segs_push(gw__journal_t *j, uint64_t seq)
{
    if (j->nsegs == j->capsegs) {
        j->capsegs = j->capsegs != 0 ? j->capsegs * 2 : 64;
        j->segs = realloc(j->segs, j->capsegs * sizeof(jn_seg_t));
    }
    j->segs[j->nsegs].seq = seq;
    j->segs[j->nsegs].stored = 0;
    j->segs[j->nsegs].stored_at = 0;
    j->nsegs++;
}

/* Rewrites the manifest with the lines that still name a segment on disk.
 * mu held. */
static void
jn_manifest_compact(gw__journal_t *j)
{
    char path[4096], tmp[4112], line[512];
    uint64_t oldest = j->nsegs > 0 ? j->segs[0].seq : j->seq;
    char *out = NULL;
    size_t i, k = 0, len = 0;
    int fd, n;

    snprintf(path, sizeof(path), "%s.batches", j->path);
    snprintf(tmp, sizeof(tmp), "%s.batches.tmp", j->path);
    out = malloc(j->nbatches * sizeof(line) + 1);
    if (out == NULL)
        return;
    for (i = 0; i < j->nbatches; i++) {
        const jn_batch_t *b = &j->batches[i];

        if (b->last < oldest)
            continue;
        n = snprintf(line, sizeof(line), "%" PRIu64 " %" PRIu64 " %s\n",
                     b->first, b->last, b->id);
        if (n > 0 && (size_t) n < sizeof(line)) {
            memcpy(out + len, line, (size_t) n);
            len += (size_t) n;
        }
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        free(out);
        return;
    }
    n = jn_write_all(fd, out, len) == 0 && fdatasync(fd) == 0;
    free(out);
    if (close(fd) != 0 || !n || rename(tmp, path) != 0) {
        unlink(tmp);
        return;
    }
    jn_sync_dir(j);
    for (i = 0; i < j->nbatches; i++) {
        if (j->batches[i].last < oldest)
            free(j->batches[i].id);
        else
            j->batches[k++] = j->batches[i];
    }
    j->nbatches = k;
    j->mf_size = len;
    if (j->mf_fd >= 0)
        close(j->mf_fd);
    j->mf_fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
}

/* Deletes stored segments older than the retention. */
static void
jn_cleanup(gw__journal_t *j)
{
    double now = jn_now();
    size_t i = 0, k;
    char path[4096];

    while (i < j->nsegs && j->segs[i].stored &&
           now - j->segs[i].stored_at >= (double) j->retain) {
        jn_seg_path(j, j->segs[i].seq, path, sizeof(path));
        if (unlink(path) != 0 && errno != ENOENT)
            gw__log_warning("journal: cannot delete %s: %s", path,
                            strerror(errno));
        i++;
    }
    if (i == 0)
        return;
    for (k = i; k < j->nsegs; k++)
        j->segs[k - i] = j->segs[k];
    j->nsegs -= i;
    pthread_mutex_lock(&j->mu);
    if (j->mf_size > JN_MANIFEST_MAX)
        jn_manifest_compact(j);
    pthread_mutex_unlock(&j->mu);
}

uint64_t
gw__journal_rotate(gw__journal_t *j)
{
    uint64_t closed;

    if (j->fd < 0)
        return 0;
    jn_commit(j, 1);
    jn_cleanup(j);
    if (j->seg_records == 0)
        return 0;
    closed = j->seq;
    close(j->fd);
    j->fd = -1;
    jn_segs_push(j, closed);
    j->seq++;
    jn_open_segment(j);
    return closed;
}

void
gw__journal_stored(gw__journal_t *j, uint64_t seq)
{
    double now = jn_now();
    size_t i;

    for (i = 0; i < j->nsegs && j->segs[i].seq <= seq; i++) {
        if (!j->segs[i].stored) {
            j->segs[i].stored = 1;
            j->segs[i].stored_at = now;
        }
    }
    if (j->retain == 0 && j->started) /* not while replay walks segs */
        jn_cleanup(j);
}

void
gw__journal_batch_begin(gw__journal_t *j, const char *id, uint64_t first,
                        uint64_t last)
{
    char line[512];
    int n;

    n = snprintf(line, sizeof(line), "%" PRIu64 " %" PRIu64 " %s\n", first,
                 last, id);
    if (n <= 0 || (size_t) n >= sizeof(line))
        return;
    pthread_mutex_lock(&j->mu);
    if (j->mf_fd < 0 || jn_write_all(j->mf_fd, line, (size_t) n) != 0 ||
        fdatasync(j->mf_fd) != 0) {
        gw__log_warning("journal: cannot record batch %s in %s.batches: %s "
                        "(after a crash it may be applied twice)", id,
                        j->path, strerror(errno));
    } else {
        j->mf_size += (size_t) n;
        if (j->nbatches == j->capbatches) {
            j->capbatches = j->capbatches != 0 ? j->capbatches * 2 : 64;
            j->batches = realloc(j->batches,
                                 j->capbatches * sizeof(jn_batch_t));
        }
        j->batches[j->nbatches].first = first;
        j->batches[j->nbatches].last = last;
        j->batches[j->nbatches].id = strdup(id);
        j->nbatches++;
    }
    pthread_mutex_unlock(&j->mu);
}

/* ---- Open ---- */

static int
jn_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

    return x < y ? -1 : x > y;
}

/* Finds "{base}.{digits}" in the directory. */
static int
jn_scan(gw__journal_t *j, gw_error_t *err)
{
    size_t blen = strlen(j->base), i;
    uint64_t *seqs = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    DIR *d = opendir(j->dir);

    if (d == NULL)
        return gw_error_set(err, "JOURNAL \"%s\": cannot open the directory "
                            "%s: %s", j->path, j->dir, strerror(errno));
    while ((de = readdir(d)) != NULL) {
        const char *s = de->d_name;
        char *end;
        unsigned long long v;

        if (strncmp(s, j->base, blen) != 0 || s[blen] != '.')
            continue;
        s += blen + 1;
        if (*s < '0' || *s > '9')
            continue;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (*end != '\0' || errno != 0 || v == 0)
            continue;
        if (n == cap) {
            size_t ncap = cap != 0 ? cap * 2 : 64;
            uint64_t *grown = realloc(seqs, ncap * sizeof(uint64_t));

            if (grown == NULL) {
                free(seqs);
                closedir(d);
                return gw_error_set(err, "%s: out of memory listing the "
                                         "journal's segments", j->dir);
            }
            seqs = grown;
            cap = ncap;
        }
        seqs[n++] = (uint64_t) v;
    }
    closedir(d);
    if (n > 0) /* qsort's array may not be NULL, even for 0 items */
        qsort(seqs, n, sizeof(uint64_t), jn_cmp_u64);
    for (i = 0; i < n; i++)
        jn_segs_push(j, seqs[i]);
    j->seq = n > 0 ? seqs[n - 1] + 1 : 1;
    free(seqs);
    return GW_OK;
}

static void
jn_read_manifest(gw__journal_t *j)
{
    char path[4096], line[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s.batches", j->path);
    f = fopen(path, "r");
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long long a, b;
        char id[400];

        /* A line without its newline was torn: its store never began. */
        if (strchr(line, '\n') == NULL)
            break;
        if (sscanf(line, "%llu %llu %399s", &a, &b, id) != 3 || a > b)
            continue;
        if (j->nbatches == j->capbatches) {
            j->capbatches = j->capbatches != 0 ? j->capbatches * 2 : 64;
            j->batches = realloc(j->batches,
                                 j->capbatches * sizeof(jn_batch_t));
        }
        j->batches[j->nbatches].first = a;
        j->batches[j->nbatches].last = b;
        j->batches[j->nbatches].id = strdup(id);
        j->nbatches++;
    }
    fclose(f);
}

int
gw__journal_open(struct ev_loop *loop, const char *path, int sync_always,
                 int retain, gw__journal_t **out, gw_error_t *err)
{
    gw__journal_t *j = calloc(1, sizeof(*j));
    const char *slash = strrchr(path, '/');
    char mpath[4096];

    if (j == NULL)
        return gw_error_set(err, "out of memory");
    j->loop = loop;
    j->path = strdup(path);
    if (slash == NULL) {
        j->dir = strdup(".");
        j->base = strdup(path);
    } else {
        j->dir = slash == path ? strdup("/")
                               : strndup(path, (size_t) (slash - path));
        j->base = strdup(slash + 1);
    }
    j->sync_always = sync_always;
    j->retain = retain;
    j->fd = -1;
    j->mf_fd = -1;
    pthread_mutex_init(&j->mu, NULL);
    if (j->base[0] == '\0') {
        gw_error_set(err, "JOURNAL \"%s\" must name a file, not a "
                     "directory (segments are written as "
                     "JOURNAL.00000000000000000001, ...)", path);
        gw__journal_close(j);
        return GW_ERR;
    }
    if (jn_scan(j, err) != GW_OK) {
        gw__journal_close(j);
        return GW_ERR;
    }
    jn_read_manifest(j);
    snprintf(mpath, sizeof(mpath), "%s.batches", j->path);
    j->mf_fd = open(mpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (j->mf_fd >= 0) {
        struct stat st;

        if (fstat(j->mf_fd, &st) == 0)
            j->mf_size = (size_t) st.st_size;
    }
    if (j->mf_fd < 0) {
        gw_error_set(err, "JOURNAL \"%s\": cannot open %s: %s", path, mpath,
                     strerror(errno));
        gw__journal_close(j);
        return GW_ERR;
    }
    *out = j;
    return GW_OK;
}

/* ---- Replay ---- */

typedef struct jn_reader_s {
    const unsigned char *p, *end;
    int bad;
} jn_reader_t;

static const void *
jn_take(jn_reader_t *r, size_t n)
{
    const void *p = r->p;

    if ((size_t) (r->end - r->p) < n) {
        r->bad = 1;
        return NULL;
    }
    r->p += n;
    return p;
}

static unsigned
jn_get_u8(jn_reader_t *r)
{
    const unsigned char *p = jn_take(r, 1);

    return p != NULL ? *p : 0;
}

static uint32_t
jn_get_u32(jn_reader_t *r)
{
    const void *p = jn_take(r, 4);
    uint32_t v = 0;

    if (p != NULL)
        memcpy(&v, p, 4);
    return v;
}

static double
jn_get_f64(jn_reader_t *r)
{
    const void *p = jn_take(r, 8);
    double v = 0;

    if (p != NULL)
        memcpy(&v, p, 8);
    return v;
}

static const char *
jn_get_str(jn_reader_t *r)
{
    uint32_t n = jn_get_u32(r);
    const char *s = r->bad ? NULL : jn_take(r, (size_t) n + 1);

    if (s != NULL && s[n] != '\0') {
        r->bad = 1;
        return NULL;
    }
    return s;
}

/* One record's payload; 0 if it does not parse (counted as damaged). */
static int
jn_replay_record(const unsigned char *p, size_t n,
                 const gw__journal_replay_t *cb)
{
    jn_reader_t r = {p, p + n, 0};
    unsigned type = jn_get_u8(&r);
    double now = jn_get_f64(&r);
    gw_action_t action = (gw_action_t) jn_get_u8(&r);

    if (type == JN_REC_JSON) {
        unsigned flags = jn_get_u8(&r);
        const char *project = jn_get_str(&r);

        if (r.bad)
            return 0;
        cb->json(cb->arg, now, project, action, flags, (const char *) r.p,
                 (size_t) (r.end - r.p));
        return 1;
    }
    if (type == JN_REC_EVENT) {
        gw_event_t ev;
        gw_filter_t *f = NULL;
        const char *project;
        uint32_t i, nf;

        memset(&ev, 0, sizeof(ev));
        ev.action = action;
        ev.has_ts = (int) jn_get_u8(&r);
        jn_get_u8(&r);
        ev.ts = jn_get_f64(&r);
        ev.value = jn_get_f64(&r);
        nf = jn_get_u32(&r);
        project = jn_get_str(&r);
        ev.name = jn_get_str(&r);
        if (r.bad || nf > n / 10)
            return 0;
        if (nf > 0)
            f = calloc(nf, sizeof(*f));
        for (i = 0; i < nf && !r.bad; i++) {
            f[i].name = jn_get_str(&r);
            f[i].value = jn_get_str(&r);
        }
        if (!r.bad) {
            ev.filters = f;
            ev.nfilters = nf;
            cb->event(cb->arg, now, project, &ev);
        }
        free(f);
        return !r.bad;
    }
    return 0;
}

static char *
jn_read_file(const char *path, size_t *len)
{
    struct stat st;
    char *buf;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t got = 0;

    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return NULL;
    }
    buf = malloc((size_t) st.st_size + 1);
    while (buf != NULL && got < (size_t) st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t) st.st_size - got);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t) r;
    }
    close(fd);
    *len = got;
    return buf;
}

/* Replays one segment; returns the records replayed. */
static uint64_t
jn_replay_segment(gw__journal_t *j, uint64_t seq,
                  const gw__journal_replay_t *cb)
{
    char path[4096];
    size_t len = 0, off = JN_MAGIC_LEN;
    char *buf;
    uint64_t count = 0;

    jn_seg_path(j, seq, path, sizeof(path));
    buf = jn_read_file(path, &len);
    if (buf == NULL) {
        gw__log_error("journal: cannot read %s: %s; its events are lost",
                      path, strerror(errno));
        return 0;
    }
    if (len < JN_MAGIC_LEN || memcmp(buf, JN_MAGIC, JN_MAGIC_LEN) != 0) {
        if (len > 0)
            gw__log_error("journal: %s is not a journal segment (bad "
                          "header); skipped", path);
        free(buf);
        return 0;
    }
    while (off < len) {
        uint32_t n, crc;

        if (len - off < 8) {
            gw__log_warning("journal: %s: torn record at offset %zu (%zu "
                            "bytes; the daemon stopped in the middle of a "
                            "write); ignored", path, off, len - off);
            break;
        }
        memcpy(&n, buf + off, 4);
        memcpy(&crc, buf + off + 4, 4);
        if (n > len - off - 8 || jn_crc(buf + off + 8, n) != crc) {
            gw__log_warning("journal: %s: torn record at offset %zu "
                            "(checksum mismatch; the daemon stopped in the "
                            "middle of a write); ignored %zu bytes", path,
                            off, len - off);
            break;
        }
        if (jn_replay_record((const unsigned char *) buf + off + 8, n, cb))
            count++;
        else
            gw__log_warning("journal: %s: record at offset %zu does not "
                            "parse; skipped", path, off);
        off += 8 + (size_t) n;
    }
    free(buf);
    return count;
}

/* The manifest line covering seq (the last one written wins), or NULL. */
static const jn_batch_t *
jn_covering(const jn_batch_t *batches, size_t n, uint64_t seq)
{
    size_t i = n;

    while (i-- > 0) {
        if (batches[i].first <= seq && seq <= batches[i].last)
            return &batches[i];
    }
    return NULL;
}

uint64_t
gw__journal_replay(gw__journal_t *j, const gw__journal_replay_t *cb)
{
    uint64_t total = 0;
    size_t i = 0, k, nb;
    jn_batch_t *batches;

    /* The manifest as the previous run left it: the storage thread may
     * append to j->batches while the replayed batches are stored. */
    pthread_mutex_lock(&j->mu);
    nb = j->nbatches;
    batches = calloc(nb + 1, sizeof(jn_batch_t));
    for (k = 0; k < nb; k++) {
        batches[k] = j->batches[k];
        batches[k].id = strdup(j->batches[k].id);
    }
    pthread_mutex_unlock(&j->mu);
    while (i < j->nsegs) {
        const jn_batch_t *b = jn_covering(batches, nb, j->segs[i].seq);
        uint64_t first = j->segs[i].seq, last = first;

        if (b != NULL) {
            while (i < j->nsegs && j->segs[i].seq <= b->last) {
                total += jn_replay_segment(j, j->segs[i].seq, cb);
                last = j->segs[i].seq;
                i++;
            }
            cb->group(cb->arg, b->first, b->last, b->id);
        } else {
            while (i < j->nsegs &&
                   jn_covering(batches, nb, j->segs[i].seq) == NULL) {
                total += jn_replay_segment(j, j->segs[i].seq, cb);
                last = j->segs[i].seq;
                i++;
            }
            cb->group(cb->arg, first, last, NULL);
        }
    }
    for (k = 0; k < nb; k++)
        free(batches[k].id);
    free(batches);
    if (j->nsegs > 0)
        gw__log_notice("journal: replayed %llu requests from %zu segments "
                       "of %s", (unsigned long long) total, j->nsegs,
                       j->path);
    jn_open_segment(j);
    ev_prepare_init(&j->prepare, jn_prepare_cb);
    j->prepare.data = j;
    ev_prepare_start(j->loop, &j->prepare);
    ev_unref(j->loop);
    j->started = 1;
    return total;
}

void
gw__journal_close(gw__journal_t *j)
{
    size_t i;
    char path[4096];

    if (j == NULL)
        return;
    if (j->started) {
        ev_ref(j->loop);
        ev_prepare_stop(j->loop, &j->prepare);
    }
    if (j->fd >= 0) {
        jn_commit(j, 1);
        jn_cleanup(j);
        close(j->fd);
        if (j->seg_records == 0) {
            jn_seg_path(j, j->seq, path, sizeof(path));
            unlink(path);
        }
    }
    while (j->waiters != NULL) {
        jn_waiter_t *w = j->waiters;

        j->waiters = w->next;
        w->fn(w->arg, 0);
        free(w);
    }
    if (j->mf_fd >= 0)
        close(j->mf_fd);
    for (i = 0; i < j->nbatches; i++)
        free(j->batches[i].id);
    free(j->batches);
    pthread_mutex_destroy(&j->mu);
    free(j->segs);
    free(j->buf);
    free(j->path);
    free(j->dir);
    free(j->base);
    free(j);
}
