/* Checks of what a caller publishes and the XML batch built from it; the
 * C twin of clients/php/src/Internal/Encoder.php, with the same error texts.
 * Not for HTTP: see cometbox_http.h. */

#ifndef COMETBOX_ENCODE_H
#define COMETBOX_ENCODE_H

#include "php_cometbox.h"

/* A batch holds 1 to this many messages (PROTOCOL.md). */
#define CBX_MAX_BATCH 10000

/* Each cbx_* check below returns SUCCESS, or throws invalid_argument and
 * returns FAILURE. `where` prefixes the detail: "" for a single publish,
 * "message N: " inside a batch. */

zend_result cbx_check_queue(const char *queue, size_t len, const char *where);

/* Valid UTF-8 without characters XML 1.0 cannot carry. */
zend_result cbx_check_text(const char *data, size_t len, const char *where);

/* Appends the JSON text of value (json_encode() with the class's flags) to
 * out. Also FAILURE, without a cometbox exception, when user code
 * (JsonSerializable) threw. */
zend_result cbx_encode_json(smart_str *out, zval *value, const char *where);

/* Appends <message queue="Q" [type="json"]>escaped text</message>. */
void cbx_xml_element(smart_str *doc, const char *queue, size_t qlen,
	const char *text, size_t tlen, bool json);

/* Checks a cometbox_publish_many() argument and appends the whole XML
 * document to doc. */
zend_result cbx_xml_batch(smart_str *doc, HashTable *messages);

/* Appends s quoted for an error message, as Encoder::quote() does. */
void cbx_quote(smart_str *out, const char *s, size_t len);

/* Throws invalid_argument whose detail is where + what + get_debug_type(z). */
void cbx_throw_typed(const char *where, const char *what, zval *z);

#endif
