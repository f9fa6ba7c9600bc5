/*
 * server/throttle.c: the backoff table of failed logins (see throttle.h).
 * A fixed array searched linearly: a lookup per login attempt over a few
 * thousand entries costs microseconds, and a fixed array keeps pointers to
 * entries valid while attempts hold them (an entry with pending attempts
 * is never reused).
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* autoconf's: _GNU_SOURCE and friends */
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gottwall/common.h>

#include "throttle.h"

int
gw__throttle_init(gw__throttle_t *t, size_t slots)
{
    t->e = calloc(slots, sizeof(*t->e));
    t->slots = t->e != NULL ? slots : 0;
    return t->e != NULL ? GW_OK : GW_ERR;
}

void
gw__throttle_free(gw__throttle_t *t)
{
    free(t->e);
    t->e = NULL;
    t->slots = 0;
}

/* Which of a and b to reuse first (both without pending attempts). */
static int
throttle_worse(const gw__throttle_entry_t *a, const gw__throttle_entry_t *b)
{
    if ((a->failures > 0) != (b->failures > 0))
        return a->failures == 0;
    if (a->pinned != b->pinned)
        return !a->pinned;
    return a->last < b->last;
}

gw__throttle_entry_t *
gw__throttle_find(gw__throttle_t *t, const char *key, double now, int create,
                  int pin)
{
    char k[GW__THROTTLE_KEY];
    gw__throttle_entry_t *victim = NULL, *e;
    size_t i;

    snprintf(k, sizeof(k), "%s", key);
    for (i = 0; i < t->slots; i++) {
        e = &t->e[i];
        if (e->key[0] != '\0' && strcmp(e->key, k) == 0) {
            if (e->failures > 0 && now > e->until + GW__THROTTLE_FORGET)
                e->failures = 0;
            e->last = now;
            return e;
        }
        if (e->pending > 0)
            continue;
        if (e->key[0] == '\0') {
            if (victim == NULL || victim->key[0] != '\0')
                victim = e;
        } else if (victim == NULL ||
                   (victim->key[0] != '\0' && throttle_worse(e, victim))) {
            victim = e;
        }
    }
    if (!create || victim == NULL)
        return NULL;
    memset(victim, 0, sizeof(*victim));
    memcpy(victim->key, k, sizeof(k));
    victim->last = now;
    victim->pinned = pin;
    return victim;
}

double
gw__throttle_wait(const gw__throttle_entry_t *e, double now)
{
    return e->until > now ? e->until - now : 0;
}

double
gw__throttle_fail(gw__throttle_entry_t *e, double now, double cap)
{
    double delay = 1.0;
    unsigned i;

    e->failures++;
    for (i = 1; i < e->failures && delay < cap; i++)
        delay *= 2;
    if (delay > cap)
        delay = cap;
    if (now + delay > e->until)
        e->until = now + delay;
    e->last = now;
    return delay;
}

void
gw__throttle_reset(gw__throttle_entry_t *e)
{
    e->failures = 0;
    e->until = 0;
}
