/*
 * plugins/storage/memory/snapshot.c: the memory storage's snapshot file.
 *
 * Format (all integers little-endian; docs/storage-memory.md has it too):
 *
 *   "GWMEMSNP"  u32 version (3; 2 and 1 are read too: 2 has no timing or
 *               set series, 1 no nonce records either)
 *   records:    u8 type, u32 payload length, payload
 *     1 series: str project, str metric, u8 kind, u8 has_filter,
 *               [str filter name, str filter value], u8 period, u32 n,
 *               n x (i64 bucket, f64 sum, i64 count, f64 ts)
 *               or, for kind 4 (timing) and 5 (set), since version 3,
 *               n x (i64 bucket, f64 sum, i64 count, str sketch), the
 *               sketch as gw_timing_encode / gw_set_encode write it
 *     2 doc:    str ns, str id, str data
 *     3 batch:  str id (oldest first)
 *     4 nonce:  str project, str nonce, f64 expires_at (epoch seconds): a
 *               claimed S3/S4 nonce (nonce_claim), oldest claim first;
 *               expired ones are dropped when saving and when loading
 *     0 end:    empty
 *   u32 CRC-32 (IEEE) of every byte before it
 *
 * where str is u32 length + bytes. Saving copies the store into an image
 * of the file on the storage thread, then a writer thread writes
 * "{PATH}.tmp" in the same directory, fsyncs it, renames it over PATH and
 * fsyncs the directory, so a crash leaves either the old or the new
 * snapshot, and the storage thread never waits on the disk. Loading checks the magic,
 * the version, the record framing and the checksum before applying
 * anything, and refuses a damaged file with its byte offset.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strndup, O_DIRECTORY, mremap */
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "memory.h"

#define SN_MAGIC "GWMEMSNP"
#define SN_MAGIC_LEN 8
#define SN_VERSION 3u
#define SN_HEADER (SN_MAGIC_LEN + 4)

enum { SN_END = 0, SN_SERIES = 1, SN_DOC = 2, SN_BATCH = 3, SN_NONCE = 4 };

/* CRC-32 (IEEE) by "slicing by 8": eight tables, eight bytes a step, about
 * five times the speed of one byte a step (the writer checksums the whole
 * file, the loader too). */
static uint32_t sn_crc_table[8][256];
static pthread_once_t sn_crc_once = PTHREAD_ONCE_INIT;

