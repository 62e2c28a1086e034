/* Checks of queue names, message text and batches, and the XML batch
 * document of docs/PROTOCOL.md. Mirrors clients/php/src/Internal/Encoder.php
 * word for word in its error texts; change both together. No I/O here. */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "cometbox_encode.h"
#include "ext/json/php_json.h"

/* The class's Encoder::JSON_FLAGS: JSON_UNESCAPED_SLASHES | JSON_PRESERVE_ZERO_FRACTION.
 * Without JSON_UNESCAPED_UNICODE the output is ASCII, so always XML-safe. */
#define CBX_JSON_FLAGS (PHP_JSON_UNESCAPED_SLASHES | PHP_JSON_PRESERVE_ZERO_FRACTION)
#define CBX_JSON_DEPTH 512

static bool queue_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		|| c == '.' || c == '_' || c == ':' || c == '@' || c == '-';
}

void cbx_quote(smart_str *out, const char *s, size_t len)
{
	size_t shown = len > 64 ? 64 : len;
	static const char hex[] = "0123456789ABCDEF";

	smart_str_appendc(out, '"');
	for (size_t i = 0; i < shown; i++) {
		unsigned char c = (unsigned char) s[i];
		if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
			smart_str_appendc(out, (char) c);
		} else {
			smart_str_appendl(out, "\\x", 2);
			smart_str_appendc(out, hex[c >> 4]);
			smart_str_appendc(out, hex[c & 15]);
		}
	}
	smart_str_appendc(out, '"');
	if (len > 64) {
		smart_str_appendl(out, "...", 3);
	}
}

/* Throws invalid_argument whose detail is where + what + quoted(s) + after. */
static void throw_quoted(const char *where, const char *what, const char *s, size_t len, const char *after)
{
	smart_str q = {0};

	cbx_quote(&q, s, len);
	smart_str_0(&q);
	cbx_throw_invalid("%s%s%s%s", where, what, ZSTR_VAL(q.s), after);
	smart_str_free(&q);
}

zend_result cbx_check_queue(const char *queue, size_t len, const char *where)
{
	bool ok = len >= 1 && len <= 128;

	for (size_t i = 0; ok && i < len; i++) {
		ok = queue_char((unsigned char) queue[i]);
	}
	if (!ok) {
		throw_quoted(where, "invalid queue name ", queue, len,
			": a queue name is 1 to 128 ASCII letters, digits and . _ : @ -");
		return FAILURE;
	}
	return SUCCESS;
}

/* Decodes the UTF-8 sequence at s[i]. Returns its length and sets *cp, or
 * returns 0 when it is not valid (overlong, surrogate, > U+10FFFF, cut). */
static size_t utf8_next(const unsigned char *s, size_t len, size_t i, uint32_t *cp)
{
	unsigned char c = s[i];
	size_t n;
	unsigned char lo = 0x80, hi = 0xBF;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		n = 1;
		*cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 2;
		*cp = c & 0x0F;
		if (c == 0xE0) {
			lo = 0xA0;
		} else if (c == 0xED) {
			hi = 0x9F;
		}
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 3;
		*cp = c & 0x07;
		if (c == 0xF0) {
			lo = 0x90;
		} else if (c == 0xF4) {
			hi = 0x8F;
		}
	} else {
		return 0;
	}
	if (len - i <= n) {
		return 0;
	}
	for (size_t k = 1; k <= n; k++) {
		unsigned char d = s[i + k];
		if (k == 1 ? (d < lo || d > hi) : (d < 0x80 || d > 0xBF)) {
			return 0;
		}
		*cp = (*cp << 6) | (d & 0x3F);
	}
	return n + 1;
}

static bool xml_forbidden(uint32_t cp)
{
	return (cp < 0x20 && cp != 0x09 && cp != 0x0A && cp != 0x0D) || cp == 0xFFFE || cp == 0xFFFF;
}

zend_result cbx_check_text(const char *data, size_t len, const char *where)
{
	const unsigned char *s = (const unsigned char *) data;
	uint32_t cp;
	size_t i, n;

	/* Validity of the whole string first, as the class does with preg_match('//u'). */
	for (i = 0; i < len; i += n) {
		n = utf8_next(s, len, i, &cp);
		if (n == 0) {
			cbx_throw_invalid("%sdata is not valid UTF-8 (first bad byte at offset %zu)", where, i);
			return FAILURE;
		}
	}
	for (i = 0; i < len; i += n) {
		n = utf8_next(s, len, i, &cp);
		if (xml_forbidden(cp)) {
			cbx_throw_invalid("%sdata contains U+%04X at byte offset %zu, which XML cannot carry; "
				"publish it as JSON instead", where, (unsigned) cp, i);
			return FAILURE;
		}
	}
	return SUCCESS;
}

