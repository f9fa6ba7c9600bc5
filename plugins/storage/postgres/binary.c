/*
 * plugins/storage/postgres/binary.c: PostgreSQL's binary formats, as the
 * flush sends and reads them.
 *
 * Array parameters (pg_arr_t in pg.h) and COPY ... (FORMAT binary)
 * streams are built in one growing buffer; running out of memory sets
 * a->oom and makes every later write a no-op, so a caller checks once at
 * the end. pg_get_int reads an integer field of a binary result.
 */
#include <stdlib.h>
#include <string.h>

#include "pg.h"

#define PG_ARR_HEAD 20

static void
pg_arr_put(pg_arr_t *a, const void *s, size_t len)
{
    if (a->oom)
        return;
    if (a->len + len > a->cap) {
        size_t cap = a->cap ? a->cap : 4096;
        char *p;

        while (cap < a->len + len)
            cap *= 2;
        if ((p = realloc(a->p, cap)) == NULL) {
            a->oom = 1;
            return;
        }
        a->p = p;
        a->cap = cap;
    }
    memcpy(a->p + a->len, s, len);
    a->len += len;
}

static void
pg_be32(unsigned char *b, uint32_t v)
{
    b[0] = (unsigned char) (v >> 24);
    b[1] = (unsigned char) (v >> 16);
    b[2] = (unsigned char) (v >> 8);
    b[3] = (unsigned char) v;
}

static void
pg_be64(unsigned char *b, uint64_t v)
{
    pg_be32(b, (uint32_t) (v >> 32));
    pg_be32(b + 4, (uint32_t) v);
}

/* Starts an array (the header is written by pg_arr_close). */
void
pg_arr_open(pg_arr_t *a)
{
    unsigned char head[PG_ARR_HEAD] = {0};

    a->len = 0;
    a->n = 0;
    a->nulls = 0;
    pg_arr_put(a, head, sizeof(head));
}

/* One element: its length and bytes. */
void
pg_arr_elem(pg_arr_t *a, const void *data, uint32_t len)
{
    unsigned char l[4];

    pg_be32(l, len);
    pg_arr_put(a, l, 4);
    pg_arr_put(a, data, len);
    a->n++;
}

/* A NULL element: length -1, no bytes. */
void
pg_arr_null(pg_arr_t *a)
{
    unsigned char l[4] = {0xff, 0xff, 0xff, 0xff};

    pg_arr_put(a, l, 4);
    a->n++;
    a->nulls = 1;
}

void
pg_arr_str(pg_arr_t *a, const char *s)
{
    size_t len = strlen(s);

    if (len > 0x3fffffff)
        a->oom = 1;
    else
        pg_arr_elem(a, s, (uint32_t) len);
}

void
pg_arr_i16(pg_arr_t *a, int v)
{
    unsigned char b[2] = {(unsigned char) ((unsigned) v >> 8),
                          (unsigned char) v};

    pg_arr_elem(a, b, 2);
}

void
pg_arr_i64(pg_arr_t *a, int64_t v)
{
    unsigned char b[8];

    pg_be64(b, (uint64_t) v);
    pg_arr_elem(a, b, 8);
}

void
pg_arr_f64(pg_arr_t *a, double v)
{
    unsigned char b[8];
    uint64_t u;

    memcpy(&u, &v, sizeof(u));
    pg_be64(b, u);
    pg_arr_elem(a, b, 8);
}

/* Writes the header: a 1-D array of n elements of type oid (0-D when
 * empty, as PostgreSQL sends an empty array). */
void
pg_arr_close(pg_arr_t *a, uint32_t oid)
{
    unsigned char *h;

    if (a->oom || a->len < PG_ARR_HEAD || a->n > 0x7fffffff ||
        a->len > 0x7fffffff) {
        a->oom = 1;
        return;
    }
    h = (unsigned char *) a->p;
    if (a->n == 0) {
        pg_be32(h, 0);
        pg_be32(h + 4, 0);
        pg_be32(h + 8, oid);
        a->len = 12;
        return;
    }
    pg_be32(h, 1);
    pg_be32(h + 4, (uint32_t) a->nulls);
    pg_be32(h + 8, oid);
    pg_be32(h + 12, (uint32_t) a->n);
    pg_be32(h + 16, 1);
}

/* A COPY ... (FORMAT binary) stream being built in a pg_arr_t: the
 * header, then rows (a 16-bit field count, then fields written as array
 * elements are: a 32-bit length, -1 for NULL, and the bytes), then -1. */
void
pg_copy_open(pg_arr_t *a)
{
    static const char head[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0";

    a->len = 0;
    a->n = 0;
    pg_arr_put(a, head, sizeof(head));
}

void
pg_copy_row(pg_arr_t *a, int fields)
{
    unsigned char b[2] = {(unsigned char) ((unsigned) fields >> 8),
                          (unsigned char) fields};

    pg_arr_put(a, b, 2);
}

void
pg_copy_close(pg_arr_t *a)
{
    pg_arr_put(a, "\377\377", 2);
}

/* A big-endian integer of len bytes from a binary result. */
int64_t
pg_get_int(const PGresult *r, int row, int col)
{
    const unsigned char *v = (const unsigned char *) PQgetvalue(r, row, col);
    int len = PQgetlength(r, row, col), k;
    uint64_t u = len > 0 && (v[0] & 0x80) ? UINT64_MAX : 0;

    for (k = 0; k < len; k++)
        u = (u << 8) | v[k];
    return (int64_t) u;
}