static void
sn_crc_make(void)
{
    uint32_t i, j, c;

    for (i = 0; i < 256; i++) {
        c = i;
        for (j = 0; j < 8; j++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        sn_crc_table[0][i] = c;
    }
    for (i = 0; i < 256; i++)
        for (j = 1; j < 8; j++)
            sn_crc_table[j][i] = (sn_crc_table[j - 1][i] >> 8) ^
                                 sn_crc_table[0][sn_crc_table[j - 1][i] & 0xff];
}

static void
sn_crc_init(void)
{
    pthread_once(&sn_crc_once, sn_crc_make);
}

static uint32_t
sn_crc(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;

    crc = ~crc;
    while (len >= 8) {
        uint32_t lo = crc ^ ((uint32_t) p[0] | (uint32_t) p[1] << 8 |
                             (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24);

        crc = sn_crc_table[7][lo & 0xff] ^ sn_crc_table[6][(lo >> 8) & 0xff] ^
              sn_crc_table[5][(lo >> 16) & 0xff] ^ sn_crc_table[4][lo >> 24] ^
              sn_crc_table[3][p[4]] ^ sn_crc_table[2][p[5]] ^
              sn_crc_table[1][p[6]] ^ sn_crc_table[0][p[7]];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = sn_crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* The real clock: nonces expire in epoch seconds. */
static double
sn_wall(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- writing ---- */

/*
 * A snapshot is made in two steps. The storage thread copies the store
 * into an image of the file (sn_encode: the cells of a series go in with
 * one memcpy on a little-endian host, so 1,000,000 cells are about 32 MB
 * copied); a writer thread of its own then checksums it, writes it to
 * PATH.tmp, fsyncs, renames it over PATH and fsyncs the directory
 * (sn_write_file). The storage thread's share is the copy; the disk is the
 * writer's. The image is mmapped, so it goes back to the system whole when
 * the write is done (a malloc'ed block of a few MB could stay in the heap,
 * and in the RSS, for good).
 */

#define SN_BUF_START (1u << 20) /* touched lazily: an mmap costs its pages */

typedef struct sn_buf_s {
    unsigned char *p;
    size_t len;
    size_t cap;
    int oom;
} sn_buf_t;

struct ms_snap_job_s {
    pthread_t thread;
    const gw_ctx_t *ctx;
    char *path;
    sn_buf_t img;
    double t0;     /* monotonic: when the storage thread began the copy */
    double copied; /* seconds the copy took */
    int ok;        /* the write's outcome, valid once done */
    int done;      /* set last by the writer (atomic) */
};

static double
sn_mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Room for len more bytes; 0, or -1 (b->oom set). */
static int
sn_room(sn_buf_t *b, size_t len)
{
    if (b->oom)
        return -1;
    if (len > SIZE_MAX / 4 - b->len) {
        b->oom = 1;
        return -1;
    }
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : SN_BUF_START;
        void *p;

        while (cap < b->len + len)
            cap *= 2;
        if (b->p == NULL)
            p = mmap(NULL, cap, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        else
            p = mremap(b->p, b->cap, cap, MREMAP_MAYMOVE);
        if (p == MAP_FAILED) {
            b->oom = 1;
            return -1;
        }
        b->p = p;
        b->cap = cap;
    }
    return 0;
}

static void
sn_put(sn_buf_t *b, const void *data, size_t len)
{
    if (sn_room(b, len) != 0)
        return;
    memcpy(b->p + b->len, data, len);
    b->len += len;
}

static void
sn_buf_free(sn_buf_t *b)
{
    if (b->p != NULL)
        munmap(b->p, b->cap);
    b->p = NULL;
    b->len = b->cap = 0;
}

static void
sn_put_u8(sn_buf_t *b, unsigned v)
{
    unsigned char c = (unsigned char) v;

    sn_put(b, &c, 1);
}

static void
sn_put_u32(sn_buf_t *b, uint32_t v)
{
    unsigned char c[4];
    int i;

    for (i = 0; i < 4; i++)
        c[i] = (unsigned char) (v >> (8 * i));
    sn_put(b, c, 4);
}

static void
sn_put_u64(sn_buf_t *b, uint64_t v)
{
    unsigned char c[8];
    int i;

    for (i = 0; i < 8; i++)
        c[i] = (unsigned char) (v >> (8 * i));
    sn_put(b, c, 8);
}

static void
sn_put_f64(sn_buf_t *b, double d)
{
    uint64_t v;

    memcpy(&v, &d, 8);
    sn_put_u64(b, v);
}

static void
sn_put_str(sn_buf_t *b, const char *s, size_t len)
{
    sn_put_u32(b, (uint32_t) len);
    sn_put(b, s, len);
}

/* Starts a record; sn_end_record patches its length. */
static size_t
sn_begin_record(sn_buf_t *b, unsigned type)
{
    sn_put_u8(b, type);
    sn_put_u32(b, 0);
    return b->len;
}

static void
sn_end_record(sn_buf_t *b, size_t start)
{
    uint32_t len = (uint32_t) (b->len - start);
    int i;

    if (b->oom)
        return;
    for (i = 0; i < 4; i++)
        b->p[start - 4 + i] = (unsigned char) (len >> (8 * i));
}

/* The file's cell is ms_cell_t as it lies in memory on a little-endian
 * host (i64 bucket, f64 sum, i64 count, f64 ts, no padding). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && \
    defined(__FLOAT_WORD_ORDER__) &&                                        \
    __FLOAT_WORD_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SN_CELLS_AS_IS 1
typedef char sn_cell_layout_check[(sizeof(ms_cell_t) == 32 &&
                                   offsetof(ms_cell_t, sum) == 8 &&
                                   offsetof(ms_cell_t, count) == 16 &&
                                   offsetof(ms_cell_t, u) == 24) ? 1 : -1];
#endif

/* A timing or set cell: bucket, sum, count and its sketch as a str. */
static void
sn_put_sketch_cell(sn_buf_t *b, const ms_cell_t *c, gw_kind_t kind)
{
    static const gw_timing_t no_timing;
    static const gw_set_t no_set;
    const gw_timing_t *t = c->u.timing != NULL ? c->u.timing : &no_timing;
    const gw_set_t *set = c->u.set != NULL ? c->u.set : &no_set;
    size_t max = kind == GW_KIND_TIMING ? gw_timing_encoded_max(t)
                                        : gw_set_encoded_max(set), len;
    int i;

    sn_put_u64(b, (uint64_t) c->bucket);
    sn_put_f64(b, c->sum);
    sn_put_u64(b, (uint64_t) c->count);
    if (sn_room(b, 4 + max) != 0)
        return;
    len = kind == GW_KIND_TIMING ? gw_timing_encode(t, b->p + b->len + 4)
                                 : gw_set_encode(set, b->p + b->len + 4);
    for (i = 0; i < 4; i++)
        b->p[b->len + i] = (unsigned char) (len >> (8 * i));
    b->len += 4 + len;
}

static void
sn_encode_series(sn_buf_t *b, const ms_project_t *proj, const ms_metric_t *m,
                 const ms_series_t *se, int period)
{
    const ms_cells_t *c = &se->periods[period];
    size_t start;

    start = sn_begin_record(b, SN_SERIES);
    sn_put_str(b, proj->name, strlen(proj->name));
    sn_put_str(b, m->name, strlen(m->name));
    sn_put_u8(b, (unsigned) m->kind);
    sn_put_u8(b, se->fname != NULL);
    if (se->fname != NULL) {
        sn_put_str(b, se->fname, strlen(se->fname));
        sn_put_str(b, se->fvalue, strlen(se->fvalue));
    }
    sn_put_u8(b, (unsigned) period);
    sn_put_u32(b, (uint32_t) c->n);
    if (ms_kind_sketch(m->kind)) {
        size_t i;

        for (i = 0; i < c->n; i++)
            sn_put_sketch_cell(b, &c->v[i], m->kind);
        sn_end_record(b, start);
        return;
    }
#ifdef SN_CELLS_AS_IS
    sn_put(b, c->v, c->n * sizeof(*c->v));
#else
    {
        size_t i;

        for (i = 0; i < c->n; i++) {
            sn_put_u64(b, (uint64_t) c->v[i].bucket);
            sn_put_f64(b, c->v[i].sum);
            sn_put_u64(b, (uint64_t) c->v[i].count);
            sn_put_f64(b, c->v[i].u.ts);
        }
    }
#endif
    sn_end_record(b, start);
}

static void
sn_encode_cells(ms_state_t *s, sn_buf_t *b)
{
    size_t i, j, k;
    int p;

    for (i = 0; i < s->projects.count; i++) {
        const ms_project_t *proj = s->projects.entries[i].value;

        for (j = 0; proj != NULL && j < proj->metrics.count; j++) {
            const ms_metric_t *m = proj->metrics.entries[j].value;

            for (k = 0; m != NULL && k < m->series.count; k++) {
                const ms_series_t *se = m->series.entries[k].value;

                for (p = 0; se != NULL && p < GW_PERIOD_COUNT; p++)
                    if (se->periods[p].n > 0)
                        sn_encode_series(b, proj, m, se, p);
            }
        }
    }
}

/* The whole file as it is now, its last 4 bytes left for the checksum
 * (sn_write_file). 0, or -1 when out of memory. */
static int
sn_encode(ms_state_t *s, sn_buf_t *b)
{
    size_t i, start;
    const ms_nonce_t *e;
    double now;

    sn_put(b, SN_MAGIC, SN_MAGIC_LEN);
    sn_put_u32(b, SN_VERSION);
    sn_encode_cells(s, b);
    for (i = 0; i < s->docs.count; i++) {
        const mm_entry_t *d = &s->docs.entries[i];
        const ms_doc_t *doc = d->value;
        size_t nslen = strlen(d->key);

        start = sn_begin_record(b, SN_DOC);
        sn_put_str(b, d->key, nslen);
        sn_put_str(b, d->key + nslen + 1, d->keylen - nslen - 1);
        sn_put_str(b, doc->data, doc->len);
        sn_end_record(b, start);
    }
    for (i = 0; i < MS_BATCH_IDS; i++) {
        const char *id = s->batch_ids[(s->batch_next + i) % MS_BATCH_IDS];

        if (id == NULL)
            continue;
        start = sn_begin_record(b, SN_BATCH);
        sn_put_str(b, id, strlen(id));
        sn_end_record(b, start);
    }
    now = sn_wall();
    ms_nonces_purge(&s->nonces, now);
    for (e = s->nonces.head; e != NULL; e = e->fnext) {
        size_t plen = strlen(e->key);

        if (e->expires_at <= now)
            continue; /* expired behind a later one: not purged yet */
        start = sn_begin_record(b, SN_NONCE);
        sn_put_str(b, e->key, plen);
        sn_put_str(b, e->key + plen + 1, e->keylen - plen - 1);
        sn_put_f64(b, e->expires_at);
        sn_end_record(b, start);
    }
    sn_begin_record(b, SN_END);
    sn_put_u32(b, 0); /* the checksum's place */
    return b->oom ? -1 : 0;
}

/* fsyncs the directory holding path, so the rename is durable. */
static int
sn_sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    int fd, rc;

    if (slash == NULL)
        dir = strdup(".");
    else if (slash == path)
        dir = strdup("/");
    else
        dir = strndup(path, (size_t) (slash - path));
    if (dir == NULL)
        return -1;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

static int
sn_write_fd(int fd, const unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len < (1u << 24) ? len : (1u << 24));

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t) w;
    }
    return 0;
}

/* Fills in the image's checksum and puts it at path: PATH.tmp, fsync,
 * rename, fsync of the directory. A crash at any point leaves the old
 * file or the new one whole. Any thread. */
static int
sn_write_file(const char *path, sn_buf_t *img, gw_error_t *err)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    uint32_t crc;
    int fd, e, i;

    if (tmp == NULL)
        return gw_error_set(err, "snapshot %s: out of memory", path);
    crc = sn_crc(0, img->p, img->len - 4);
    for (i = 0; i < 4; i++)
        img->p[img->len - 4 + i] = (unsigned char) (crc >> (8 * i));
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        gw_error_set(err, "cannot write snapshot %s: %s (is the directory "
                     "writable?)", tmp, strerror(errno));
        free(tmp);
        return GW_ERR;
    }
    if (sn_write_fd(fd, img->p, img->len) < 0 || fsync(fd) != 0) {
        e = errno;
        close(fd);
        unlink(tmp);
        gw_error_set(err, "cannot write snapshot %s: %s", tmp,
                     e ? strerror(e) : "short write");
        free(tmp);
        return GW_ERR;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        e = errno;
        unlink(tmp);
        gw_error_set(err, "cannot replace snapshot %s: %s", path,
                     strerror(e));
        free(tmp);
        return GW_ERR;
    }
    free(tmp);
    if (sn_sync_dir(path) != 0)
        return gw_error_set(err, "snapshot %s written, but fsync of its "
                            "directory failed: %s", path, strerror(errno));
    return GW_OK;
}

