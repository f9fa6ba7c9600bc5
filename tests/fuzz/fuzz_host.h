/*
 * tests/fuzz/fuzz_host.h: what the fuzz targets that drive a real
 * transport plugin (udp, tcpip) or the auth check share: a real daemon
 * that runs nothing (gw__daemon_new, aggregator role) and one transport
 * instance "fuzz" of it behind the real host table (core/host.c), so that
 * the real config loader, auth, ingest and counters do the work.
 *
 * fz_init() loads a fixed config (two projects: the legacy test_project
 * with SECRET_KEY "secret_key", and shop with its own keys) from a temp
 * file; the daemon's clock (gw__run_opts_t.now) is pinned to FZ_NOW so
 * signatures made with it stay valid and the corpus replays the same every
 * time. Every log line, debug included, goes to fz_check_no_secret instead
 * of stderr (gw__log_set_sink). Header-only: each target includes it once.
 */
#ifndef GW_FUZZ_HOST_H
#define GW_FUZZ_HOST_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include <gottwall/host.h>
#include <gottwall/plugin.h>

#include "base/conf.h"
#include "base/log.h"
#include "base/metrics.h"
#include "core/daemon.h"
#include "core/host.h"
#include "fuzz_check.h"
#include "ingest/ingest.h"
#include "net/auth.h"

#define FZ_NOW 1392454739.0
#define FZ_SECRET "secret_key"
#define FZ_SHOP_PRIVATE "shop_private_distinctive"
#define FZ_INSTANCE "fuzz"

static gw__config_t fz_cfg;
static gw__daemon_t *fz_daemon;
/* The instance's context: what the targets hand to the plugin or call the
 * host table with. */
static const gw_ctx_t *fz_ctx;

static double
fz_now(void)
{
    return FZ_NOW;
}

/* The current input, set by the target: a message may quote what the
 * client sent, so a secret the input itself holds proves nothing. */
static const uint8_t *fz_input;
static size_t fz_input_len;

static void
fz_set_input(const uint8_t *data, size_t size)
{
    fz_input = data;
    fz_input_len = size;
}

static int
fz_in_input(const char *s)
{
    return fz_input != NULL &&
           memmem(fz_input, fz_input_len, s, strlen(s)) != NULL;
}

/* An error message must never carry a private key. */
static void
fz_check_no_secret(const char *msg)
{
    if (!fz_in_input(FZ_SECRET))
        FZ_CHECK(strstr(msg, FZ_SECRET) == NULL);
    if (!fz_in_input(FZ_SHOP_PRIVATE))
        FZ_CHECK(strstr(msg, FZ_SHOP_PRIVATE) == NULL);
}

static void
fz_log_sink(int level, const char *line)
{
    (void) level;
    fz_check_no_secret(line);
}

/* The instance's counters, from the real ones (base/metrics.h). */
typedef struct {
    uint64_t accepted; /* events aggregated */
    uint64_t refused;  /* events or messages dropped, any reason */
    uint64_t auth_failed;
} fz_counts_t;

static inline fz_counts_t
fz_counts(void)
{
    fz_counts_t c;

    gw__host_flush_counts();
    c.accepted = gw__metrics_get(FZ_INSTANCE, GW_COUNTER_ACCEPTED, NULL);
    c.refused = gw__metrics_get(FZ_INSTANCE, GW_COUNTER_DROPPED, NULL);
    c.auth_failed = gw__metrics_get(FZ_INSTANCE, GW_COUNTER_AUTH_FAILED, NULL);
    return c;
}

static void
fz_init(void)
{
    static int done;
    static char plugin_name[] = FZ_INSTANCE;
    static gw__plugin_t plugin; /* a stand-in: nothing is loaded */
    char path[] = "/tmp/gw-fuzz-conf-XXXXXX";
    static const char conf[] =
        "SECRET_KEY = \"" FZ_SECRET "\";\n"
        "PROJECTS = { test_project = \"my_public_key\";\n"
        "  shop = { public_key = \"shop_public\"; private_key = \""
        FZ_SHOP_PRIVATE "\"; }; };\n"
        "MAX_SERIES = 1000;\n";
    gw__run_opts_t opts;
    gw__instance_t *inst;
    struct ev_loop *loop;
    gw_error_t err;
    int fd;

    if (done)
        return;
    done = 1;
    fd = mkstemp(path);
    FZ_CHECK(fd >= 0);
    FZ_CHECK(write(fd, conf, sizeof(conf) - 1) == (ssize_t) sizeof(conf) - 1);
    close(fd);
    FZ_CHECK(gw__config_load(path, &fz_cfg, &err) == GW_OK);
    unlink(path);
    gw__log_set_sink(fz_log_sink);
    gw__log_set_level(GW_LOG_DEBUG);
    memset(&opts, 0, sizeof(opts));
    opts.roles = GW__ROLE_AGGREGATOR;
    opts.now = fz_now;
    loop = ev_loop_new(EVFLAG_AUTO);
    FZ_CHECK(loop != NULL);
    fz_daemon = gw__daemon_new(&fz_cfg, &opts, loop);
    FZ_CHECK(fz_daemon != NULL);
    plugin.desc.kind = GW_PLUGIN_TRANSPORT;
    plugin.name = plugin_name;
    inst = gw__instance_new(fz_daemon, &plugin, FZ_INSTANCE, NULL);
    FZ_CHECK(inst != NULL);
    fz_ctx = &inst->ctx;
}

/* Drops the aggregated table now and then so memory stays flat. */
static inline void
fz_recycle(void)
{
    static unsigned n;

    if (++n % 64 == 0)
        gw__table_free(gw__ingest_swap(gw__daemon_ingest(fz_daemon)));
}

#endif /* GW_FUZZ_HOST_H */
