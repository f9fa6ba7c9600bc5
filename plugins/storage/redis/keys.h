/*
 * plugins/storage/redis/keys.h: the redis storage's key layout and bucket
 * arithmetic (docs/storage-redis.md).
 *
 * Keys keep the original GottWall layout byte for byte for names without
 * separators. Inside every name (project, metric, filter name and value,
 * document namespace and id) the bytes ; | / : and the escape character \
 * are written as \XX (two upper-case hex digits), so different names never
 * share a key and `decode(encode(x)) == x`.
 */
#ifndef GW_REDIS_KEYS_H
#define GW_REDIS_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include <gottwall/event.h>

/* A growing byte buffer; oom is set (and sticks) when an allocation fails. */
typedef struct rs_buf_s {
    char *p;
    size_t len;
    size_t cap;
    int oom;
} rs_buf_t;

void rs_buf_put(rs_buf_t *b, const void *data, size_t len);
void rs_buf_puts(rs_buf_t *b, const char *s);
void rs_buf_printf(rs_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends s with ; | / : \ escaped as \XX. */
void rs_buf_escape(rs_buf_t *b, const char *s);
/* Appends the name that len bytes of escaped s stand for: 0, or -1 when s
 * is not a valid escaping (a lone \ or bad hex) or out of memory. */
int rs_buf_unescape(rs_buf_t *b, const char *s, size_t len);
void rs_buf_free(rs_buf_t *b);

/* "{project};{metric};{period}" or "...;{filter}|{value}" (fname NULL:
 * the total series). */
void rs_key_series(rs_buf_t *b, const char *project, const char *metric,
                   gw_period_t period, const char *fname, const char *fvalue);
void rs_key_metrics(rs_buf_t *b, const char *project);       /* SET  */
void rs_key_kinds(rs_buf_t *b, const char *project);         /* HASH */
/* gottwall:projects: every project written since this version (a SET of
 * names as they are), the list expiry walks. */
void rs_key_projects(rs_buf_t *b);
void rs_key_filters(rs_buf_t *b, const char *project, const char *metric);
void rs_key_values(rs_buf_t *b, const char *project, const char *metric,
                   const char *fname);
void rs_key_doc(rs_buf_t *b, const char *ns, const char *id);
/* gottwall:docs:{ns}: the SET of the escaped ids of ns's documents
 * (doc_list), kept by every doc op since ABI 1.6. */
void rs_key_docs(rs_buf_t *b, const char *ns);
void rs_key_batch(rs_buf_t *b, const char *id);
/* gottwall:nonce:{project}:{nonce}: a claimed S3/S4 nonce (the nonce is
 * of [A-Za-z0-9_-] only, so it needs no escaping). */
void rs_key_nonce(rs_buf_t *b, const char *project, const char *nonce,
                  size_t len);

/* Suffixes of the extra hashes of avg (count) and gauge (ts) series. */
#define RS_SUFFIX_COUNT ";count"
#define RS_SUFFIX_TS ";ts"
/* + the field: a timing cell's sketch (hash), a set cell (HyperLogLog). */
#define RS_SUFFIX_SKETCH ";q:"
#define RS_SUFFIX_HLL ";hll:"
/* + the field: a set cell's members' hashes while few (or "big"). */
#define RS_SUFFIX_EXACT ";ex:"

/* The first bucket start >= t of the period (t itself when aligned). */
int64_t rs_bucket_align_up(gw_period_t period, int64_t t);
/* The start of the bucket after the one starting at b. */
int64_t rs_bucket_next(gw_period_t period, int64_t b);

#endif /* GW_REDIS_KEYS_H */