int
ms_snapshot_save(ms_state_t *s, gw_error_t *err)
{
    sn_buf_t img = {NULL, 0, 0, 0};
    int rc;

    sn_crc_init();
    if (sn_encode(s, &img) != 0) {
        sn_buf_free(&img);
        return gw_error_set(err, "cannot write snapshot %s: out of memory "
                            "for its copy", s->path);
    }
    rc = sn_write_file(s->path, &img, err);
    sn_buf_free(&img);
    return rc;
}

/* The writer thread: the disk's part of one snapshot. */
static void *
sn_writer(void *arg)
{
    ms_snap_job_t *j = arg;
    gw_error_t err;
    size_t size = j->img.len;

    j->ok = sn_write_file(j->path, &j->img, &err) == GW_OK;
    sn_buf_free(&j->img);
    if (j->ok)
        gw_log_debug(j->ctx, "snapshot written to %s (%zu bytes; the copy "
                     "took %.3f s of the storage thread, the write %.3f s "
                     "of its own)", j->path, size, j->copied,
                     sn_mono() - j->t0 - j->copied);
    else
        gw_log_error(j->ctx, "%s", err.msg);
    __atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void
sn_job_free(ms_snap_job_t *j)
{
    sn_buf_free(&j->img);
    free(j->path);
    free(j);
}

int
ms_snapshot_start(ms_state_t *s, gw_error_t *err)
{
    ms_snap_job_t *j = calloc(1, sizeof(*j));
    sigset_t all, old;
    int rc;

    sn_crc_init();
    if (j == NULL || (j->path = strdup(s->path)) == NULL) {
        free(j);
        return gw_error_set(err, "cannot write snapshot %s: out of memory",
                            s->path);
    }
    j->ctx = s->ctx;
    j->t0 = sn_mono();
    if (sn_encode(s, &j->img) != 0) {
        sn_job_free(j);
        return gw_error_set(err, "cannot write snapshot %s: out of memory "
                            "for its copy", s->path);
    }
    j->copied = sn_mono() - j->t0;
    /* The writer takes no signal: they are for the daemon's own threads. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&j->thread, NULL, sn_writer, j);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        /* No thread to be had: write it here rather than not at all. */
        gw_log_warning(s->ctx, "snapshot %s: no writer thread (%s); "
                       "writing it on the storage thread", s->path,
                       strerror(rc));
        rc = sn_write_file(s->path, &j->img, err);
        sn_job_free(j);
        return rc;
    }
    s->writing = j;
    return GW_OK;
}

