/*
 * plugins/storage/postgres/conn.c: the PostgreSQL storage's connection.
 *
 * Runs on the storage thread with libpq's synchronous API. pg_connect
 * connects when there is no connection and migrates the schema
 * (schema.c); while the server is unreachable it returns GW_AGAIN at once
 * and tries again with backoff (PG_BACKOFF_MIN doubling to
 * PG_BACKOFF_MAX). Every statement runs through PQexecParams (one
 * statement only, values as parameters) or COPY, and its result through
 * pg_check, which tells a lost connection or a transient server state
 * (GW_AGAIN) from an error (GW_ERR).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pg.h"

#define PG_BACKOFF_MIN 0.1
#define PG_BACKOFF_MAX 5.0

double
pg_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A one-line copy of a libpq message (they end with newlines). */
static void
pg_oneline(char *dst, size_t size, const char *msg)
{
    size_t i, j = 0;

    for (i = 0; msg != NULL && msg[i] != '\0' && j + 1 < size; i++) {
        char c = (msg[i] == '\n' || msg[i] == '\t') ? ' ' : msg[i];

        if (c == ' ' && (j == 0 || dst[j - 1] == ' '))
            continue;
        dst[j++] = c;
    }
    while (j > 0 && dst[j - 1] == ' ')
        j--;
    dst[j] = '\0';
}

void
pg_disconnect(pg_state_t *s)
{
    if (s->conn != NULL)
        PQfinish(s->conn);
    s->conn = NULL;
    s->staged = 0;
    pg_cache_free(&s->cache);
    pg_parts_forget(s);
}

/* The connection is gone: drop it, back off, GW_AGAIN. */
static int
pg_lost(pg_state_t *s, const char *what, const char *why, gw_error_t *err)
{
    char line[GW_ERROR_MAX];

    pg_oneline(line, sizeof(line), why);
    gw_error_set(err, "postgres: %s: %s", what, line);
    snprintf(s->last_err, sizeof(s->last_err), "%s", err ? err->msg : line);
    pg_disconnect(s);
    s->backoff = s->backoff == 0 ? PG_BACKOFF_MIN
                                 : fmin(s->backoff * 2, PG_BACKOFF_MAX);
    s->retry_at = pg_now() + s->backoff;
    return GW_AGAIN;
}

/* SQLSTATEs worth retrying: connection trouble, shutdown, timeouts,
 * deadlocks and serialization failures, lack of resources. */
static int
pg_transient(const char *state)
{
    if (state == NULL)
        return 1;
    return strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
           strncmp(state, "57", 2) == 0 || strcmp(state, "40001") == 0 ||
           strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0 ||
           strncmp(state, "58", 2) == 0;
}

/* Checks a result: GW_OK when it has status want; else GW_AGAIN (the
 * connection or the server's state) or GW_ERR, with a message. */
int
pg_check(pg_state_t *s, PGresult *r, ExecStatusType want, const char *what,
         gw_error_t *err)
{
    const char *state;
    char line[GW_ERROR_MAX];

    if (r != NULL && PQresultStatus(r) == want)
        return GW_OK;
    if (r == NULL || PQstatus(s->conn) == CONNECTION_BAD)
        return pg_lost(s, what, PQerrorMessage(s->conn), err);
    state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(s->sqlstate, sizeof(s->sqlstate), "%s", state ? state : "");
    pg_oneline(line, sizeof(line), PQresultErrorMessage(r));
    gw_error_set(err, "postgres: %s: %s", what, line);
    if (pg_transient(state)) {
        if (state != NULL && strncmp(state, "40", 2) != 0 &&
            strcmp(state, "57014") != 0)
            pg_disconnect(s); /* the session is likely unusable */
        return GW_AGAIN;
    }
    return GW_ERR;
}

/* Runs SQL without parameters (still PQexecParams: one statement only). */
int
pg_exec(pg_state_t *s, const char *sql, ExecStatusType want,
        const char *what, gw_error_t *err)
{
    PGresult *r = PQexecParams(s->conn, sql, 0, NULL, NULL, NULL, NULL, 0);
    int rc = pg_check(s, r, want, what, err);

    PQclear(r);
    return rc;
}

void
pg_rollback(pg_state_t *s)
{
    if (s->conn != NULL)
        PQclear(PQexecParams(s->conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL,
                             0));
}

/* Runs sql with n parameters: binary arrays (a[i]) or text (text[i]);
 * *out is the result when GW_OK (PQclear it). A query (want
 * PGRES_TUPLES_OK) has its results in binary. */
int
pg_runp(pg_state_t *s, const char *sql, int n, const pg_arr_t *const *a,
        const char *const *text, PGresult **out, ExecStatusType want,
        const char *what, gw_error_t *err)
{
    const char *params[64];
    int lens[64], formats[64], i, rc;
    PGresult *r;

    if (n > 64)
        return gw_error_set(err, "postgres: %s: %d parameters", what, n);
    for (i = 0; i < n; i++) {
        params[i] = a ? a[i]->p : text[i];
        lens[i] = a ? (int) a[i]->len : 0;
        formats[i] = a ? 1 : 0;
    }
    r = PQexecParams(s->conn, sql, n, NULL, params, lens, formats,
                     want == PGRES_TUPLES_OK);
    rc = pg_check(s, r, want, what, err);
    if (rc == GW_OK && out != NULL)
        *out = r;
    else
        PQclear(r);
    return rc;
}

