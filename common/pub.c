/* pub.c - the publish batch, and the JSON form of a publish body. */
#include "pub.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"

void cbx_pub_batch_free(struct cbx_pub_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->items[i].data);
    free(b->items);
    b->items = NULL;
    b->n = b->cap = 0;
}

enum cbx_err cbx_pub_batch_add(struct cbx_pub_batch *b, const char *queue, size_t queue_len,
                               const char *data, size_t len, bool is_json,
                               const struct cbx_pub_limits *lim, char *detail, size_t detail_len)
{
    struct cbx_pub_item *it;
    char why[200];

    if (!cbx_qname_valid(queue, queue_len)) {
        snprintf(detail, detail_len, "bad queue name \"%.*s\": use 1-%d letters, digits or ._:@-",
                 (int)(queue_len > 140 ? 140 : queue_len), queue, CBX_QNAME_MAX);
        return CBX_ERR_INVALID;
    }
    if (len > lim->max_message_bytes) {
        snprintf(detail, detail_len, "data for \"%.*s\" has %zu bytes, more than max-message-bytes (%zu)",
                 (int)queue_len, queue, len, lim->max_message_bytes);
        return CBX_ERR_TOO_LARGE;
    }
    if (!is_json && !cbx_utf8_valid(data, len)) {
        snprintf(detail, detail_len, "data for \"%.*s\" is not valid UTF-8 text", (int)queue_len, queue);
        return CBX_ERR_INVALID;
    }
    /* the parsers checked their JSON already; this catches other callers (the admin socket) */
    if (is_json && cbx_json_text_check(data, len, why, sizeof why) != CBX_OK) {
        snprintf(detail, detail_len, "data for \"%.*s\" is not valid JSON text: %s", (int)queue_len, queue, why);
        return CBX_ERR_INVALID;
    }
    if (b->n == CBX_PUB_BATCH_MAX) {
        snprintf(detail, detail_len, "more than %d messages in one batch", CBX_PUB_BATCH_MAX);
        return CBX_ERR_TOO_LARGE;
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        struct cbx_pub_item *items = realloc(b->items, cap * sizeof *items);
        if (items == NULL)
            return CBX_ERR_NOMEM;
        b->items = items;
        b->cap = cap;
    }
    it = &b->items[b->n];
    it->data = malloc(len + 1);
    if (it->data == NULL)
        return CBX_ERR_NOMEM;
    memcpy(it->data, data, len);
    it->data[len] = '\0';
    it->len = len;
    memcpy(it->queue, queue, queue_len);
    it->queue[queue_len] = '\0';
    it->queue_len = queue_len;
    it->is_json = is_json;
    b->n++;
    return CBX_OK;
}

/* Line and column (1-based) of offset off in text, counting characters
 * as expat does for XML (text before off is valid UTF-8). */
static void position(const char *text, size_t off, unsigned *line, unsigned *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else if (((unsigned char)text[i] & 0xc0) != 0x80) {
            (*col)++;
        }
    }
}

/* Says which control character c is and how JSON writes it. */
static void control_fault(unsigned char c, char *why, size_t why_len)
{
    char esc[8];

    if (c == '\n' || c == '\r' || c == '\t')
        snprintf(esc, sizeof esc, "\\%c", c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
    else
        snprintf(esc, sizeof esc, "\\u%04x", c);
    snprintf(why, why_len, "control character U+%04X inside a string (write it as %s)", c, esc);
}

/* What cJSON lets through and a subscriber must never see: invalid UTF-8
 * (anywhere), raw control characters inside strings (they would pass into
 * answers verbatim and split a long-poll's JSON, an SSE data: line or a
 * tail line), and \u0000 escapes (cJSON keeps strings NUL-terminated and
 * would cut them there; XML cannot carry a NUL either). Returns the offset
 * of the first fault and writes what it is to why, or returns len. */
static size_t text_fault(const char *text, size_t len, char *why, size_t why_len)
{
    bool in_string = false;

    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x80) {
            size_t n = cbx_utf8_char_len(text + i, len - i);
            if (n == 0) {
                snprintf(why, why_len, "invalid UTF-8");
                return i;
            }
            i += n;
            continue;
        }
        if (in_string && c < 0x20) {
            control_fault(c, why, why_len);
            return i;
        }
        if (in_string && c == '\\') {
            if (i + 5 < len && memcmp(text + i + 1, "u0000", 5) == 0) {
                snprintf(why, why_len, "\\u0000 is not allowed in a string");
                return i;
            }
            /* skip the escaped character, so \" does not end the string (a byte >= 0x80
             * there is left to the UTF-8 check, and cJSON refuses the escape) */
            i += i + 1 < len && (unsigned char)text[i + 1] < 0x80 ? 2 : 1;
            continue;
        }
        if (c == '"')
            in_string = !in_string;
        i++;
    }
    return len;
}

