/*
 * plugins/transport/redis/redis.c: the redis transport's plugin entry
 * points: its settings, start and stop, and the periodic timer that drives
 * both modes (the set sweep in pubsub mode; claims, heartbeats and
 * acknowledgement retries in stream mode). See README.md beside this file.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rt.h"

static const gw_config_key_t rt_keys[] = {
    GW_CONFIG_KEY("HOST", GW_CONFIG_STRING, "127.0.0.1", rt_state_t,
                  host_name, "Redis host"),
    GW_CONFIG_KEY_RANGE("PORT", GW_CONFIG_INT, "6379", rt_state_t, port,
                        "Redis port", 1, 65535),
    GW_CONFIG_KEY("PASSWORD", GW_CONFIG_STRING, NULL, rt_state_t, password,
                  "Redis AUTH password"),
    GW_CONFIG_KEY_RANGE("DB", GW_CONFIG_INT, "0", rt_state_t, db,
                        "Redis database number", 0, 100000),
    GW_CONFIG_KEY("CHANNEL", GW_CONFIG_STRING, "gottwall", rt_state_t,
                  channel, "pubsub mode: prefix of channels and sets"),
    GW_CONFIG_KEY_RANGE("MAX_LOADING", GW_CONFIG_INT, "100", rt_state_t,
                        max_loading, "pubsub mode: events per SPOP", 1,
                        100000),
    GW_CONFIG_KEY_RANGE("PERIODIC_PROCESSOR_TIME", GW_CONFIG_INT, "1000",
                        rt_state_t, periodic_ms,
                        "ms between sweeps of the sets (pubsub) or claims "
                        "(stream)", 10, 3600000),
    GW_CONFIG_KEY("MODE", GW_CONFIG_STRING, "pubsub", rt_state_t, mode,
                  "\"pubsub\" (the original client's protocol) or "
                  "\"stream\" (Redis Streams, acknowledged after storage)"),
    GW_CONFIG_KEY("STREAM", GW_CONFIG_STRING, "gottwall:events", rt_state_t,
                  stream, "stream mode: the stream's key"),
    GW_CONFIG_KEY("GROUP", GW_CONFIG_STRING, "gottwall", rt_state_t, group,
                  "stream mode: the consumer group"),
    GW_CONFIG_KEY("CONSUMER", GW_CONFIG_STRING, NULL, rt_state_t,
                  consumer_cfg,
                  "stream mode: this aggregator's consumer name "
                  "(default hostname:pid)"),
    GW_CONFIG_KEY_RANGE("CLAIM_IDLE_MS", GW_CONFIG_INT, "30000", rt_state_t,
                        claim_idle_ms,
                        "stream mode: take over entries pending this long",
                        100, 86400000),
    GW_CONFIG_KEY_RANGE("BATCH", GW_CONFIG_INT, "100", rt_state_t, batch,
                        "stream mode: entries per XREADGROUP", 1, 100000),
    GW_CONFIG_KEY_RANGE("BLOCK_MS", GW_CONFIG_INT, "1000", rt_state_t,
                        block_ms, "stream mode: XREADGROUP BLOCK time", 1,
                        60000),
    GW_CONFIG_KEY_RANGE("COMMAND_TIMEOUT", GW_CONFIG_INT, "5000", rt_state_t,
                        command_timeout_ms,
                        "ms a command may wait for Redis before the "
                        "connection is dropped and made again",
                        100, 600000),
    GW_CONFIG_KEY_RANGE("MAX_INFLIGHT", GW_CONFIG_INT, "100000", rt_state_t,
                        max_inflight,
                        "stream mode: entries read but not yet stored; "
                        "reading pauses beyond it",
                        1, 100000000),
    GW_CONFIG_END};

static void
rt_periodic_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    rt_state_t *s = w->data;

    (void) loop;
    (void) revents;
    if (s->stream_mode)
        rt_stream_periodic(s);
    else
        rt_pubsub_periodic(s);
}

static int
rt_create(const gw_ctx_t *ctx, void **state, gw_error_t *err)
{
    rt_state_t *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return gw_error_set(err, "out of memory");
    s->ctx = ctx;
    s->host = ctx->host;
    if (ctx->host->config_apply(ctx, rt_keys, s, err) != GW_OK)
        goto fail;
    if (strcmp(s->mode, "stream") == 0) {
        s->stream_mode = 1;
    } else if (strcmp(s->mode, "pubsub") != 0) {
        gw_error_set(err, "MODE must be \"pubsub\" or \"stream\", not \"%.100s\"",
                     s->mode);
        goto fail;
    }
    if (s->channel[0] == '\0' || strlen(s->channel) > 200) {
        gw_error_set(err, "CHANNEL must be 1 to 200 characters");
        goto fail;
    }
    if (s->stream[0] == '\0' || s->group[0] == '\0') {
        gw_error_set(err, "STREAM and GROUP must not be empty");
        goto fail;
    }
    if (s->consumer_cfg != NULL && s->consumer_cfg[0] != '\0') {
        if (strlen(s->consumer_cfg) >= sizeof(s->consumer)) {
            gw_error_set(err, "CONSUMER is longer than %zu characters",
                         sizeof(s->consumer) - 1);
            goto fail;
        }
        snprintf(s->consumer, sizeof(s->consumer), "%s", s->consumer_cfg);
    } else {
        char host[256];

        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        snprintf(s->consumer, sizeof(s->consumer), "%s:%ld", host,
                 (long) getpid());
    }
    *state = s;
    return GW_OK;
fail:
    free(s);
    return GW_ERR;
}

static int
rt_start(void *state, gw_error_t *err)
{
    rt_state_t *s = state;

    (void) err;
    s->loop = s->host->loop(s->ctx);
    if (s->stream_mode)
        rt_stream_start(s);
    else
        rt_pubsub_start(s);
    ev_timer_init(&s->periodic, rt_periodic_cb, s->periodic_ms / 1000.0,
                  s->periodic_ms / 1000.0);
    s->periodic.data = s;
    ev_timer_start(s->loop, &s->periodic);
    s->started = 1;
    gw_log_info(s->ctx, "%s mode on redis %s:%lld db %lld (%s %s)",
                s->stream_mode ? "stream" : "pubsub", s->host_name,
                (long long) s->port, (long long) s->db,
                s->stream_mode ? "stream" : "channels",
                s->stream_mode ? s->stream : s->channel);
    return GW_OK;
}

static void
rt_stop(void *state)
{
    rt_state_t *s = state;

    if (!s->started)
        return;
    s->started = 0;
    s->stopping = 1;
    ev_timer_stop(s->loop, &s->periodic);
    if (s->stream_mode) {
        rt_link_stop(&s->reader);
        rt_link_stop(&s->cmd);
        rt_stream_stop(s);
    } else {
        rt_link_stop(&s->sub);
        rt_link_stop(&s->cmd);
    }
}

static void
rt_destroy(void *state)
{
    rt_state_t *s = state;

    if (s == NULL)
        return;
    rt_stop(s);
    rt_pubsub_free(s);
    rt_stream_free(s);
    free(s);
}

static const gw_transport_ops_t rt_ops = {
    .struct_size = sizeof(gw_transport_ops_t),
    .create = rt_create,
    .start = rt_start,
    .stop = rt_stop,
    .destroy = rt_destroy,
};

GW_PLUGIN_DESCRIPTOR = {
    GW_PLUGIN_HEADER,
    .kind = GW_PLUGIN_TRANSPORT,
    .name = "redis",
    .version = "0.1.0",
    .description = "Redis: the original client's sets and pub/sub, or a "
                   "Streams consumer group acknowledged after storage",
    .transport = &rt_ops,
};
