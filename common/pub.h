/* pub.h - reading publish bodies (XML and JSON, docs/PROTOCOL.md "Publish
 * port") into a batch of messages to queue. Untrusted input: every parser
 * here bounds sizes and depth and never trusts a length it did not count.
 * Not for queueing (qmap.h) or for encoding what subscribers get (msg.h). */
#ifndef CBX_PUB_H
#define CBX_PUB_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "qname.h"

#define CBX_PUB_BATCH_MAX 10000
#define CBX_XML_DEPTH_MAX 8

struct cbx_pub_item {
    char queue[CBX_QNAME_MAX + 1];
    size_t queue_len;
    char *data;   /* owned; text, or one compact JSON value when is_json */
    size_t len;
    bool is_json;
};

struct cbx_pub_batch {
    struct cbx_pub_item *items; /* owned */
    size_t n, cap;
};

struct cbx_pub_limits {
    size_t max_message_bytes;
};

/* Parse results: CBX_OK; CBX_ERR_INVALID (400) or CBX_ERR_TOO_LARGE (413)
 * with a human reason in detail; CBX_ERR_NOMEM. On error the batch is left
 * empty. A reason about a spot in the text starts "line L, column C: "
 * (from 1, columns in characters); one about a batch item (and every size
 * reason) starts "message N: " (from 1). JSON text, in a JSON body or in
 * <message type="json">, must be valid UTF-8 with no raw control character
 * inside a string (cbx_json_text_check). */
enum cbx_err cbx_pub_parse_xml(const char *body, size_t len, const struct cbx_pub_limits *lim,
                               struct cbx_pub_batch *out, char *detail, size_t detail_len);
enum cbx_err cbx_pub_parse_json(const char *body, size_t len, const struct cbx_pub_limits *lim,
                                struct cbx_pub_batch *out, char *detail, size_t detail_len);

/* Adds one item, copying queue and data; checks the name, the size limit,
 * UTF-8 of text data, and cbx_json_text_check() of JSON data. Used by the
 * parsers and by the admin socket. detail has no position or item number:
 * the caller adds where. */
enum cbx_err cbx_pub_batch_add(struct cbx_pub_batch *b, const char *queue, size_t queue_len,
                               const char *data, size_t len, bool is_json,
                               const struct cbx_pub_limits *lim, char *detail, size_t detail_len);

/* Re-encodes JSON text as one compact value (no newlines); NULL plus a
 * reason ("line L, column C: ...") when it is not exactly one JSON value or
 * fails cbx_json_text_check(). Owned; free with free(). */
char *cbx_json_compact(const char *text, size_t len, size_t *out_len, char *detail, size_t detail_len);

/* What a JSON parser may let through but cometbox refuses, so no published
 * byte can break an answer: invalid UTF-8 anywhere, a raw control character
 * (below U+0020) inside a string, a \u0000 escape. CBX_OK, or
 * CBX_ERR_INVALID with "line L, column C: what" (1-based, columns in
 * characters) in detail. Does not check the JSON grammar. */
enum cbx_err cbx_json_text_check(const char *text, size_t len, char *detail, size_t detail_len);

void cbx_pub_batch_free(struct cbx_pub_batch *b);

#endif
