/*
 * plugins/transport/redis/rt.h: the redis transport's shared state.
 *
 * The transport has two modes (MODE): "pubsub", compatible with the
 * original GottWall Redis client (rt_pubsub.c), and "stream", a Redis
 * Streams consumer group with acknowledgement after storage
 * (rt_stream.c). Both talk to Redis through rt_link_t (rt_link.c): one
 * hiredis async connection on the daemon's loop that reconnects by itself
 * with backoff and runs a callback each time it is ready.
 */
#ifndef GW_RT_H
#define GW_RT_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <gottwall/plugin.h>

typedef struct rt_state_s rt_state_t;
typedef struct rt_link_s rt_link_t;

/* A reply callback: reply is NULL when the connection went away (the
 * command's outcome is unknown) or the transport is stopping. */
typedef void (*rt_reply_fn)(rt_link_t *l, redisReply *reply, void *priv);

struct rt_link_s {
    rt_state_t *s;
    const char *role;       /* "subscriber", "commands", "reader" */
    redisAsyncContext *ac;  /* NULL while down */
    int ready;              /* connected, AUTH and SELECT done */
    int down_logged;        /* "down" was logged since it was last ready */
    double backoff;         /* next retry delay, s */
    double timeout;         /* s a command may take; 0: no watchdog */
    unsigned outstanding;   /* commands sent, replies not yet received */
    ev_tstamp progress;     /* last reply (or the send that started a wait) */
    ev_timer retry;
    ev_timer watchdog;
    void (*on_ready)(rt_link_t *l);
    void (*on_down)(rt_link_t *l);
};

/* A group of stream entry ids waiting for storage, then for XACK. */
typedef struct rt_group_s {
    struct rt_group_s *next;
    rt_state_t *s;
    char **ids;
    size_t n, cap;
} rt_group_t;

/* A verified stream entry the core could not take yet (GW_AGAIN). */
typedef struct rt_retry_s {
    struct rt_retry_s *next;
    char *id;
    char *project; /* as authenticated */
    char *event;
    size_t len;
} rt_retry_t;

/* One (project, public key) pair seen in a verified channel. */
typedef struct rt_pair_s {
    char *project;
    char *public_key;
    char *key;   /* {CHANNEL}:{project}:{public_key} */
    int loading; /* an SPOP is in flight */
} rt_pair_t;

/* The in-flight set of stream entry ids (chained hash). */
typedef struct rt_idnode_s {
    struct rt_idnode_s *next;
    uint64_t hash;
    char id[];
} rt_idnode_t;

struct rt_state_s {
    const gw_ctx_t *ctx;
    const gw_host_t *host;
    struct ev_loop *loop;

    /* Config. */
    const char *host_name;
    int64_t port;
    const char *password;
    int64_t db;
    const char *channel;
    int64_t max_loading;
    int64_t periodic_ms;
    const char *mode;
    const char *stream;
    const char *group;
    const char *consumer_cfg;
    int64_t claim_idle_ms;
    int64_t batch;
    int64_t block_ms;
    int64_t command_timeout_ms;
    int64_t max_inflight;

    int stream_mode;
    int started;
    int stopping;
    char consumer[300];
    char pattern[300];

    rt_link_t cmd;    /* commands: SPOP, XACK, XAUTOCLAIM, XGROUP */
    rt_link_t sub;    /* pubsub mode: PSUBSCRIBE */
    rt_link_t reader; /* stream mode: XREADGROUP ... BLOCK */
    ev_timer periodic;

    /* pubsub mode */
    rt_pair_t **pairs;
    size_t npairs, cap_pairs;

    /* stream mode */
    int group_ready;      /* XGROUP CREATE answered on this connection */
    int reading;          /* an XREADGROUP is in flight */
    int claiming;         /* an XAUTOCLAIM round is in flight */
    int claim_off;        /* Redis refused XAUTOCLAIM (older than 6.2) */
    ev_tstamp last_heartbeat;
    rt_group_t *acc;      /* processed, not yet handed to on_stored */
    rt_group_t *waiting;  /* handed to on_stored, not yet stored */
    rt_group_t *unacked;  /* stored, XACK not yet confirmed */
    rt_retry_t *retry, *retry_tail; /* in flight, not taken yet: while
                                      * any waits nothing more is read */
    rt_idnode_t **inflight;
    size_t inflight_cap, ninflight;
    redisContext *sync;   /* for XACK after the loop has stopped */
};

/* rt_link.c */
void rt_link_init(rt_state_t *s, rt_link_t *l, const char *role,
                  double timeout, void (*on_ready)(rt_link_t *),
                  void (*on_down)(rt_link_t *));
void rt_link_start(rt_link_t *l);
void rt_link_stop(rt_link_t *l);
/* Sends a command (binary-safe argv). GW_OK, or GW_ERR when the link is
 * not ready (fn is not called). */
int rt_link_cmd(rt_link_t *l, rt_reply_fn fn, void *priv, int argc,
                const char **argv, const size_t *argvlen);
/* Drops the connection (it reconnects with backoff). */
void rt_link_drop(rt_link_t *l, const char *why);

/* rt_pubsub.c */
void rt_pubsub_start(rt_state_t *s);
void rt_pubsub_periodic(rt_state_t *s);
void rt_pubsub_free(rt_state_t *s);
/* Splits "{project}:{public}:{private}" (after the channel prefix) in
 * place; 0 on success. For tests. */
int rt_split_channel(char *rest, char **project, char **pub, char **priv);

/* rt_stream.c */
void rt_stream_start(rt_state_t *s);
void rt_stream_periodic(rt_state_t *s);
void rt_stream_stop(rt_state_t *s);
void rt_stream_free(rt_state_t *s);

#endif /* GW_RT_H */