enum cbx_err cbx_json_text_check(const char *text, size_t len, char *detail, size_t detail_len)
{
    char why[128];
    unsigned line, col;
    size_t off = text_fault(text, len, why, sizeof why);

    if (off == len)
        return CBX_OK;
    position(text, off, &line, &col);
    snprintf(detail, detail_len, "line %u, column %u: %s", line, col, why);
    return CBX_ERR_INVALID;
}

/* Parses exactly one JSON value from text[0..len); NULL plus a reason. */
static cJSON *parse_one(const char *text, size_t len, char *detail, size_t detail_len)
{
    const char *end = NULL;
    cJSON *v;
    unsigned line, col;

    if (cbx_json_text_check(text, len, detail, detail_len) != CBX_OK)
        return NULL;
    /* the error spot comes back through end: cJSON_GetErrorPtr() is one global for every thread */
    v = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (v == NULL) {
        size_t off = (end != NULL && end >= text && end <= text + len) ? (size_t)(end - text) : 0;
        position(text, off, &line, &col);
        snprintf(detail, detail_len, "line %u, column %u: invalid JSON", line, col);
        return NULL;
    }
    while (end < text + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (end != text + len) {
        position(text, (size_t)(end - text), &line, &col);
        snprintf(detail, detail_len, "line %u, column %u: text after the JSON value", line, col);
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}

/* ---- compacting JSON text without re-printing it ----------------------
 * cJSON keeps numbers as doubles and prints 16-digit integers in exponent
 * form, losing digits. So a value is validated with cJSON but copied from
 * the publisher's own text, with only the white space between tokens taken
 * out: numbers keep every digit and strings every escape. */

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && is_ws(*p))
        p++;
    return p;
}

/* End of the string starting at the quote p. */
static const char *string_end(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return end;
}

/* End of the (valid) JSON value starting at p. */
static const char *value_end(const char *p, const char *end)
{
    int depth = 0;

    if (p < end && *p == '"')
        return string_end(p, end);
    while (p < end) {
        if (*p == '"') {
            p = string_end(p, end);
            continue;
        }
        if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            if (depth == 0)
                return p;
            if (--depth == 0)
                return p + 1;
        } else if (depth == 0 && (*p == ',' || is_ws(*p))) {
            return p;
        }
        p++;
    }
    return p;
}

