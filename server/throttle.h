/*
 * server/throttle.h: the backoff of failed logins (api_login.c keeps one
 * table per address and one per account). A table holds at most `slots`
 * entries keyed by a string; each counts the failures of its key and
 * holds a lockout, 1 s after the first failure, doubling with each more up
 * to a cap, before which no password check of that key may start. The
 * caller passes the time (monotonic seconds), so the table is pure: see
 * tests/server/test_throttle.c. One thread only (the server's loop).
 */
#ifndef GW_SERVER_THROTTLE_H
#define GW_SERVER_THROTTLE_H

#include <stddef.h>

#define GW__THROTTLE_KEY 256
/* Failures are forgotten this long after their lockout ended. */
#define GW__THROTTLE_FORGET 900.0

typedef struct gw__throttle_entry_s {
    char key[GW__THROTTLE_KEY]; /* "" when the slot is free */
    unsigned failures;          /* since the last success */
    double until;               /* no check may start before this */
    double last;                /* last looked up (the oldest goes first) */
    unsigned pending;           /* attempts queued or being checked */
    int busy;                   /* a check of this key is running */
    int pinned;                 /* a USERS account: kept over others */
} gw__throttle_entry_t;

typedef struct gw__throttle_s {
    gw__throttle_entry_t *e;
    size_t slots;
} gw__throttle_t;

/* GW_OK, or GW_ERR when out of memory (the table then finds nothing). */
int gw__throttle_init(gw__throttle_t *t, size_t slots);
void gw__throttle_free(gw__throttle_t *t);

/* The entry of key (cut to GW__THROTTLE_KEY - 1 bytes), looked up at now.
 * With create, a missing one takes a free slot or the one whose loss
 * matters least (no pending attempt; first no failures, then not pinned,
 * then the oldest); NULL when every entry has a pending attempt. pin marks
 * a created entry pinned. Failures older than their lockout plus
 * GW__THROTTLE_FORGET are forgotten on the way. */
gw__throttle_entry_t *gw__throttle_find(gw__throttle_t *t, const char *key,
                                        double now, int create, int pin);

/* Seconds before a check of e may start; 0 when it may now. */
double gw__throttle_wait(const gw__throttle_entry_t *e, double now);

/* Counts a failure at now: the lockout becomes 1 s, doubled per failure
 * since the last success, at most cap. Returns that delay. */
double gw__throttle_fail(gw__throttle_entry_t *e, double now, double cap);

/* A success: the failures and the lockout are forgotten. */
void gw__throttle_reset(gw__throttle_entry_t *e);

#endif /* GW_SERVER_THROTTLE_H */
