/*
 * plugins/transport/statsd/statsd_parse.h: the statsd line protocol.
 *
 * One line is `name:value|type[|@rate][|#tags][|Tts]`, optionally with more
 * `:value|type[|@rate]` entries after the first (etsy's `name:1|c:2|c`).
 * Telegraf's tags are in the name, `name,k=v,k2=v2:1|c`, and become tags
 * the same as DogStatsD's `|#k:v,k2:v2`; a name whose parts after a comma
 * are not all k=v stays the name as written.
 * The parser works in place on a mutable buffer: it writes NUL bytes over
 * separators so that every string it returns points into the line, and it
 * allocates nothing. A line is valid as a whole or refused as a whole.
 */
#ifndef GW_STATSD_PARSE_H
#define GW_STATSD_PARSE_H

#include <stddef.h>

#include <gottwall/event.h>

#define SD_MAX_SAMPLES 64 /* values per line (name:1|c:2|c:...) */
#define SD_MAX_TAGS 64    /* DogStatsD tags per line */

typedef enum sd_type_e {
    SD_COUNTER = 1, /* c */
    SD_GAUGE = 2,   /* g */
    SD_TIMER = 3,   /* ms, h, d */
    SD_SET = 4      /* s: the value is a member (any bytes but | : \n) */
} sd_type_t;

/* One value of a line. */
typedef struct sd_sample_s {
    sd_type_t type;
    double value;    /* as written (a gauge delta keeps its sign) */
    double rate;     /* @rate, 1 if none; in (0, 1] */
    int gauge_delta; /* 1 for a gauge written with a leading + or - */
    const char *member; /* a set's value as written (not NUL-terminated) */
    size_t member_len;
} sd_sample_t;

/* What one line parsed into. Strings point into the parsed buffer. */
typedef struct sd_line_s {
    const char *name;     /* NUL-terminated, 1..255 bytes */
    size_t name_len;
    const char *tags_raw; /* the tags text after '#' (NUL-terminated), or "" */
    size_t tags_raw_len;
    int has_ts;           /* a DogStatsD |T<epoch> field was given */
    int telegraf;         /* the tags were in the name (name,k=v:...) */
    double ts;
    size_t nsamples;
    sd_sample_t samples[SD_MAX_SAMPLES];
    size_t ntags;
    gw_filter_t tags[SD_MAX_TAGS]; /* k:v -> (k, v); a bare tag k -> (k, "true") */
} sd_line_t;

typedef enum sd_result_e {
    SD_LINE_OK = 0,    /* out holds at least one sample */
    SD_LINE_EMPTY = 1, /* nothing but whitespace: not an event */
    SD_LINE_BAD = 2,   /* malformed: *why says how */
    SD_LINE_RANGE = 3, /* a value that is no finite number (nan, inf,
                        * 1e999): counted as value_out_of_range */
    SD_LINE_DOGSTATSD = 4 /* a DogStatsD event (_e{...}) or service check
                           * (_sc|...): not a metric, ignored */
} sd_result_t;

/*
 * Parses line[0..len) in place. line[len] must be writable (the parser
 * stores a NUL there); a trailing '\r' is ignored. On SD_LINE_BAD *why (may
 * be NULL) is a static message such as "missing type" or "rate must be in
 * (0, 1]".
 */
sd_result_t sd_parse_line(char *line, size_t len, sd_line_t *out,
                          const char **why);

#endif /* GW_STATSD_PARSE_H */
