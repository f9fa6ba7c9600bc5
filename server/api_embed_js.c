/*
 * server/api_embed_js.c: {PREFIX}/api/v1/embedded/{id}.js, the script a
 * page includes to show an embedded chart where the script is (SPEC §7).
 *
 * It writes an iframe of the chart's page ({id}.html, which fills its
 * frame), titled after the chart. Its size comes from the script's
 * width and height; without width it is as wide as the element it is in,
 * without height 400 px high; with width it is never wider than that
 * element. The script's from_date, to_date, period, renderer and name go
 * on to the page, so a shared link's range holds in this form too. The
 * iframe's HTML is written as a JSON string (JSON_ENSURE_ASCII), which is
 * a JavaScript string literal whatever the chart's name holds.
 */
#include "api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/http.h"
#include "base/buf.h"

static const char *const embed_js_keys[] = {"from_date", "to_date", "period",
                                            "renderer", "name"};

/* The iframe's src: the page and the script's query. */
static void
embed_js_src(const gw__api_embed_frame_t *f, gw__buf_t *b)
{
    size_t i;
    int first = 1;

    gw__buf_printf(b, "%s/api/v1/embedded/%s.html", f->base_url, f->id);
    for (i = 0; i < sizeof(embed_js_keys) / sizeof(embed_js_keys[0]); i++) {
        char *v = f->query[i] ? gw__api_urlencode(f->query[i]) : NULL;

        if (v == NULL) {
            if (f->query[i] != NULL)
                b->oom = 1;
            continue;
        }
        /* &amp;: the src is an HTML attribute. */
        gw__buf_printf(b, "%s%s=%s", first ? "?" : "&amp;", embed_js_keys[i],
                       v);
        first = 0;
        free(v);
    }
}

void
gw__api_embed_js(gw_http_req_t *req, const gw__api_embed_frame_t *f)
{
    char *title = gw__api_html_escape(f->name ? f->name : "GottWall chart");
    gw__buf_t b = {0};
    json_t *html = NULL;
    char *text = NULL;

    gw__buf_printf(&b, "<iframe src=\"");
    embed_js_src(f, &b);
    gw__buf_printf(&b,
                   "\" title=\"%s\" width=\"%s\" height=\"%s\" "
                   "frameborder=\"0\" style=\"border:0%s\"></iframe>",
                   title ? title : "", f->width ? f->width : "100%",
                   f->height ? f->height : "400",
                   f->width ? ";max-width:100%" : "");
    if (title != NULL && !b.oom)
        html = json_stringn(b.p, b.len);
    free(title);
    free(b.p);
    memset(&b, 0, sizeof(b));
    if (html != NULL)
        text = json_dumps(html, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
    json_decref(html);
    if (text != NULL)
        gw__buf_printf(&b, "document.write(%s);\n", text);
    free(text);
    if (b.p == NULL || b.oom) {
        free(b.p);
        gw__http_error(req, 500, "out of memory");
        return;
    }
    gw__http_respond(req, 200, "application/javascript; charset=utf-8",
                     "Cache-Control: no-store\r\n", b.p, b.len);
    free(b.p);
}