int
ms_snapshot_finish(ms_state_t *s, int wait, int *ok)
{
    ms_snap_job_t *j = s->writing;

    *ok = 1;
    if (j == NULL)
        return 1;
    if (!wait && !__atomic_load_n(&j->done, __ATOMIC_ACQUIRE))
        return 0;
    pthread_join(j->thread, NULL);
    *ok = j->ok;
    sn_job_free(j);
    s->writing = NULL;
    return 1;
}

/* ---- reading ---- */

typedef struct sn_reader_s {
    const unsigned char *p;
    size_t off; /* absolute offset in the file */
    size_t end; /* absolute offset of the record's end */
    int bad;
} sn_reader_t;

static int
sn_get(sn_reader_t *r, void *out, size_t len)
{
    if (r->bad || r->end - r->off < len) {
        r->bad = 1;
        return -1;
    }
    memcpy(out, r->p + r->off, len);
    r->off += len;
    return 0;
}

static uint64_t
sn_le(const unsigned char *c, int n)
{
    uint64_t v = 0;
    int i;

    for (i = n - 1; i >= 0; i--)
        v = (v << 8) | c[i];
    return v;
}

static unsigned
sn_get_u8(sn_reader_t *r)
{
    unsigned char c = 0;

    sn_get(r, &c, 1);
    return c;
}