/* Copies text[0..len) without white space outside strings. Owned; free(). */
static char *minify(const char *text, size_t len, size_t *out_len)
{
    char *out = malloc(len + 1), *w = out;
    const char *p = text, *end = text + len;

    if (out == NULL)
        return NULL;
    while (p < end) {
        if (*p == '"') {
            const char *e = string_end(p, end);
            memcpy(w, p, (size_t)(e - p));
            w += e - p;
            p = e;
        } else if (is_ws(*p)) {
            p++;
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
    *out_len = (size_t)(w - out);
    return out;
}

char *cbx_json_compact(const char *text, size_t len, size_t *out_len, char *detail, size_t detail_len)
{
    cJSON *v = parse_one(text, len, detail, detail_len);
    char *s;

    if (v == NULL)
        return NULL;
    cJSON_Delete(v);
    s = minify(text, len, out_len);
    if (s == NULL)
        snprintf(detail, detail_len, "out of memory");
    return s;
}

/* The raw text of member "data" of the object starting at p (NULL when it
 * is not there written plainly as "data", e.g. with escapes in the key). */
static const char *raw_data_member(const char *p, const char *end, size_t *len)
{
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return NULL;
    p++;
    for (;;) {
        const char *key, *kend, *v, *vend;
        p = skip_ws(p, end);
        if (p >= end || *p != '"')
            return NULL;
        key = p;
        kend = string_end(p, end);
        p = skip_ws(kend, end);
        if (p >= end || *p != ':')
            return NULL;
        v = skip_ws(p + 1, end);
        vend = value_end(v, end);
        if (kend - key == 6 && memcmp(key, "\"data\"", 6) == 0) {
            *len = (size_t)(vend - v);
            return v;
        }
        p = skip_ws(vend, end);
        if (p >= end || *p != ',')
            return NULL;
        p++;
    }
}

/* Adds the data of one batch item; a refusal is said as "message N: ...".
 * raw, raw_len: the object's own text (for the data member's digits), or NULL */
static enum cbx_err add_json_data(struct cbx_pub_batch *b, const cJSON *queue, const cJSON *data, size_t nth,
                                  const char *raw, size_t raw_len, const struct cbx_pub_limits *lim, char *detail,
                                  size_t detail_len)
{
    char why[400];
    enum cbx_err rc;

    if (cJSON_IsString(data)) {
        rc = cbx_pub_batch_add(b, queue->valuestring, strlen(queue->valuestring), data->valuestring,
                               strlen(data->valuestring), false, lim, why, sizeof why);
    } else {
        size_t dlen = 0, slen = 0;
        const char *d = raw ? raw_data_member(raw, raw + raw_len, &dlen) : NULL;
        char *s = d ? minify(d, dlen, &slen) : cJSON_PrintUnformatted(data);
        if (s == NULL)
            return CBX_ERR_NOMEM;
        if (d == NULL)
            slen = strlen(s);
        rc = cbx_pub_batch_add(b, queue->valuestring, strlen(queue->valuestring), s, slen, true, lim, why,
                               sizeof why);
        free(s);
    }
    if (rc != CBX_OK && rc != CBX_ERR_NOMEM)
        snprintf(detail, detail_len, "message %zu: %s", nth, why);
    return rc;
}

/* nth: the item's place in the batch, counting from 1 as every error text does */
static enum cbx_err add_json_object(struct cbx_pub_batch *b, const cJSON *obj, size_t nth, const char *raw,
                                    size_t raw_len, const struct cbx_pub_limits *lim, char *detail,
                                    size_t detail_len)
{
    const cJSON *queue = NULL, *data = NULL, *m;

    if (!cJSON_IsObject(obj)) {
        snprintf(detail, detail_len, "message %zu: expected an object {\"queue\":...,\"data\":...}", nth);
        return CBX_ERR_INVALID;
    }
    cJSON_ArrayForEach(m, obj) {
        if (strcmp(m->string, "queue") == 0 && queue == NULL)
            queue = m;
        else if (strcmp(m->string, "data") == 0 && data == NULL)
            data = m;
        else {
            snprintf(detail, detail_len, "message %zu: unexpected member \"%.64s\"", nth, m->string);
            return CBX_ERR_INVALID;
        }
    }
    if (!cJSON_IsString(queue)) {
        snprintf(detail, detail_len, "message %zu: \"queue\" must be a string", nth);
        return CBX_ERR_INVALID;
    }
    if (data == NULL) {
        snprintf(detail, detail_len, "message %zu: \"data\" is missing", nth);
        return CBX_ERR_INVALID;
    }
    return add_json_data(b, queue, data, nth, raw, raw_len, lim, detail, detail_len);
}

enum cbx_err cbx_pub_parse_json(const char *body, size_t len, const struct cbx_pub_limits *lim,
                                struct cbx_pub_batch *out, char *detail, size_t detail_len)
{
    enum cbx_err rc = CBX_OK;
    cJSON *root = parse_one(body, len, detail, detail_len);
    size_t n = 0;

    if (root == NULL)
        return CBX_ERR_INVALID;
    if (cJSON_IsArray(root)) {
        const cJSON *el;
        const char *p = skip_ws(body, body + len) + 1, *end = body + len; /* after the '[' */
        cJSON_ArrayForEach(el, root) {
            const char *start = skip_ws(p, end), *stop = value_end(start, end);
            rc = add_json_object(out, el, ++n, start, (size_t)(stop - start), lim, detail, detail_len);
            if (rc != CBX_OK)
                goto out;
            p = skip_ws(stop, end) + 1; /* after the ',' */
        }
        if (n == 0) {
            snprintf(detail, detail_len, "empty batch: no messages");
            rc = CBX_ERR_INVALID;
        }
    } else {
        rc = add_json_object(out, root, 1, body, len, lim, detail, detail_len);
    }
out:
    cJSON_Delete(root);
    if (rc != CBX_OK)
        cbx_pub_batch_free(out);
    return rc;
}
