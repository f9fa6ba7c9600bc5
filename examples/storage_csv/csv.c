/*
 * examples/storage_csv/csv.c: a GottWall storage plugin that appends every
 * delta to a CSV file (docs/plugin-abi.md walks through it).
 *
 *     STORAGE = "csv";
 *     STORAGE_SETTINGS = { PATH = "/var/lib/gottwall/counts.csv"; };
 *
 * The file is the storage: one record per line (RFC 4180 quoting, so names
 * may hold commas, quotes and newlines), appended and never rewritten:
 *
 *     gottwall-csv,1                                     the first line
 *     delta,PROJECT,METRIC,KIND,PERIOD,BUCKET,SUM,COUNT,TS   the total series
 *     delta,PROJECT,METRIC,KIND,PERIOD,BUCKET,SUM,COUNT,TS,FILTER,VALUE
 *     commit,BATCH_ID,NDELTAS                            ends a batch
 *     doc,NS,ID,DATA                                     a document
 *
 * A batch is written with one write() and counts only once its commit line
 * is in the file, so a crash in the middle of a write loses that batch (the
 * core had not been told it was stored, and sends it again) and never half
 * of it. At create the file is read back into an in-memory index
 * (index.c), which answers queries, metadata and documents; store() and
 * doc_put() append to the file first and update the index after.
 *
 * Threads: create and destroy run on the daemon's main thread, every other
 * op on the storage thread, never two at once: no locks. Every op may block
 * (write, fsync).
 */
#define _DEFAULT_SOURCE /* flock, fdatasync, ftruncate */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gottwall/plugin.h>

#include "index.h"

#define CS_MAGIC "gottwall-csv,1\n"
#define CS_MAX_FIELDS 12

typedef struct cs_state_s {
    const gw_ctx_t *ctx;

    /* Settings, filled by host->config_apply (strings are core-owned). */
    const char *path;
    int fsync;

    int fd;
    ix_index_t ix;
    char *out; /* the records of one store() or doc_put() */
    size_t out_len, out_cap;
    int out_failed;
} cs_state_t;

static const gw_config_key_t cs_keys[] = {
    GW_CONFIG_KEY("PATH", GW_CONFIG_STRING, "gottwall.csv", cs_state_t, path,
                  "the CSV file (relative to the daemon's working "
                  "directory); created if missing"),
    GW_CONFIG_KEY("FSYNC", GW_CONFIG_BOOL, "true", cs_state_t, fsync,
                  "fdatasync after every batch, so a stored batch survives "
                  "a power cut"),
    GW_CONFIG_END};

/* ---- writing records ---- */

static void
cs_out(cs_state_t *st, const char *s, size_t n)
{
    if (st->out_len + n > st->out_cap) {
        size_t cap = (st->out_len + n) * 2;
        char *p = realloc(st->out, cap);

        if (p == NULL) {
            st->out_failed = 1;
            return;
        }
        st->out = p;
        st->out_cap = cap;
    }
    memcpy(st->out + st->out_len, s, n);
    st->out_len += n;
}

/* Appends ",field", quoted when it holds a comma, a quote or a line end. */
static void
cs_field(cs_state_t *st, const char *s, size_t n)
{
    size_t i;

    cs_out(st, ",", 1);
    if (n == 0 || strcspn(s, ",\"\r\n") < n || memchr(s, '\0', n) != NULL) {
        cs_out(st, "\"", 1);
        for (i = 0; i < n; i++) {
            if (s[i] == '"')
                cs_out(st, "\"\"", 2);
            else
                cs_out(st, s + i, 1);
        }
        cs_out(st, "\"", 1);
    } else {
        cs_out(st, s, n);
    }
}

static void
cs_str(cs_state_t *st, const char *s)
{
    cs_field(st, s, strlen(s));
}

static void
cs_num(cs_state_t *st, const char *fmt, ...) GW_PRINTF(2, 3);

static void
cs_num(cs_state_t *st, const char *fmt, ...)
{
    char buf[64];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    cs_out(st, ",", 1);
    cs_out(st, buf, (size_t) n);
}