static uint32_t
sn_get_u32(sn_reader_t *r)
{
    unsigned char c[4] = {0};

    sn_get(r, c, 4);
    return (uint32_t) sn_le(c, 4);
}

static uint64_t
sn_get_u64(sn_reader_t *r)
{
    unsigned char c[8] = {0};

    sn_get(r, c, 8);
    return sn_le(c, 8);
}

static double
sn_get_f64(sn_reader_t *r)
{
    uint64_t v = sn_get_u64(r);
    double d;

    memcpy(&d, &v, 8);
    return d;
}

/* A string as a pointer into the file; *len set. Names are NUL-free. */
static const char *
sn_get_str(sn_reader_t *r, size_t *len)
{
    uint32_t n = sn_get_u32(r);
    const char *s;

    if (r->bad || r->end - r->off < n) {
        r->bad = 1;
        return NULL;
    }
    s = (const char *) r->p + r->off;
    r->off += n;
    *len = n;
    return s;
}

/* A NUL-terminated copy of a name (no NUL inside). */
static char *
sn_get_name(sn_reader_t *r)
{
    size_t len = 0;
    const char *s = sn_get_str(r, &len);

    if (s == NULL || memchr(s, '\0', len) != NULL) {
        r->bad = 1;
        return NULL;
    }
    return strndup(s, len);
}