/* pg_runp with n consecutive arrays. */
int
pg_run_arr(pg_state_t *s, const char *sql, int n, const pg_arr_t *arr,
           PGresult **out, ExecStatusType want, const char *what,
           gw_error_t *err)
{
    const pg_arr_t *a[64];
    int i;

    for (i = 0; i < n && i < 64; i++)
        a[i] = &arr[i];
    return pg_runp(s, sql, n, a, NULL, out, want, what, err);
}

/* Sends a COPY stream into table (FROM STDIN). */
int
pg_copy(pg_state_t *s, const char *table, const pg_arr_t *a,
        gw_error_t *err)
{
    char sql[128];
    PGresult *r;
    size_t off;
    int rc;

    snprintf(sql, sizeof(sql), "COPY %s FROM STDIN (FORMAT binary)", table);
    r = PQexec(s->conn, sql);
    if ((rc = pg_check(s, r, PGRES_COPY_IN, "staging the batch", err)) !=
        GW_OK) {
        PQclear(r);
        return rc;
    }
    PQclear(r);
    for (off = 0; off < a->len;) {
        size_t chunk = a->len - off < 1048576 ? a->len - off : 1048576;

        if (PQputCopyData(s->conn, a->p + off, (int) chunk) != 1)
            break;
        off += chunk;
    }
    PQputCopyEnd(s->conn, off < a->len ? "interrupted" : NULL);
    r = PQgetResult(s->conn);
    rc = pg_check(s, r, PGRES_COMMAND_OK, "staging the batch", err);
    PQclear(r);
    while (s->conn != NULL && (r = PQgetResult(s->conn)) != NULL)
        PQclear(r);
    return rc;
}

/* Server notices (e.g. "relation already exists, skipping") go to the
 * debug log instead of libpq's default, stderr. */
static void
pg_notice(void *arg, const char *message)
{
    pg_state_t *s = arg;
    char line[GW_ERROR_MAX];

    pg_oneline(line, sizeof(line), message);
    gw_log_debug(s->ctx, "postgres: %s", line);
}

int
pg_open(pg_state_t *s, const char *app, PGconn **out, gw_error_t *err)
{
    const char *keys[16], *vals[16];
    char port[32], timeout[32], options[64];
    int n = 0;

    snprintf(port, sizeof(port), "%lld", (long long) s->port);
    snprintf(timeout, sizeof(timeout), "%lld",
             (long long) (s->connect_timeout < 2 ? 2 : s->connect_timeout));
    snprintf(options, sizeof(options), "-c statement_timeout=%lld",
             (long long) s->statement_timeout_ms);
    if (s->dsn != NULL && s->dsn[0] != '\0') {
        keys[n] = "dbname", vals[n++] = s->dsn; /* expanded: later keys win */
    } else {
        keys[n] = "host", vals[n++] = s->host;
        keys[n] = "port", vals[n++] = port;
        keys[n] = "dbname", vals[n++] = s->db;
        if (s->user != NULL)
            keys[n] = "user", vals[n++] = s->user;
        if (s->password != NULL)
            keys[n] = "password", vals[n++] = s->password;
    }
    keys[n] = "connect_timeout", vals[n++] = timeout;
    keys[n] = "options", vals[n++] = options;
    keys[n] = "application_name", vals[n++] = app;
    keys[n] = "client_encoding", vals[n++] = "UTF8";
    keys[n] = "keepalives", vals[n++] = "1";
    keys[n] = "keepalives_idle", vals[n++] = "30";
    keys[n] = "keepalives_interval", vals[n++] = "10";
    keys[n] = "keepalives_count", vals[n++] = "3";
    keys[n] = NULL, vals[n] = NULL;
    *out = PQconnectdbParams(keys, vals, 1);
    if (*out != NULL && PQstatus(*out) == CONNECTION_OK) {
        PQsetNoticeProcessor(*out, pg_notice, s);
        return GW_OK;
    }
    {
        char line[GW_ERROR_MAX];

        pg_oneline(line, sizeof(line),
                   *out ? PQerrorMessage(*out) : "out of memory");
        gw_error_set(err, "postgres: cannot connect: %s", line);
    }
    if (*out != NULL)
        PQfinish(*out);
    *out = NULL;
    return GW_AGAIN;
}

int
pg_connect(pg_state_t *s, gw_error_t *err)
{
    gw_error_t e;
    int rc;

    if (s->conn != NULL) {
        if (PQstatus(s->conn) == CONNECTION_OK)
            return GW_OK;
        pg_disconnect(s);
    }
    if (pg_now() < s->retry_at) {
        gw_error_set(err, "%s (retrying in %.1f s)", s->last_err,
                     s->retry_at - pg_now());
        return GW_AGAIN;
    }
    if (pg_open(s, "gottwall", &s->conn, &e) != GW_OK) {
        static const char lead[] = "postgres: cannot connect: ";

        return pg_lost(s, "cannot connect", e.msg + sizeof(lead) - 1, err);
    }
    rc = pg_migrate(s, err);
    if (rc != GW_OK) {
        pg_disconnect(s);
        return rc == GW_ERR ? GW_AGAIN : rc; /* keep the data meanwhile */
    }
    s->backoff = 0;
    s->retry_at = 0;
    gw_log_debug(s->ctx, "connected to postgres %s:%s, schema version %d",
                 PQhost(s->conn), PQport(s->conn), PG_SCHEMA_VERSION);
    return GW_OK;
}
