/*
 * base/post.h: work handed to another thread's event loop: a node the
 * caller embeds in what the work is about (a connection, a claim), so
 * that handing it over allocates nothing and cannot fail. core/workers.c
 * runs the posts of its loops; net/http.c hands connections over with
 * them.
 */
#ifndef GW_BASE_POST_H
#define GW_BASE_POST_H

typedef struct gw__post_s {
    struct gw__post_s *next;
    void (*fn)(struct gw__post_s *p); /* gets p back; may free it */
} gw__post_t;

/* Hands p to ingest loop i (0 < i < loops) of env: p->fn(p) runs there
 * soon. GW_OK, or GW_ERR: no such loop (fn does not run). Any thread. */
typedef int (*gw__post_fn)(void *env, int i, gw__post_t *p);

#endif /* GW_BASE_POST_H */