#define SN_FAIL(at, ...)                                                      \
    do {                                                                      \
        char why_[160];                                                       \
        snprintf(why_, sizeof(why_), __VA_ARGS__);                            \
        return gw_error_set(err,                                              \
                            "%s: corrupt snapshot at byte %zu: %s; move it "  \
                            "away to start empty",                            \
                            s->path, (size_t) (at), why_);                    \
    } while (0)

/* One timing or set cell of a version 3 series record into c (a new cell,
 * or one an earlier record of the file made: its sketch is replaced). */
static int
sn_load_sketch_cell(ms_state_t *s, sn_reader_t *r, ms_cell_t *c, int fresh,
                    gw_kind_t kind, size_t at, uint32_t i, gw_error_t *err)
{
    size_t len = 0, where;
    const unsigned char *p;
    void *sk;
    int rc;

    c->sum = sn_get_f64(r);
    c->count = (int64_t) sn_get_u64(r);
    if (fresh)
        c->u.timing = NULL; /* the same for u.set */
    where = r->off + 4;
    p = (const unsigned char *) sn_get_str(r, &len);
    if (p == NULL)
        return gw_error_set(err, "%s: corrupt snapshot at byte %zu: bad "
                            "series record; move it away to start empty",
                            s->path, at);
    sk = malloc(kind == GW_KIND_TIMING ? sizeof(gw_timing_t)
                                       : sizeof(gw_set_t));
    if (sk == NULL)
        return gw_error_set(err, "%s: out of memory while loading", s->path);
    rc = kind == GW_KIND_TIMING ? gw_timing_decode(p, len, sk)
                                : gw_set_decode(p, len, sk);
    if (rc != GW_OK) {
        free(sk);
        return gw_error_set(err, "%s: corrupt snapshot at byte %zu: bad %s "
                            "%s of %zu bytes (cell %u of the series record "
                            "at byte %zu); move it away to start empty",
                            s->path, where, gw_kind_name(kind),
                            kind == GW_KIND_TIMING ? "sketch" : "members",
                            len, (unsigned) i, at);
    }
    ms_cell_free_sketch(c, kind);
    if (kind == GW_KIND_TIMING)
        c->u.timing = sk;
    else
        c->u.set = sk;
    return GW_OK;
}