/* json_last_error_msg() texts of PHP 8.2 for the errors encoding can hit. */
static const char *json_error_text(php_json_error_code code)
{
	switch (code) {
	case PHP_JSON_ERROR_DEPTH:
		return "Maximum stack depth exceeded";
	case PHP_JSON_ERROR_UTF8:
		return "Malformed UTF-8 characters, possibly incorrectly encoded";
	case PHP_JSON_ERROR_RECURSION:
		return "Recursion detected";
	case PHP_JSON_ERROR_INF_OR_NAN:
		return "Inf and NaN cannot be JSON encoded";
	case PHP_JSON_ERROR_UNSUPPORTED_TYPE:
		return "Type is not supported";
	case PHP_JSON_ERROR_INVALID_PROPERTY_NAME:
		return "The decoded property name is invalid";
	case PHP_JSON_ERROR_UTF16:
		return "Single unpaired UTF-16 surrogate in unicode escape";
	case PHP_JSON_ERROR_NON_BACKED_ENUM:
		return "Non-backed enums have no default serialization";
	default:
		return "Unknown error";
	}
}

zend_result cbx_encode_json(smart_str *out, zval *value, const char *where)
{
	smart_str buf = {0};
	zend_result rc;

	rc = php_json_encode_ex(&buf, value, CBX_JSON_FLAGS, CBX_JSON_DEPTH);
	if (EG(exception)) {
		/* JsonSerializable::jsonSerialize() threw: let that exception through. */
		smart_str_free(&buf);
		return FAILURE;
	}
	if (rc == FAILURE || JSON_G(error_code) != PHP_JSON_ERROR_NONE) {
		smart_str_free(&buf);
		cbx_throw_invalid("%scannot encode data as JSON: %s", where, json_error_text(JSON_G(error_code)));
		return FAILURE;
	}
	if (buf.s) {
		smart_str_append(out, buf.s);
	}
	smart_str_free(&buf);
	return SUCCESS;
}

void cbx_xml_element(smart_str *doc, const char *queue, size_t qlen,
	const char *text, size_t tlen, bool json)
{
	size_t start = 0;

	smart_str_appendl(doc, "<message queue=\"", sizeof("<message queue=\"") - 1);
	smart_str_appendl(doc, queue, qlen);
	if (json) {
		smart_str_appendl(doc, "\" type=\"json\">", sizeof("\" type=\"json\">") - 1);
	} else {
		smart_str_appendl(doc, "\">", 2);
	}
	for (size_t i = 0; i < tlen; i++) {
		const char *rep;
		size_t rlen;
		switch (text[i]) {
		case '&': rep = "&amp;"; rlen = 5; break;
		case '<': rep = "&lt;"; rlen = 4; break;
		case '>': rep = "&gt;"; rlen = 4; break;
		/* A parser turns a raw CR into LF; a character reference survives. */
		case '\r': rep = "&#13;"; rlen = 5; break;
		default: continue;
		}
		smart_str_appendl(doc, text + start, i - start);
		smart_str_appendl(doc, rep, rlen);
		start = i + 1;
	}
	smart_str_appendl(doc, text + start, tlen - start);
	smart_str_appendl(doc, "</message>", sizeof("</message>") - 1);
}

/* get_debug_type() of z, into out. */
static void debug_type(smart_str *out, zval *z)
{
	switch (Z_TYPE_P(z)) {
	case IS_NULL: smart_str_appends(out, "null"); break;
	case IS_FALSE:
	case IS_TRUE: smart_str_appends(out, "bool"); break;
	case IS_LONG: smart_str_appends(out, "int"); break;
	case IS_DOUBLE: smart_str_appends(out, "float"); break;
	case IS_STRING: smart_str_appends(out, "string"); break;
	case IS_ARRAY: smart_str_appends(out, "array"); break;
	case IS_OBJECT: {
		zend_class_entry *ce = Z_OBJCE_P(z);
		if (ce->ce_flags & ZEND_ACC_ANON_CLASS) {
			smart_str_appends(out, ce->parent ? ZSTR_VAL(ce->parent->name) : "class");
			smart_str_appends(out, "@anonymous");
		} else {
			smart_str_append(out, ce->name);
		}
		break;
	}
	case IS_RESOURCE: {
		const char *name = zend_rsrc_list_get_rsrc_type(Z_RES_P(z));
		smart_str_appends(out, "resource (");
		smart_str_appends(out, name ? name : "closed");
		smart_str_appendc(out, ')');
		break;
	}
	default: smart_str_appends(out, "unknown"); break;
	}
}

/* Throws invalid_argument: where + what + get_debug_type(z). */
void cbx_throw_typed(const char *where, const char *what, zval *z)
{
	smart_str t = {0};

	debug_type(&t, z);
	smart_str_0(&t);
	cbx_throw_invalid("%s%s%s", where, what, ZSTR_VAL(t.s));
	smart_str_free(&t);
}

