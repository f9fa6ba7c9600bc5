/*
 * plugins/storage/redis/docs.c: the documents (embedded charts, dashboards,
 * sessions' generations, the core's small records).
 *
 * A document is the string gottwall:doc:{ns}:{id} (ns and id escaped as
 * every key part is). Since ABI 1.6 the SET gottwall:docs:{ns} holds the
 * escaped ids of ns's documents, for doc_list; each op changes the string
 * and the set in one Lua script, so they agree and a compare-and-set is
 * atomic against every process on this Redis. A document written by an
 * older plugin is not in the set until it is written again: doc_list does
 * not list it (the core reads such documents by id, as before).
 */
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <gottwall/plugin.h>

#include "keys.h"
#include "rs.h"

/* KEYS[1] the document, KEYS[2] the set; ARGV[1] the escaped id, ARGV[2]
 * data, ARGV[3] "1" to compare with ARGV[4] (a value expected), "0" to
 * require that there is none, "-" to write whatever is there. */
static const char rs_put_script[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if (ARGV[3] == '1' and v ~= ARGV[4]) or (ARGV[3] == '0' and v) then\n"
    "  return 0\n"
    "end\n"
    "redis.call('SET', KEYS[1], ARGV[2])\n"
    "redis.call('SADD', KEYS[2], ARGV[1])\n"
    "return 1\n";

/* KEYS as above; ARGV[1] the escaped id, ARGV[2] "1" to remove only when
 * the value is ARGV[3], "-" to remove whatever is there. */
static const char rs_del_script[] =
    "if ARGV[2] == '1' and redis.call('GET', KEYS[1]) ~= ARGV[3] then\n"
    "  return 0\n"
    "end\n"
    "redis.call('DEL', KEYS[1])\n"
    "redis.call('SREM', KEYS[2], ARGV[1])\n"
    "return 1\n";

/* KEYS[1] the set; ARGV[1] the documents' key prefix, ARGV[2] the escaped
 * id prefix: a flat array of (escaped id, value). */
static const char rs_list_script[] =
    "local out = {}\n"
    "for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
    "  if string.sub(m, 1, #ARGV[2]) == ARGV[2] then\n"
    "    local v = redis.call('GET', ARGV[1] .. m)\n"
    "    if v then out[#out + 1] = m; out[#out + 1] = v end\n"
    "  end\n"
    "end\n"
    "return out\n";

/*
 * EVAL of script (rs_put_script or rs_del_script) on the document (ns, id)
 * with its escaped id and nargs more arguments: GW_OK when the script
 * answered 1, GW_CONFLICT when 0 (err says so), GW_AGAIN or GW_ERR.
 */
static int
rs_doc_eval(rs_state_t *s, const char *script, const char *ns, const char *id,
            int nargs, const char **args, const size_t *arglens,
            const char *what, gw_error_t *err)
{
    rs_buf_t doc = {NULL, 0, 0, 0}, set = {NULL, 0, 0, 0}, eid = {NULL, 0, 0, 0};
    const char *argv[10] = {"EVAL", script, "2"};
    size_t lens[10] = {4, strlen(script), 1};
    redisReply *r = NULL;
    int i, rc = GW_OK;

    rs_key_doc(&doc, ns, id);
    rs_key_docs(&set, ns);
    rs_buf_escape(&eid, id);
    rs_buf_put(&eid, "", 0); /* allocated when id is "" */
    argv[3] = doc.p, lens[3] = doc.len;
    argv[4] = set.p, lens[4] = set.len;
    argv[5] = eid.p, lens[5] = eid.len;
    for (i = 0; i < nargs; i++) {
        argv[6 + i] = args[i];
        lens[6 + i] = arglens[i];
    }
    if (doc.oom || set.oom || eid.oom)
        rc = gw_error_set(err, "redis storage: out of memory");
    if (rc == GW_OK && (rc = rs_connect(s, err)) == GW_OK &&
        (rc = rs_call(s, 6 + nargs, argv, lens, &r, what, err)) == GW_OK) {
        if (r->type != REDIS_REPLY_INTEGER) {
            rc = rs_reply_error(s, r, what, err);
        } else if (r->integer != 1) {
            gw_error_set(err, "redis storage: the document %s/%s changed", ns,
                         id);
            rc = GW_CONFLICT;
        }
    }
    if (r != NULL)
        freeReplyObject(r);
    rs_buf_free(&doc);
    rs_buf_free(&set);
    rs_buf_free(&eid);
    return rc;
}

/* The put script with mode "-" (any), "0" (none) or "1" (expect). */
static int
rs_doc_write(rs_state_t *s, const char *ns, const char *id, const char *mode,
             const char *expect, size_t expect_len, const char *data,
             size_t len, gw_error_t *err)
{
    const char *args[] = {data ? data : "", mode, expect ? expect : ""};
    size_t lens[] = {len, 1, expect_len};

    return rs_doc_eval(s, rs_put_script, ns, id, 3, args, lens,
                       "storing a document", err);
}

int
rs_doc_put(void *state, const char *ns, const char *id, const char *data,
           size_t len, gw_error_t *err)
{
    return rs_doc_write(state, ns, id, "-", NULL, 0, data, len, err);
}

int
rs_doc_cas(void *state, const char *ns, const char *id, const char *expect,
           size_t expect_len, const char *data, size_t len, gw_error_t *err)
{
    return rs_doc_write(state, ns, id, expect ? "1" : "0", expect, expect_len,
                        data, len, err);
}

int
rs_doc_del(void *state, const char *ns, const char *id, const char *expect,
           size_t expect_len, gw_error_t *err)
{
    const char *args[] = {expect ? "1" : "-", expect ? expect : ""};
    size_t lens[] = {1, expect_len};

    return rs_doc_eval(state, rs_del_script, ns, id, 2, args, lens,
                       "deleting a document", err);
}

int
rs_doc_get(void *state, const char *ns, const char *id, gw_doc_fn emit,
           void *arg, gw_error_t *err)
{
    rs_state_t *s = state;
    rs_buf_t key = {NULL, 0, 0, 0};
    redisReply *r = NULL;
    int rc;

    if ((rc = rs_connect(s, err)) != GW_OK)
        return rc;
    rs_key_doc(&key, ns, id);
    if (key.oom) {
        rs_buf_free(&key);
        return gw_error_set(err, "redis storage: out of memory");
    }
    {
        const char *argv[] = {"GET", key.p};
        size_t lens[] = {3, key.len};

        rc = rs_call(s, 2, argv, lens, &r, "GET", err);
    }
    if (rc == GW_OK) {
        if (r->type == REDIS_REPLY_STRING)
            emit(arg, r->str, (size_t) r->len);
        else if (r->type != REDIS_REPLY_NIL)
            rc = rs_reply_error(s, r, "GET", err);
    }
    if (r != NULL)
        freeReplyObject(r);
    rs_buf_free(&key);
    return rc;
}

/* Emits the (escaped id, value) pairs of the list script's answer. */
static int
rs_doc_emit_list(const redisReply *r, gw_doc_entry_fn emit, void *arg,
                 gw_error_t *err)
{
    size_t i;

    for (i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *m = r->element[i], *v = r->element[i + 1];
        rs_buf_t id = {NULL, 0, 0, 0};

        if (m->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        if (rs_buf_unescape(&id, m->str, (size_t) m->len) < 0) {
            rs_buf_free(&id);
            continue; /* not written by gottwall */
        }
        rs_buf_put(&id, "", 0);
        if (id.oom) {
            rs_buf_free(&id);
            return gw_error_set(err, "redis storage: out of memory");
        }
        emit(arg, id.p, v->str, (size_t) v->len);
        rs_buf_free(&id);
    }
    return GW_OK;
}

int
rs_doc_list(void *state, const char *ns, const char *prefix,
            gw_doc_entry_fn emit, void *arg, gw_error_t *err)
{
    rs_state_t *s = state;
    rs_buf_t set = {NULL, 0, 0, 0}, keys = {NULL, 0, 0, 0};
    rs_buf_t pre = {NULL, 0, 0, 0};
    redisReply *r = NULL;
    int rc;

    rs_key_docs(&set, ns);
    rs_key_doc(&keys, ns, "");
    rs_buf_escape(&pre, prefix);
    rs_buf_put(&pre, "", 0); /* allocated (and NUL-terminated) when "" */
    if (set.oom || keys.oom || pre.oom) {
        rc = gw_error_set(err, "redis storage: out of memory");
    } else if ((rc = rs_connect(s, err)) == GW_OK) {
        const char *argv[] = {"EVAL", rs_list_script, "1", set.p, keys.p,
                              pre.p};
        size_t lens[] = {4, sizeof(rs_list_script) - 1, 1, set.len, keys.len,
                         pre.len};

        rc = rs_call(s, 6, argv, lens, &r, "listing documents", err);
        if (rc == GW_OK && r->type == REDIS_REPLY_ARRAY)
            rc = rs_doc_emit_list(r, emit, arg, err);
        else if (rc == GW_OK)
            rc = rs_reply_error(s, r, "listing documents", err);
    }
    if (r != NULL)
        freeReplyObject(r);
    rs_buf_free(&set);
    rs_buf_free(&keys);
    rs_buf_free(&pre);
    return rc;
}