static int
sn_load_series(ms_state_t *s, sn_reader_t *r, size_t at, uint32_t version,
               gw_error_t *err)
{
    char *project = NULL, *metric = NULL, *fname = NULL, *fvalue = NULL;
    unsigned kind, hasf, period;
    uint32_t n, i;
    ms_series_t *se = NULL;
    int rc = GW_ERR, sketch;

    project = sn_get_name(r);
    metric = sn_get_name(r);
    kind = sn_get_u8(r);
    hasf = sn_get_u8(r);
    if (hasf) {
        fname = sn_get_name(r);
        fvalue = sn_get_name(r);
    }
    period = sn_get_u8(r);
    n = sn_get_u32(r);
    sketch = ms_kind_sketch((gw_kind_t) kind);
    if (r->bad || hasf > 1 || gw_kind_name((gw_kind_t) kind) == NULL ||
        period >= GW_PERIOD_COUNT || (sketch && version < 3) ||
        (sketch ? (r->end - r->off) / 29 < n
                : ((r->end - r->off) / 32 != n ||
                   (r->end - r->off) % 32 != 0))) {
        gw_error_set(err, "%s: corrupt snapshot at byte %zu: bad series "
                     "record; move it away to start empty", s->path, at);
        goto out;
    }
    se = ms_series_get(s, project, metric, (gw_kind_t) kind, fname, fvalue,
                       1);
    if (se == NULL) {
        gw_error_set(err, "%s: out of memory while loading", s->path);
        goto out;
    }
    if (se->kind != (gw_kind_t) kind &&
        (sketch || ms_kind_sketch(se->kind))) {
        gw_error_set(err, "%s: corrupt snapshot at byte %zu: series record "
                     "of kind %s for a metric of kind %s; move it away to "
                     "start empty", s->path, at, gw_kind_name(kind),
                     gw_kind_name(se->kind));
        goto out;
    }
    for (i = 0; i < n; i++) {
        int64_t bucket = (int64_t) sn_get_u64(r);
        ms_cells_t *cells = &se->periods[period];
        size_t n0 = cells->n;
        ms_cell_t *c = ms_cell_get(cells, bucket, 1);

        if (c == NULL) {
            gw_error_set(err, "%s: out of memory while loading", s->path);
            goto out;
        }
        if (sketch) {
            if (sn_load_sketch_cell(s, r, c, cells->n > n0,
                                    (gw_kind_t) kind, at, i, err) != GW_OK)
                goto out;
            continue;
        }
        c->sum = sn_get_f64(r);
        c->count = (int64_t) sn_get_u64(r);
        c->u.ts = sn_get_f64(r);
    }
    if (r->bad || r->off != r->end) {
        gw_error_set(err, "%s: corrupt snapshot at byte %zu: bad series "
                     "record; move it away to start empty", s->path, at);
        goto out;
    }
    rc = GW_OK;
out:
    free(project);
    free(metric);
    free(fname);
    free(fvalue);
    return rc;
}

/* A claimed nonce; an expired one is dropped. */
static int
sn_load_nonce(ms_state_t *s, sn_reader_t *r, size_t off, double now,
              gw_error_t *err)
{
    size_t pl = 0, nl = 0;
    const char *p = sn_get_str(r, &pl), *n = sn_get_str(r, &nl);
    double exp = sn_get_f64(r);
    char project[MS_NONCE_KEY_MAX];

    if (r->bad || r->off != r->end || pl + 1 + nl > MS_NONCE_KEY_MAX
        || memchr(p, '\0', pl) != NULL || nl == 0)
        SN_FAIL(off, "bad nonce record");
    if (exp <= now)
        return GW_OK;
    memcpy(project, p, pl);
    project[pl] = '\0';
    if (ms_nonces_add(&s->nonces, project, n, nl, exp, now) == GW_AGAIN)
        return gw_error_set(err, "%s: out of memory while loading", s->path);
    return GW_OK;
}

static int
sn_apply(ms_state_t *s, const unsigned char *p, size_t size, gw_error_t *err)
{
    size_t off = SN_HEADER;
    double now = sn_wall();
    uint32_t version = (uint32_t) sn_le(p + SN_MAGIC_LEN, 4);

    for (;;) {
        unsigned type = p[off];
        size_t len = (size_t) sn_le(p + off + 1, 4);
        sn_reader_t r = {p, off + 5, off + 5 + len, 0};
        const char *a, *b, *c;
        size_t al = 0, bl = 0, cl = 0;

        (void) size;
        switch (type) {
        case SN_END:
            return GW_OK;
        case SN_SERIES:
            if (sn_load_series(s, &r, off, version, err) != GW_OK)
                return GW_ERR;
            break;
        case SN_DOC:
            a = sn_get_str(&r, &al);
            b = sn_get_str(&r, &bl);
            c = sn_get_str(&r, &cl);
            if (r.bad || r.off != r.end)
                SN_FAIL(off, "bad document record");
            if (ms_doc_set(s, a, al, b, bl, c, cl) != GW_OK)
                return gw_error_set(err, "%s: out of memory while loading",
                                    s->path);
            break;
        case SN_BATCH:
            a = sn_get_str(&r, &al);
            if (r.bad || r.off != r.end || memchr(a, '\0', al) != NULL)
                SN_FAIL(off, "bad batch record");
            if (ms_batch_remember(s, a, al) != GW_OK)
                return gw_error_set(err, "%s: out of memory while loading",
                                    s->path);
            break;
        case SN_NONCE:
            if (sn_load_nonce(s, &r, off, now, err) != GW_OK)
                return GW_ERR;
            break;
        default:
            SN_FAIL(off, "unknown record type %u", type);
        }
        off += 5 + len;
    }
}

