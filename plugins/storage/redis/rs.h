/*
 * plugins/storage/redis/rs.h: what the redis storage's files share.
 *
 *   redis.c  the config, the flush's Lua script, the connection, the Redis
 *            protocol writer, ping, create/destroy and the ops table
 *   store.c  store(): the flush
 *   read.c   query() and metadata()
 *   docs.c   the documents: doc_put(), doc_get(), doc_cas(), doc_list(),
 *            doc_del()
 *   expire.c expire(): RETENTION's removal of old buckets
 *   keys.c   key names and bucket arithmetic (keys.h)
 *
 * None of this leaves the plugin: -fvisibility=hidden and the export regex
 * keep only the plugin descriptor visible.
 */
#ifndef GW_REDIS_RS_H
#define GW_REDIS_RS_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include <gottwall/plugin.h>

#include "keys.h"

typedef struct rs_exp_s rs_exp_t; /* expire.c */

typedef struct rs_state_s {
    const gw_ctx_t *ctx;
    /* config */
    const char *host;
    int64_t port;
    const char *password;
    int64_t db;
    int64_t connect_timeout_ms;
    int64_t timeout_ms;
    int64_t chunk;     /* deltas per script */
    int64_t batch_ttl; /* seconds a batch id is remembered */
    /* connection */
    redisContext *c;
    char sha[41]; /* of the script, set by rs_load_script */
    rs_exp_t *exp; /* expiry's pass, allocated by the first expire() */
} rs_state_t;

/* ---- the connection (redis.c) ---- */

/* Connects (AUTH, SELECT, loads the script) unless connected: GW_OK, or
 * GW_AGAIN with why. */
int rs_connect(rs_state_t *s, gw_error_t *err);
void rs_disconnect(rs_state_t *s);
/* The connection broke (or timed out): drops it; GW_AGAIN with why. */
int rs_io_error(rs_state_t *s, const char *what, gw_error_t *err);
/* An error (or unexpected) reply: GW_AGAIN when transient (and drops the
 * connection), else GW_ERR; err says which. */
int rs_reply_error(rs_state_t *s, const redisReply *r, const char *what,
                   gw_error_t *err);
/* Runs one command; *out is the reply (free it) unless an error is
 * returned. */
int rs_call(rs_state_t *s, int argc, const char **argv, const size_t *lens,
            redisReply **out, const char *what, gw_error_t *err);
/* SCRIPT LOAD of the flush's script into s->sha (again after NOSCRIPT). */
int rs_load_script(rs_state_t *s, gw_error_t *err);
/* Appends b's bytes (RESP) to the output buffer: 0, or -1 (b->oom too). */
int rs_append(rs_state_t *s, const rs_buf_t *b);
/* Writes the output buffer out: 0, or -1 on an I/O error. */
int rs_flush_out(rs_state_t *s);

/* ---- the Redis protocol (RESP) written into a buffer (redis.c) ---- */

/* Writes the decimal digits of v to end at e; returns where they start. */
char *rs_digits(char *e, int64_t v);
/* "*n\r\n": the start of a command of n arguments. */
void rs_resp_cmd(rs_buf_t *b, size_t n);
/* One argument: "$len\r\n" data "\r\n". */
void rs_resp_arg(rs_buf_t *b, const void *p, size_t len);
void rs_resp_str(rs_buf_t *b, const char *s);
void rs_resp_int(rs_buf_t *b, int64_t v);
void rs_resp_double(rs_buf_t *b, double d);
/* Whole values below 2^53 in magnitude: exactly an int64. */
int rs_integral(double d);

/* ---- store (store.c) ---- */

int rs_store(void *state, const gw_batch_t *batch, gw_error_t *err);

/* ---- expiry (expire.c) ---- */

int rs_expire(void *state, gw_period_t period, int64_t before,
              gw_error_t *err);
void rs_exp_free(rs_state_t *s);

/* ---- reads and documents (read.c) ---- */

/* kinds.c: the timing and set kinds. */
int rs_hll_encode(const gw_set_t *s, rs_buf_t *out);
int rs_sketch_parse(const redisReply *r, gw_timing_t *t);
int rs_query_timing(void *state, const gw_query_t *q, gw_timing_point_fn emit,
                    void *arg, gw_error_t *err);
int rs_query_set(rs_state_t *s, const gw_query_t *q, gw_point_fn emit,
                 void *arg, gw_error_t *err);
/* read.c: query of the main hash (and ;count or ;ts) alone. */
int rs_query_plain(rs_state_t *s, const gw_query_t *q, gw_point_fn emit,
                   void *arg, gw_error_t *err);
int rs_query(void *state, const gw_query_t *q, gw_point_fn emit, void *arg,
             gw_error_t *err);
int rs_metadata(void *state, const char *project, gw_meta_fn emit, void *arg,
                gw_error_t *err);
int rs_doc_put(void *state, const char *ns, const char *id, const char *data,
               size_t len, gw_error_t *err);
int rs_nonce_claim(void *state, const char *project, const char *nonce,
                   size_t len, double expires_at, gw_error_t *err);
int rs_doc_get(void *state, const char *ns, const char *id, gw_doc_fn emit,
               void *arg, gw_error_t *err);
int rs_doc_cas(void *state, const char *ns, const char *id, const char *expect,
               size_t expect_len, const char *data, size_t len,
               gw_error_t *err);
int rs_doc_list(void *state, const char *ns, const char *prefix,
                gw_doc_entry_fn emit, void *arg, gw_error_t *err);
int rs_doc_del(void *state, const char *ns, const char *id, const char *expect,
               size_t expect_len, gw_error_t *err);

#endif /* GW_REDIS_RS_H */
