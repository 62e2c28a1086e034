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

    if (!cbx_qname_valid(queue, queue_len)) {
        snprintf(detail, detail_len, "bad queue name \"%.*s\": use 1-%d letters, digits or ._:@-",
                 (int)(queue_len > 140 ? 140 : queue_len), queue, CBX_QNAME_MAX);
        return CBX_ERR_INVALID;
    }
    if (len > lim->max_message_bytes) {
        snprintf(detail, detail_len, "message for \"%s\" has %zu bytes, more than max-message-bytes (%zu)",
                 queue_len <= CBX_QNAME_MAX ? queue : "?", len, lim->max_message_bytes);
        return CBX_ERR_TOO_LARGE;
    }
    if (!is_json && !cbx_utf8_valid(data, len)) {
        snprintf(detail, detail_len, "message for \"%.*s\" is not valid UTF-8 text", (int)queue_len, queue);
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

/* Line and column (1-based) of offset off in text. */
static void position(const char *text, size_t off, unsigned *line, unsigned *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* Offset of a \u0000 escape inside a JSON string, or -1. cJSON keeps
 * strings NUL-terminated and would cut them there, so they are refused
 * rather than shortened (XML cannot carry a NUL either). */
static long nul_escape_at(const char *text, size_t len)
{
    bool in_string = false;

    for (size_t i = 0; i < len; i++) {
        if (text[i] == '"') {
            in_string = !in_string;
        } else if (in_string && text[i] == '\\' && i + 1 < len) {
            if (text[i + 1] == 'u' && i + 5 < len && memcmp(text + i + 2, "0000", 4) == 0)
                return (long)i;
            i++; /* skip the escaped character, so \" does not end the string */
        }
    }
    return -1;
}

/* Parses exactly one JSON value from text[0..len); NULL plus a reason. */
static cJSON *parse_one(const char *text, size_t len, char *detail, size_t detail_len)
{
    const char *end = NULL;
    cJSON *v;
    unsigned line, col;
    long nul = nul_escape_at(text, len);

    if (nul >= 0) {
        position(text, (size_t)nul, &line, &col);
        snprintf(detail, detail_len, "line %u, column %u: \\u0000 is not allowed in a string", line, col);
        return NULL;
    }
    v = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (v == NULL) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = (at != NULL && at >= text && at <= text + len) ? (size_t)(at - text) : 0;
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

char *cbx_json_compact(const char *text, size_t len, size_t *out_len, char *detail, size_t detail_len)
{
    cJSON *v = parse_one(text, len, detail, detail_len);
    char *s;

    if (v == NULL)
        return NULL;
    s = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    if (s == NULL) {
        snprintf(detail, detail_len, "out of memory");
        return NULL;
    }
    *out_len = strlen(s);
    return s;
}

static enum cbx_err add_json_object(struct cbx_pub_batch *b, const cJSON *obj, size_t index,
                                    const struct cbx_pub_limits *lim, char *detail, size_t detail_len)
{
    const cJSON *queue = NULL, *data = NULL, *m;
    enum cbx_err rc;

    if (!cJSON_IsObject(obj)) {
        snprintf(detail, detail_len, "message %zu: expected an object {\"queue\":...,\"data\":...}", index + 1);
        return CBX_ERR_INVALID;
    }
    cJSON_ArrayForEach(m, obj) {
        if (strcmp(m->string, "queue") == 0 && queue == NULL)
            queue = m;
        else if (strcmp(m->string, "data") == 0 && data == NULL)
            data = m;
        else {
            snprintf(detail, detail_len, "message %zu: unexpected member \"%.64s\"", index + 1, m->string);
            return CBX_ERR_INVALID;
        }
    }
    if (!cJSON_IsString(queue)) {
        snprintf(detail, detail_len, "message %zu: \"queue\" must be a string", index + 1);
        return CBX_ERR_INVALID;
    }
    if (data == NULL) {
        snprintf(detail, detail_len, "message %zu: \"data\" is missing", index + 1);
        return CBX_ERR_INVALID;
    }
    if (cJSON_IsString(data)) {
        rc = cbx_pub_batch_add(b, queue->valuestring, strlen(queue->valuestring), data->valuestring,
                               strlen(data->valuestring), false, lim, detail, detail_len);
    } else {
        char *s = cJSON_PrintUnformatted(data);
        if (s == NULL)
            return CBX_ERR_NOMEM;
        rc = cbx_pub_batch_add(b, queue->valuestring, strlen(queue->valuestring), s, strlen(s), true,
                               lim, detail, detail_len);
        free(s);
    }
    return rc;
}

enum cbx_err cbx_pub_parse_json(const char *body, size_t len, const struct cbx_pub_limits *lim,
                                struct cbx_pub_batch *out, char *detail, size_t detail_len)
{
    enum cbx_err rc = CBX_OK;
    cJSON *root = parse_one(body, len, detail, detail_len);
    size_t i = 0;

    if (root == NULL)
        return CBX_ERR_INVALID;
    if (cJSON_IsArray(root)) {
        const cJSON *el;
        cJSON_ArrayForEach(el, root) {
            rc = add_json_object(out, el, i++, lim, detail, detail_len);
            if (rc != CBX_OK)
                goto out;
        }
        if (i == 0) {
            snprintf(detail, detail_len, "empty batch: no messages");
            rc = CBX_ERR_INVALID;
        }
    } else {
        rc = add_json_object(out, root, 0, lim, detail, detail_len);
    }
out:
    cJSON_Delete(root);
    if (rc != CBX_OK)
        cbx_pub_batch_free(out);
    return rc;
}