static void
cs_delta(cs_state_t *st, const gw_delta_t *d)
{
    cs_out(st, "delta", 5);
    cs_str(st, d->project);
    cs_str(st, d->metric);
    cs_str(st, gw_kind_name(d->kind) ? gw_kind_name(d->kind) : "counter");
    cs_str(st, gw_period_name(d->period) ? gw_period_name(d->period) : "?");
    cs_num(st, "%lld", (long long) d->bucket);
    cs_num(st, "%.17g", d->sum);
    cs_num(st, "%lld", (long long) d->count);
    cs_num(st, "%.17g", d->ts);
    if (d->filter_name != NULL) {
        cs_str(st, d->filter_name);
        cs_str(st, d->filter_value != NULL ? d->filter_value : "");
    }
    cs_out(st, "\n", 1);
}

/*
 * Appends st->out to the file in one piece. On any failure the file is cut
 * back to where it was, so no partial record stays behind, and GW_AGAIN is
 * returned: a full disk may empty, and the core will try again.
 */
static int
cs_flush(cs_state_t *st, gw_error_t *err)
{
    off_t before = lseek(st->fd, 0, SEEK_END);
    size_t done = 0;
    int e = 0;

    if (st->out_failed) {
        st->out_len = 0;
        st->out_failed = 0;
        return gw_error_set(err, "%s: out of memory formatting records",
                            st->path);
    }
    while (done < st->out_len) {
        ssize_t n = write(st->fd, st->out + done, st->out_len - done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            e = n < 0 ? errno : EIO;
            break;
        }
        done += (size_t) n;
    }
    if (e == 0 && st->fsync && fdatasync(st->fd) != 0)
        e = errno;
    st->out_len = 0;
    if (e != 0) {
        if (before >= 0 && ftruncate(st->fd, before) != 0)
            gw_log_error(st->ctx, "%s: could not cut back a failed write: %s",
                         st->path, strerror(errno));
        gw_error_set(err, "write %s: %s", st->path, strerror(e));
        return GW_AGAIN;
    }
    return GW_OK;
}

/* ---- reading the file back ---- */

/*
 * Splits the record at *pos into fields, in place: quotes removed, each
 * field NUL-terminated with its length in lens. Returns 1 and moves *pos
 * past the line, 0 if the line is incomplete (the file ends inside it), -1
 * if it is malformed.
 */
