/*
 * tests/fuzz/fuzz_host.h: a small in-process host for the fuzz targets
 * that drive a real transport plugin (udp, tcpip) or the auth check
 * without a daemon: the real config loader, auth and ingest behind a
 * gw_host_t, logging off, counters kept in fz_counts.
 *
 * fz_init() loads a fixed config (two projects: the legacy test_project
 * with SECRET_KEY "secret_key", and shop with its own keys) from a temp
 * file; the clock is pinned to FZ_NOW so signatures made with it stay
 * valid. Header-only: each target includes it once.
 */
#ifndef GW_FUZZ_HOST_H
#define GW_FUZZ_HOST_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include <gottwall/host.h>
#include <gottwall/plugin.h>

#include "net/auth.h"
#include "base/conf.h"
#include "fuzz_check.h"
#include "ingest/ingest.h"

#define FZ_NOW 1392454739.0
#define FZ_SECRET "secret_key"
#define FZ_SHOP_PRIVATE "shop_private_distinctive"

static gw__config_t fz_cfg;
static gw__auth_t *fz_auth;
static gw__ingest_t *fz_ingest;
static struct ev_loop *fz_loop;
static unsigned long long fz_accepted, fz_refused, fz_auth_failed;

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
fz_log(const gw_ctx_t *ctx, int level, const char *fmt, ...)
{
    char line[2048];
    va_list ap;

    (void) ctx;
    (void) level;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fz_check_no_secret(line);
}

static const char *
fz_instance_name(const gw_ctx_t *ctx)
{
    (void) ctx;
    return "fuzz";
}

static int
fz_config_apply(const gw_ctx_t *ctx, const gw_config_key_t *keys,
                void *state, gw_error_t *err)
{
    (void) ctx;
    return gw__config_apply_keys(NULL, "fuzz.conf", "BACKENDS.fuzz", keys,
                                 state, err);
}

static struct ev_loop *
fz_loop_get(const gw_ctx_t *ctx)
{
    (void) ctx;
    return fz_loop;
}

static int
fz_project_exists(const gw_ctx_t *ctx, const char *project)
{
    (void) ctx;
    return gw__config_project(&fz_cfg, project) != NULL;
}

static int
fz_auth_check(const gw_ctx_t *ctx, const gw_auth_req_t *req,
              const char **project, gw_error_t *err)
{
    const char *reason = NULL;
    int rc = gw__auth_check(fz_auth, req, project, &reason, err);

    (void) ctx;
    FZ_CHECK(rc == GW_OK || rc == GW_ERR);
    if (rc != GW_OK) {
        fz_check_no_secret(err->msg);
        fz_auth_failed++;
    }
    return rc;
}

static int
fz_submit_json(const gw_ctx_t *ctx, const char *project,
               gw_action_t action, const char *json, size_t len,
               unsigned flags, gw_error_t *err)
{
    int rc = gw__ingest_json(fz_ingest, project, action, json, len,
                             (flags & GW_SUBMIT_BATCH) != 0, NULL, NULL,
                             err);

    (void) ctx;
    FZ_CHECK(rc == GW_OK || rc == GW_ERR);
    if (rc == GW_OK)
        fz_accepted++;
    else
        fz_refused++;
    return rc;
}

static int
fz_submit(const gw_ctx_t *ctx, const char *project, const gw_event_t *ev,
          gw_error_t *err)
{
    int rc = gw__ingest_event(fz_ingest, project, ev, NULL, err);

    (void) ctx;
    FZ_CHECK(rc == GW_OK || rc == GW_ERR);
    return rc;
}

static void
fz_count(const gw_ctx_t *ctx, gw_counter_t c, const char *reason,
         uint64_t n)
{
    (void) ctx;
    (void) c;
    (void) reason;
    (void) n;
}

static const char *
fz_prefix(const gw_ctx_t *ctx)
{
    (void) ctx;
    return "";
}

static const gw_host_t fz_host = {
    .struct_size = sizeof(gw_host_t),
    .abi_major = GW_PLUGIN_ABI_MAJOR,
    .abi_minor = GW_PLUGIN_ABI_MINOR,
    .log = fz_log,
    .instance_name = fz_instance_name,
    .config_apply = fz_config_apply,
    .loop = fz_loop_get,
    .project_exists = fz_project_exists,
    .auth_check = fz_auth_check,
    .submit_json = fz_submit_json,
    .submit = fz_submit,
    .count = fz_count,
    .prefix = fz_prefix,
};

static const gw_ctx_t fz_ctx = {&fz_host, NULL};

static void
fz_init(void)
{
    static int done;
    char path[] = "/tmp/gw-fuzz-conf-XXXXXX";
    static const char conf[] =
        "SECRET_KEY = \"" FZ_SECRET "\";\n"
        "PROJECTS = { test_project = \"my_public_key\";\n"
        "  shop = { public_key = \"shop_public\"; private_key = \""
        FZ_SHOP_PRIVATE "\"; }; };\n"
        "MAX_SERIES = 1000;\n";
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
    fz_auth = gw__auth_new(&fz_cfg, fz_now);
    fz_ingest = gw__ingest_new(&fz_cfg.limits, fz_now);
    fz_loop = ev_loop_new(EVFLAG_AUTO);
}

/* Drops the aggregated table now and then so memory stays flat. */
static inline void
fz_recycle(void)
{
    static unsigned n;

    if (++n % 64 == 0)
        gw__table_free(gw__ingest_swap(fz_ingest));
}

#endif /* GW_FUZZ_HOST_H */
