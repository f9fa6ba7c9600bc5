/*
 * core/seed.h: reading the kinds and live series of every project from the
 * storage at start-up (core/seed.c).
 */
#ifndef GW_CORE_SEED_H
#define GW_CORE_SEED_H

#include "base/conf.h"
#include "ingest/ingest.h"
#include "store.h"

struct ev_loop;

/*
 * Asks the storage thread for each project's metadata and records the
 * kinds (gw__ingest_set_kind) and series (gw__ingest_seed_series) in
 * ingest, running loop until every answer is in or *stopping. A storage
 * that cannot answer is logged (kinds and series are then learnt afresh);
 * GW_ERR only if memory ran out, as learning kinds afresh could then break
 * the kind rule. Loop thread, before any transport starts.
 */
int gw__seed_run(struct ev_loop *loop, gw__store_t *store,
                 gw__ingest_t *ingest, const gw__config_t *cfg,
                 const int *stopping);

#endif