static int
cs_split(char **pos, char *end, char **fields, size_t *lens, int *nfields)
{
    char *p = *pos;
    int n = 0;

    for (;;) {
        char *start = p, *w = p, sep;

        if (n == CS_MAX_FIELDS)
            return -1;
        if (p < end && *p == '"') {
            p++;
            for (;;) {
                if (p == end)
                    return 0;
                if (*p == '"') {
                    if (p + 1 < end && p[1] == '"') {
                        *w++ = '"';
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                *w++ = *p++;
            }
        } else {
            while (p < end && *p != ',' && *p != '\n' && *p != '"')
                w = ++p;
        }
        if (p == end)
            return 0;
        sep = *p;
        if (sep != ',' && sep != '\n')
            return -1;
        *w = '\0'; /* w <= p: the separator's byte at the latest */
        fields[n] = start;
        lens[n] = (size_t) (w - start);
        n++;
        p++;
        if (sep == '\n')
            break;
    }
    *pos = p;
    *nfields = n;
    return 1;
}

static int
cs_kind(const char *s, gw_kind_t *kind)
{
    if (strcmp(s, "counter") == 0)
        *kind = GW_KIND_COUNTER;
    else if (strcmp(s, "avg") == 0)
        *kind = GW_KIND_AVG;
    else if (strcmp(s, "gauge") == 0)
        *kind = GW_KIND_GAUGE;
    else
        return GW_ERR;
    return GW_OK;
}

static int
cs_period(const char *s, gw_period_t *period)
{
    int i;

    for (i = 0; i < GW_PERIOD_COUNT; i++) {
        if (strcmp(s, gw_period_name((gw_period_t) i)) == 0) {
            *period = (gw_period_t) i;
            return GW_OK;
        }
    }
    return GW_ERR;
}

static int
cs_int(const char *s, long long *v)
{
    char *end;

    errno = 0;
    *v = strtoll(s, &end, 10);
    return (*s == '\0' || *end != '\0' || errno != 0) ? GW_ERR : GW_OK;
}

static int
cs_double(const char *s, double *v)
{
    char *end;

    *v = strtod(s, &end);
    return (*s == '\0' || *end != '\0') ? GW_ERR : GW_OK;
}

/* Parses the fields of a delta record. */
static int
cs_parse_delta(char **f, int n, gw_delta_t *d)
{
    long long bucket, count;

    if (n != 9 && n != 11)
        return GW_ERR;
    memset(d, 0, sizeof(*d));
    d->project = f[1];
    d->metric = f[2];
    if (cs_kind(f[3], &d->kind) != GW_OK ||
        cs_period(f[4], &d->period) != GW_OK ||
        cs_int(f[5], &bucket) != GW_OK || cs_double(f[6], &d->sum) != GW_OK ||
        cs_int(f[7], &count) != GW_OK || cs_double(f[8], &d->ts) != GW_OK)
        return GW_ERR;
    d->bucket = bucket;
    d->count = count;
    if (n == 11) {
        d->filter_name = f[9];
        d->filter_value = f[10];
    }
    return GW_OK;
}

/*
 * Reads the whole file into the index. Deltas wait in `pending` until
 * their commit line; a batch the file ends in the middle of (a crash during
 * a write) is cut off with a warning.
 */
static int
cs_load(cs_state_t *st, gw_error_t *err)
{
    struct stat sb;
    char *buf, *pos, *end;
    gw_delta_t *pending = NULL;
    size_t npending = 0, cap = 0, batches = 0, docs = 0;
    off_t good;
    int rc = GW_OK;

    if (fstat(st->fd, &sb) != 0)
        return gw_error_set(err, "%s: %s", st->path, strerror(errno));
    if (sb.st_size == 0) {
        gw_log_info(st->ctx, "%s: new file", st->path);
        st->out_len = 0;
        cs_out(st, CS_MAGIC, strlen(CS_MAGIC));
        return cs_flush(st, err) == GW_OK ? GW_OK : GW_ERR;
    }
    buf = malloc((size_t) sb.st_size + 1);
    if (buf == NULL)
        return gw_error_set(err, "%s: out of memory reading %lld bytes",
                            st->path, (long long) sb.st_size);
    if (pread(st->fd, buf, (size_t) sb.st_size, 0) != sb.st_size) {
        free(buf);
        return gw_error_set(err, "read %s: %s", st->path,
                            errno ? strerror(errno) : "short read");
    }
    end = buf + sb.st_size;
    if ((size_t) sb.st_size < strlen(CS_MAGIC) ||
        memcmp(buf, CS_MAGIC, strlen(CS_MAGIC)) != 0) {
        free(buf);
        return gw_error_set(err, "%s: not a GottWall CSV storage file (the "
                            "first line is not \"gottwall-csv,1\"); give "
                            "PATH a new file name", st->path);
    }
    pos = buf + strlen(CS_MAGIC);
    good = pos - buf;
    while (pos < end && rc == GW_OK) {
        char *f[CS_MAX_FIELDS];
        size_t lens[CS_MAX_FIELDS];
        long long at = (long long) (pos - buf);
        int n = 0, r;

        r = cs_split(&pos, end, f, lens, &n);
        if (r == 0)
            break; /* the file ends inside this line */
        if (r < 0) {
            rc = gw_error_set(err, "%s: byte %lld: malformed CSV record; "
                              "fix or remove that line", st->path, at);
            break;
        }
        if (strcmp(f[0], "delta") == 0) {
            if (npending == cap) {
                gw_delta_t *v;

                cap = cap ? cap * 2 : 256;
                v = realloc(pending, cap * sizeof(*v));
                if (v == NULL) {
                    rc = gw_error_set(err, "%s: out of memory", st->path);
                    break;
                }
                pending = v;
            }
            if (cs_parse_delta(f, n, &pending[npending]) != GW_OK) {
                rc = gw_error_set(err, "%s: byte %lld: bad delta record; "
                                  "fix or remove that line", st->path, at);
                break;
            }
            npending++;
        } else if (strcmp(f[0], "commit") == 0 && n == 3) {
            long long count;
            size_t i;

            if (cs_int(f[2], &count) != GW_OK ||
                count != (long long) npending) {
                rc = gw_error_set(err, "%s: byte %lld: batch %s says %s "
                                  "deltas, the file holds %zu before it",
                                  st->path, at, f[1], f[2], npending);
                break;
            }
            for (i = 0; i < npending && rc == GW_OK; i++)
                if (ix_apply(&st->ix, &pending[i]) != GW_OK)
                    rc = gw_error_set(err, "%s: out of memory", st->path);
            if (rc == GW_OK && ix_remember(&st->ix, f[1]) != GW_OK)
                rc = gw_error_set(err, "%s: out of memory", st->path);
            npending = 0;
            batches++;
            good = pos - buf;
        } else if (strcmp(f[0], "doc") == 0 && n == 4 && npending == 0) {
            if (ix_doc_put(&st->ix, f[1], f[2], f[3], lens[3]) != GW_OK)
                rc = gw_error_set(err, "%s: out of memory", st->path);
            docs++;
            good = pos - buf;
        } else {
            rc = gw_error_set(err, "%s: byte %lld: unknown record "
                              "\"%.20s\"; fix or remove that line", st->path,
                              at, f[0]);
        }
    }
    if (rc == GW_OK && good < sb.st_size) {
        gw_log_warning(st->ctx, "%s: cutting %lld bytes after byte %lld: an "
                       "unfinished batch (a crash during a write; the "
                       "daemon had not counted it as stored)", st->path,
                       (long long) (sb.st_size - good), (long long) good);
        if (ftruncate(st->fd, good) != 0)
            rc = gw_error_set(err, "%s: cannot cut the unfinished batch: %s",
                              st->path, strerror(errno));
    }
    if (rc == GW_OK)
        gw_log_info(st->ctx, "%s: read %zu batches and %zu documents",
                    st->path, batches, docs);
    free(pending);
    free(buf);
    return rc;
}

/* ---- the storage ops ---- */

static void cs_destroy(void *state);

static int
cs_create(const gw_ctx_t *ctx, void **state, gw_error_t *err)
{
    cs_state_t *st = calloc(1, sizeof(*st));

    if (st == NULL)
        return gw_error_set(err, "out of memory");
    st->ctx = ctx;
    st->fd = -1;
    ix_init(&st->ix);
    if (ctx->host->config_apply(ctx, cs_keys, st, err) != GW_OK) {
        cs_destroy(st);
        return GW_ERR;
    }
    if (st->path == NULL || st->path[0] == '\0') {
        cs_destroy(st);
        return gw_error_set(err, "PATH is empty: name the CSV file");
    }
    st->fd = open(st->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (st->fd < 0) {
        gw_error_set(err, "open %s: %s", st->path, strerror(errno));
        cs_destroy(st);
        return GW_ERR;
    }
    if (flock(st->fd, LOCK_EX | LOCK_NB) != 0) {
        gw_error_set(err, "%s is in use by another process (one daemon per "
                     "CSV file: use redis or postgres to share a storage)",
                     st->path);
        cs_destroy(st);
        return GW_ERR;
    }
    if (cs_load(st, err) != GW_OK) {
        cs_destroy(st);
        return GW_ERR;
    }
    *state = st;
    return GW_OK;
}

static void
cs_destroy(void *state)
{
    cs_state_t *st = state;

    if (st->fd >= 0)
        close(st->fd); /* releases the lock */
    ix_free(&st->ix);
    free(st->out);
    free(st);
}

static int
cs_store(void *state, const gw_batch_t *batch, gw_error_t *err)
{
    cs_state_t *st = state;
    uint64_t saturated;
    char count[32];
    size_t i;
    int rc;

    if (ix_seen(&st->ix, batch->id)) {
        gw_log_debug(st->ctx, "batch %s was applied already", batch->id);
        return GW_OK;
    }
    st->out_len = 0;
    for (i = 0; i < batch->ndeltas; i++)
        cs_delta(st, &batch->deltas[i]);
    cs_out(st, "commit", 6);
    cs_str(st, batch->id);
    snprintf(count, sizeof(count), ",%zu\n", batch->ndeltas);
    cs_out(st, count, strlen(count));
    rc = cs_flush(st, err);
    if (rc != GW_OK)
        return rc;
    /* In the file: from here on the batch counts, whatever happens. */
    saturated = st->ix.saturated;
    for (i = 0; i < batch->ndeltas; i++)
        if (ix_apply(&st->ix, &batch->deltas[i]) != GW_OK)
            gw_log_error(st->ctx, "out of memory: the index misses part of "
                         "batch %s (it is in %s; a restart reads it)",
                         batch->id, st->path);
    /* Counted here only: reading the file at start sums the same again. */
    if (st->ix.saturated > saturated)
        st->ctx->host->count(st->ctx, GW_COUNTER_SATURATED, NULL,
                             st->ix.saturated - saturated);
    if (ix_remember(&st->ix, batch->id) != GW_OK)
        gw_log_error(st->ctx, "out of memory remembering batch %s",
                     batch->id);
    return GW_OK;
}

static int
cs_query(void *state, const gw_query_t *q, gw_point_fn emit, void *arg,
         gw_error_t *err)
{
    cs_state_t *st = state;

    (void) err;
    ix_query(&st->ix, q, emit, arg);
    return GW_OK;
}

static int
cs_metadata(void *state, const char *project, gw_meta_fn emit, void *arg,
            gw_error_t *err)
{
    cs_state_t *st = state;

    (void) err;
    ix_metadata(&st->ix, project, emit, arg);
    return GW_OK;
}

static int
cs_doc_put(void *state, const char *ns, const char *id, const char *data,
           size_t len, gw_error_t *err)
{
    cs_state_t *st = state;
    int rc;

    st->out_len = 0;
    cs_out(st, "doc", 3);
    cs_str(st, ns);
    cs_str(st, id);
    cs_field(st, data, len);
    cs_out(st, "\n", 1);
    rc = cs_flush(st, err);
    if (rc != GW_OK)
        return rc;
    if (ix_doc_put(&st->ix, ns, id, data, len) != GW_OK)
        return gw_error_set(err, "out of memory storing document %s/%s", ns,
                            id);
    return GW_OK;
}

static int
cs_doc_get(void *state, const char *ns, const char *id, gw_doc_fn emit,
           void *arg, gw_error_t *err)
{
    cs_state_t *st = state;

    (void) err;
    ix_doc_get(&st->ix, ns, id, emit, arg);
    return GW_OK;
}

/* Healthy while the file we write is still the file at PATH (someone may
 * have deleted or moved it: then our writes go nowhere anyone looks). */
static int
cs_ping(void *state, gw_error_t *err)
{
    cs_state_t *st = state;
    struct stat a, b;

    if (fstat(st->fd, &a) != 0) {
        gw_error_set(err, "%s: %s", st->path, strerror(errno));
        return GW_AGAIN;
    }
    if (stat(st->path, &b) != 0 || a.st_ino != b.st_ino ||
        a.st_dev != b.st_dev) {
        gw_error_set(err, "%s was deleted or replaced; restart the daemon "
                     "to use the file now at that path", st->path);
        return GW_AGAIN;
    }
    return GW_OK;
}

static const gw_storage_ops_t cs_ops = {
    .struct_size = sizeof(gw_storage_ops_t),
    .create = cs_create,
    .destroy = cs_destroy,
    .store = cs_store,
    .query = cs_query,
    .metadata = cs_metadata,
    .doc_put = cs_doc_put,
    .doc_get = cs_doc_get,
    .ping = cs_ping,
};

GW_PLUGIN_DESCRIPTOR = {
    GW_PLUGIN_HEADER,
    .kind = GW_PLUGIN_STORAGE,
    .name = "csv",
    .version = "1.0.0",
    .description = "example: appends every delta to a CSV file",
    .storage = &cs_ops,
};
