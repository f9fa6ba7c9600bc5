/*
 * gottwall/version.h: the plugin ABI version.
 *
 * This is NOT the package version. The core refuses a plugin whose major
 * differs from its own, or whose minor is newer than its own.
 *   Appending a member to a struct or a function to the host table: MINOR++.
 *   Removing, reordering or changing the meaning of anything: MAJOR++, MINOR = 0.
 *
 * 1.0  initial ABI
 * 1.1  host->when_durable (acknowledge only what the journal holds)
 * 1.2  host->loops and host->loop_at (more ingest loops: INGEST_LOOPS)
 * 1.3  GW_AUTH_S4 with gw_auth_req_t.scope, host->auth_claim and the
 *      storage op nonce_claim (a replay cache shared through the storage)
 * 1.4  the storage op expire (RETENTION)
 * 1.5  the kinds timing and set (gottwall/sketch.h): gw_batch_t.data,
 *      the storage's kinds and query_timing
 * 1.6  the storage ops doc_cas, doc_list and doc_del (documents that
 *      processes sharing a storage update safely) and GW_CONFLICT
 * 1.7  host->post (work handed to another ingest loop),
 *      gw_http_listen_t.loops, and for plugins built against 1.7:
 *      auth_claim answers on the loop that called it
 */
#ifndef GOTTWALL_VERSION_H
#define GOTTWALL_VERSION_H

#define GW_PLUGIN_ABI_MAJOR 1
#define GW_PLUGIN_ABI_MINOR 7

/* First member of every descriptor: "GWLP" read as a big-endian word. */
#define GW_PLUGIN_MAGIC 0x47574c50u

#endif /* GOTTWALL_VERSION_H */
