/*
 * gottwall/config.h: declarative key tables for a plugin instance's section
 * of the config file.
 *
 * A plugin describes the keys it accepts in a table ending with
 * GW_CONFIG_END and asks the core to fill its state from it
 * (host->config_apply). The core type-checks every value, applies defaults,
 * writes each by offset into the plugin's struct and refuses unknown keys,
 * with the file and line in the message.
 */
#ifndef GOTTWALL_CONFIG_H
#define GOTTWALL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef enum gw_config_type_e {
    GW_CONFIG_STRING = 1, /* const char *: core-owned, valid until destroy */
    GW_CONFIG_INT = 2,    /* int64_t */
    GW_CONFIG_BOOL = 3,   /* int: 0 or 1 */
    GW_CONFIG_DOUBLE = 4  /* double */
} gw_config_type_t;

/*
 * One accepted key. def is the default as text ("8890", "true", "0.5",
 * "127.0.0.1") or NULL (strings: NULL; numbers: 0). For GW_CONFIG_INT and
 * GW_CONFIG_DOUBLE, min and max bound the value when min < max.
 */
typedef struct gw_config_key_s {
    const char *name;
    gw_config_type_t type;
    const char *def;
    size_t offset;
    const char *help;
    double min;
    double max;
} gw_config_key_t;

/* A key without bounds. */
#define GW_CONFIG_KEY(name, type, def, st, field, help)                       \
    {                                                                         \
        (name), (type), (def), offsetof(st, field), (help), 0, 0              \
    }

/* A number bounded to lo..hi inclusive. */
#define GW_CONFIG_KEY_RANGE(name, type, def, st, field, help, lo, hi)         \
    {                                                                         \
        (name), (type), (def), offsetof(st, field), (help), (lo), (hi)        \
    }

#define GW_CONFIG_END                                                         \
    {                                                                         \
        NULL, (gw_config_type_t) 0, NULL, 0, NULL, 0, 0                       \
    }

#endif /* GOTTWALL_CONFIG_H */
