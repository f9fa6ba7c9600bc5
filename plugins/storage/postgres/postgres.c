/*
 * plugins/storage/postgres/postgres.c: the PostgreSQL storage (SPEC §6):
 * its config keys, create/destroy, ping, the ops table and the plugin
 * descriptor.
 *
 * Runs on the storage thread with libpq's synchronous API (conn.c).
 * Creates and migrates its own schema (schema.c). A flush batch is one
 * transaction (store.c): it records the batch id in gottwall_batches and,
 * only if that id was new, inserts the batch's new series into
 * gottwall_series with their slots (ids of series seen before are cached
 * per connection, cache.c), updates the slots of the others and upserts
 * the older cells into gottwall_cells, and the metrics. Every value
 * travels as a binary array parameter of PQexecParams or in a binary COPY
 * stream (binary.c); no value is ever put inside SQL text (sql.c). While
 * the server is unreachable, calls return GW_AGAIN at once and
 * reconnection is tried with backoff. pg.h lists the files;
 * docs/storage-postgres.md has the schema.
 */
#include <stdlib.h>

#include "pg.h"

static const gw_config_key_t pg_keys[] = {
    GW_CONFIG_KEY("DSN", GW_CONFIG_STRING, NULL, pg_state_t, dsn,
                  "libpq connection string or URI; else the keys below"),
    GW_CONFIG_KEY("HOST", GW_CONFIG_STRING, "127.0.0.1", pg_state_t, host,
                  "server address (or a socket directory)"),
    GW_CONFIG_KEY_RANGE("PORT", GW_CONFIG_INT, "5432", pg_state_t, port,
                        "server port", 1, 65535),
    GW_CONFIG_KEY("DB", GW_CONFIG_STRING, "gottwall", pg_state_t, db,
                  "database name"),
    GW_CONFIG_KEY("USER", GW_CONFIG_STRING, NULL, pg_state_t, user,
                  "user (default: libpq's)"),
    GW_CONFIG_KEY("PASSWORD", GW_CONFIG_STRING, NULL, pg_state_t, password,
                  "password (or use ~/.pgpass)"),
    GW_CONFIG_KEY_RANGE("CONNECT_TIMEOUT", GW_CONFIG_INT, "5", pg_state_t,
                        connect_timeout, "connect timeout, s (>= 2)", 1,
                        3600),
    GW_CONFIG_KEY_RANGE("STATEMENT_TIMEOUT", GW_CONFIG_INT, "60000",
                        pg_state_t, statement_timeout_ms,
                        "statement_timeout, ms", 100, 3600000),
    GW_CONFIG_KEY_RANGE("BATCH_RETENTION", GW_CONFIG_INT, "604800",
                        pg_state_t, batch_retention,
                        "seconds applied batch ids are kept", 60, 31536000),
    GW_CONFIG_END};

static int
pg_ping(void *state, gw_error_t *err)
{
    pg_state_t *s = state;
    int rc;

    if ((rc = pg_connect(s, err)) != GW_OK)
        return rc;
    rc = pg_exec(s, "SELECT 1", PGRES_TUPLES_OK, "ping", err);
    return rc == GW_OK ? GW_OK : GW_AGAIN;
}

static int
pg_create(const gw_ctx_t *ctx, void **state, gw_error_t *err)
{
    pg_state_t *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return gw_error_set(err, "postgres storage: out of memory");
    s->ctx = ctx;
    s->exp.period = -1;
    if (ctx->host->config_apply(ctx, pg_keys, s, err) != GW_OK) {
        free(s);
        return GW_ERR;
    }
    *state = s;
    return GW_OK;
}

static void
pg_destroy(void *state)
{
    pg_state_t *s = state;

    pg_expire_close(s);
    pg_disconnect(s);
    free(s);
}

static const gw_storage_ops_t pg_ops = {
    .struct_size = sizeof(gw_storage_ops_t),
    .create = pg_create,
    .destroy = pg_destroy,
    .store = pg_store,
    .query = pg_query_ops,
    .metadata = pg_metadata,
    .doc_put = pg_doc_put,
    .doc_get = pg_doc_get,
    .ping = pg_ping,
    .nonce_claim = pg_nonce_claim,
    .expire = pg_expire,
    .kinds = GW_KIND_BIT(GW_KIND_TIMING) | GW_KIND_BIT(GW_KIND_SET),
    .query_timing = pg_query_timing,
    .doc_cas = pg_doc_cas,
    .doc_list = pg_doc_list,
    .doc_del = pg_doc_del,
};

GW_PLUGIN_DESCRIPTOR = {
    GW_PLUGIN_HEADER,
    .kind = GW_PLUGIN_STORAGE,
    .name = "postgres",
    .version = "0.1.0",
    .description = "PostgreSQL storage, versioned schema",
    .storage = &pg_ops,
};