/* Checks everything but the records' contents; GW_OK when sound. */
static int
sn_check(ms_state_t *s, const unsigned char *p, size_t size, gw_error_t *err)
{
    size_t off;
    uint32_t version, want, got;

    if (size < SN_MAGIC_LEN || memcmp(p, SN_MAGIC, SN_MAGIC_LEN) != 0)
        return gw_error_set(err, "%s: not a GottWall memory snapshot (bad "
                            "magic at byte 0); move it away to start empty",
                            s->path);
    if (size < SN_HEADER)
        SN_FAIL(size, "truncated: the file ends inside the header");
    version = (uint32_t) sn_le(p + SN_MAGIC_LEN, 4);
    if (version < 1 || version > SN_VERSION)
        SN_FAIL(SN_MAGIC_LEN, "unsupported version %u (this build reads 1 "
                "to %u)", version, SN_VERSION);
    for (off = SN_HEADER;;) {
        size_t len;

        if (size - off < 5)
            SN_FAIL(size, "truncated: the file ends inside the record "
                    "header at byte %zu", off);
        len = (size_t) sn_le(p + off + 1, 4);
        if (size - off - 5 < len)
            SN_FAIL(size, "truncated: the record at byte %zu needs %zu "
                    "bytes", off, len);
        if (p[off] == SN_END)
            break;
        off += 5 + len;
    }
    off += 5;
    if (size - off < 4)
        SN_FAIL(size, "truncated: the checksum is missing");
    if (size - off > 4)
        SN_FAIL(off + 4, "%zu bytes after the end of the snapshot",
                size - off - 4);
    want = (uint32_t) sn_le(p + off, 4);
    got = sn_crc(0, p, off);
    if (want != got)
        SN_FAIL(off, "checksum mismatch (stored %08x, computed %08x): the "
                "file is damaged", want, got);
    return GW_OK;
}

int
ms_snapshot_load(ms_state_t *s, gw_error_t *err)
{
    FILE *f;
    unsigned char *p = NULL;
    size_t size = 0, cap = 0, n;
    int rc;

    sn_crc_init();
    f = fopen(s->path, "rb");
    if (f == NULL) {
        if (errno == ENOENT) {
            gw_log_info(s->ctx, "no snapshot at %s, starting empty",
                        s->path);
            return GW_OK;
        }
        return gw_error_set(err, "cannot read snapshot %s: %s", s->path,
                            strerror(errno));
    }
    for (;;) {
        if (size == cap) {
            unsigned char *np;

            cap = cap ? cap * 2 : 65536;
            if ((np = realloc(p, cap)) == NULL) {
                fclose(f);
                free(p);
                return gw_error_set(err, "%s: out of memory while loading",
                                    s->path);
            }
            p = np;
        }
        n = fread(p + size, 1, cap - size, f);
        size += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        fclose(f);
        free(p);
        return gw_error_set(err, "cannot read snapshot %s: %s", s->path,
                            strerror(errno));
    }
    fclose(f);
    rc = sn_check(s, p, size, err);
    if (rc == GW_OK)
        rc = sn_apply(s, p, size, err);
    free(p);
    if (rc == GW_OK)
        gw_log_info(s->ctx, "snapshot %s loaded (%zu bytes)", s->path, size);
    return rc;
}