/* Checks entry i (counted from 1, as the daemon's errors count) of a batch
 * and appends its element; Encoder::normalize(). */
static zend_result batch_entry(smart_str *doc, zval *message, uint32_t i)
{
	char where[32];
	zend_string *key;
	zend_ulong idx;
	zval *queue, *data, *json, *unused;
	bool is_json = false;

	snprintf(where, sizeof(where), "message %u: ", i);
	ZVAL_DEREF(message);
	if (Z_TYPE_P(message) != IS_ARRAY) {
		cbx_throw_typed(where, "expected an array with \"queue\" and \"data\", got ", message);
		return FAILURE;
	}
	ZEND_HASH_FOREACH_KEY_VAL(Z_ARRVAL_P(message), idx, key, unused) {
		(void) unused;
		if (key == NULL) {
			char num[32];
			/* PHP prints an integer key as a signed number. */
			int n = snprintf(num, sizeof(num), ZEND_LONG_FMT, (zend_long) idx);
			throw_quoted(where, "unknown key ", num, (size_t) n, " (allowed: \"queue\", \"data\", \"json\")");
			return FAILURE;
		}
		if (!zend_string_equals_literal(key, "queue") && !zend_string_equals_literal(key, "data")
			&& !zend_string_equals_literal(key, "json")) {
			throw_quoted(where, "unknown key ", ZSTR_VAL(key), ZSTR_LEN(key),
				" (allowed: \"queue\", \"data\", \"json\")");
			return FAILURE;
		}
	} ZEND_HASH_FOREACH_END();

	queue = zend_hash_str_find_deref(Z_ARRVAL_P(message), "queue", sizeof("queue") - 1);
	if (queue == NULL) {
		cbx_throw_invalid("%smissing \"queue\"", where);
		return FAILURE;
	}
	data = zend_hash_str_find_deref(Z_ARRVAL_P(message), "data", sizeof("data") - 1);
	if (data == NULL) {
		cbx_throw_invalid("%smissing \"data\"", where);
		return FAILURE;
	}
	json = zend_hash_str_find_deref(Z_ARRVAL_P(message), "json", sizeof("json") - 1);
	/* The class reads $message['json'] ?? false: a null json is "false". */
	if (json != NULL && Z_TYPE_P(json) != IS_NULL) {
		if (Z_TYPE_P(json) != IS_TRUE && Z_TYPE_P(json) != IS_FALSE) {
			cbx_throw_typed(where, "\"json\" must be a bool, got ", json);
			return FAILURE;
		}
		is_json = Z_TYPE_P(json) == IS_TRUE;
	}
	if (Z_TYPE_P(queue) != IS_STRING) {
		cbx_throw_typed(where, "\"queue\" must be a string, got ", queue);
		return FAILURE;
	}
	if (cbx_check_queue(Z_STRVAL_P(queue), Z_STRLEN_P(queue), where) == FAILURE) {
		return FAILURE;
	}
	if (is_json) {
		smart_str text = {0};
		if (cbx_encode_json(&text, data, where) == FAILURE) {
			return FAILURE;
		}
		smart_str_0(&text);
		cbx_xml_element(doc, Z_STRVAL_P(queue), Z_STRLEN_P(queue), ZSTR_VAL(text.s), ZSTR_LEN(text.s), true);
		smart_str_free(&text);
		return SUCCESS;
	}
	if (Z_TYPE_P(data) != IS_STRING) {
		cbx_throw_typed(where, "\"data\" must be a string unless \"json\" is true, got ", data);
		return FAILURE;
	}
	if (cbx_check_text(Z_STRVAL_P(data), Z_STRLEN_P(data), where) == FAILURE) {
		return FAILURE;
	}
	cbx_xml_element(doc, Z_STRVAL_P(queue), Z_STRLEN_P(queue), Z_STRVAL_P(data), Z_STRLEN_P(data), false);
	return SUCCESS;
}

zend_result cbx_xml_batch(smart_str *doc, HashTable *messages)
{
	uint32_t n = zend_hash_num_elements(messages), i = 0;
	zval *message;

	if (n == 0) {
		cbx_throw_invalid("a batch needs at least one message");
		return FAILURE;
	}
	if (n > CBX_MAX_BATCH) {
		cbx_throw_invalid("a batch holds at most %d messages, got %u", CBX_MAX_BATCH, n);
		return FAILURE;
	}
	smart_str_appendl(doc, "<messages>", sizeof("<messages>") - 1);
	ZEND_HASH_FOREACH_VAL(messages, message) {
		if (batch_entry(doc, message, i + 1) == FAILURE) {
			return FAILURE;
		}
		i++;
	} ZEND_HASH_FOREACH_END();
	smart_str_appendl(doc, "</messages>", sizeof("</messages>") - 1);
	return SUCCESS;
}
