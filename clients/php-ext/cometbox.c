/* The cometbox PHP extension: module start-up, ini settings, the
 * Cometbox\Exception class and the cometbox_publish*() functions, which turn
 * the daemon's answers into ids or exceptions exactly as Cometbox\Client does.
 * Not for encoding (cometbox_encode.c), sockets (cometbox_http.c) or
 * subscriber tokens (cometbox_token.c). */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "php.h"
#include "php_ini.h"
#include "ext/standard/info.h"
#include "ext/json/php_json.h"
#include "zend_exceptions.h"
#include "zend_attributes.h"
#include "ext/spl/spl_exceptions.h"

#include "php_cometbox.h"

#include <unistd.h>
#include "cometbox_encode.h"
#include "cometbox_http.h"
#include "cometbox_arginfo.h"

ZEND_DECLARE_MODULE_GLOBALS(cometbox)

zend_class_entry *cbx_exception_ce;

/* ---- exceptions ----------------------------------------------------------- */

void cbx_throw(zend_long status, const char *code, const char *detail, const char *message)
{
	zval ex;

	object_init_ex(&ex, cbx_exception_ce);
	zend_update_property_string(zend_ce_exception, Z_OBJ(ex), "message", sizeof("message") - 1, message);
	zend_update_property_long(zend_ce_exception, Z_OBJ(ex), "code", sizeof("code") - 1, status);
	zend_update_property_long(cbx_exception_ce, Z_OBJ(ex), "status", sizeof("status") - 1, status);
	zend_update_property_string(cbx_exception_ce, Z_OBJ(ex), "errorCode", sizeof("errorCode") - 1, code);
	zend_update_property_string(cbx_exception_ce, Z_OBJ(ex), "detail", sizeof("detail") - 1, detail);
	zend_throw_exception_object(&ex);
}

void cbx_throw_invalid(const char *fmt, ...)
{
	va_list ap;
	char *detail, *message;

	va_start(ap, fmt);
	vspprintf(&detail, 0, fmt, ap);
	va_end(ap);
	spprintf(&message, 0, "cometbox: %s", detail);
	cbx_throw(0, CBX_INVALID_ARGUMENT, detail, message);
	efree(message);
	efree(detail);
}

ZEND_METHOD(Cometbox_Exception, __construct)
{
	zend_string *message, *code = NULL, *detail = NULL;
	zend_long status = 0;
	zval *previous = NULL;
	zend_object *self = Z_OBJ_P(ZEND_THIS);

	ZEND_PARSE_PARAMETERS_START(1, 5)
		Z_PARAM_STR(message)
		Z_PARAM_OPTIONAL
		Z_PARAM_LONG(status)
		Z_PARAM_STR(code)
		Z_PARAM_STR(detail)
		Z_PARAM_OBJECT_OF_CLASS_OR_NULL(previous, zend_ce_throwable)
	ZEND_PARSE_PARAMETERS_END();

	zend_update_property_str(zend_ce_exception, self, "message", sizeof("message") - 1, message);
	zend_update_property_long(zend_ce_exception, self, "code", sizeof("code") - 1, status);
	if (previous != NULL) {
		zend_update_property(zend_ce_exception, self, "previous", sizeof("previous") - 1, previous);
	}
	zend_update_property_long(cbx_exception_ce, self, "status", sizeof("status") - 1, status);
	if (code != NULL) {
		zend_update_property_str(cbx_exception_ce, self, "errorCode", sizeof("errorCode") - 1, code);
	}
	if (detail != NULL) {
		zend_update_property_str(cbx_exception_ce, self, "detail", sizeof("detail") - 1, detail);
	}
}

static void return_property(zval *return_value, zval *this_ptr, const char *name, size_t len)
{
	zval rv, *prop = zend_read_property(cbx_exception_ce, Z_OBJ_P(this_ptr), name, len, 1, &rv);

	RETURN_COPY_DEREF(prop);
}

ZEND_METHOD(Cometbox_Exception, getStatus)
{
	ZEND_PARSE_PARAMETERS_NONE();
	return_property(return_value, ZEND_THIS, "status", sizeof("status") - 1);
}

ZEND_METHOD(Cometbox_Exception, getErrorCode)
{
	ZEND_PARSE_PARAMETERS_NONE();
	return_property(return_value, ZEND_THIS, "errorCode", sizeof("errorCode") - 1);
}

ZEND_METHOD(Cometbox_Exception, getDetail)
{
	ZEND_PARSE_PARAMETERS_NONE();
	return_property(return_value, ZEND_THIS, "detail", sizeof("detail") - 1);
}

/* ---- settings of one call --------------------------------------------------- */

struct call {
	struct cbx_url url;   /* owned; cbx_url_free() */
	double timeout;       /* seconds */
	const char *secret;   /* borrowed from the options array, or NULL */
};

static void throw_option_type(const char *what, zval *z)
{
	const char *type;

	switch (Z_TYPE_P(z)) {
	case IS_NULL: type = "null"; break;
	case IS_FALSE: case IS_TRUE: type = "bool"; break;
	case IS_LONG: type = "int"; break;
	case IS_DOUBLE: type = "float"; break;
	case IS_STRING: type = "string"; break;
	case IS_ARRAY: type = "array"; break;
	case IS_OBJECT: type = ZSTR_VAL(Z_OBJCE_P(z)->name); break;
	default: type = "resource"; break;
	}
	cbx_throw_invalid("%s%s", what, type);
}

/* Reads the url and options arguments (NULL: the ini defaults). SUCCESS
 * fills c (free c->url); FAILURE has thrown invalid_argument. */
static zend_result call_init(struct call *c, zend_string *url, HashTable *options)
{
	zend_string *key;
	zend_ulong idx;
	zval *val;
	const char *u;

	memset(c, 0, sizeof(*c));
	c->timeout = COMETBOX_G(timeout);
	if (options != NULL) {
		ZEND_HASH_FOREACH_KEY_VAL(options, idx, key, val) {
			ZVAL_DEREF(val);
			if (key != NULL && zend_string_equals_literal(key, "timeout")) {
				double t;
				if (Z_TYPE_P(val) == IS_LONG) {
					t = (double) Z_LVAL_P(val);
				} else if (Z_TYPE_P(val) == IS_DOUBLE) {
					t = Z_DVAL_P(val);
				} else {
					throw_option_type("option \"timeout\" must be a number of seconds, got ", val);
					return FAILURE;
				}
				if (!(t > 0) || t > 86400) {
					cbx_throw_invalid("option \"timeout\" must be more than 0 and at most 86400 seconds");
					return FAILURE;
				}
				c->timeout = t;
			} else if (key != NULL && zend_string_equals_literal(key, "secret")) {
				if (Z_TYPE_P(val) == IS_NULL) {
					c->secret = NULL;
				} else if (Z_TYPE_P(val) != IS_STRING) {
					throw_option_type("option \"secret\" must be a string or null, got ", val);
					return FAILURE;
				} else if (Z_STRLEN_P(val) == 0) {
					c->secret = NULL;
				} else {
					for (size_t i = 0; i < Z_STRLEN_P(val); i++) {
						unsigned char ch = (unsigned char) Z_STRVAL_P(val)[i];
						if (ch < 0x21 || ch > 0x7E) {
							cbx_throw_invalid("option \"secret\" must be printable ASCII without spaces");
							return FAILURE;
						}
					}
					c->secret = Z_STRVAL_P(val);
				}
			} else {
				smart_str q = {0};
				if (key != NULL) {
					cbx_quote(&q, ZSTR_VAL(key), ZSTR_LEN(key));
				} else {
					char num[32];
					int n = snprintf(num, sizeof(num), ZEND_LONG_FMT, (zend_long) idx);
					cbx_quote(&q, num, (size_t) n);
				}
				smart_str_0(&q);
				cbx_throw_invalid("unknown option %s (allowed: \"secret\", \"timeout\")", ZSTR_VAL(q.s));
				smart_str_free(&q);
				return FAILURE;
			}
		} ZEND_HASH_FOREACH_END();
	}
	u = url != NULL ? ZSTR_VAL(url) : (COMETBOX_G(url) ? COMETBOX_G(url) : "");
	return cbx_url_parse(&c->url, u, url != NULL ? ZSTR_LEN(url) : strlen(u));
}

/* ---- answers -------------------------------------------------------------- */

/* At most 200 bytes of a body, trimmed, non-printable bytes as '?'
 * (Client::snippet()). */
static void snippet(smart_str *out, const char *s, size_t len)
{
	size_t start = 0, end = len > 200 ? 200 : len;

	/* PHP's trim(): space, \t, \n, \r, \v, NUL. */
#define CBX_TRIM(ch) ((ch) == ' ' || (ch) == '\t' || (ch) == '\n' || (ch) == '\r' || (ch) == '\v' || (ch) == '\0')
	while (start < end && CBX_TRIM(s[start])) {
		start++;
	}
	while (end > start && CBX_TRIM(s[end - 1])) {
		end--;
	}
#undef CBX_TRIM
	for (size_t i = start; i < end; i++) {
		unsigned char c = (unsigned char) s[i];
		smart_str_appendc(out, c >= 0x20 && c < 0x7F ? (char) c : '?');
	}
	smart_str_0(out);
	if (out->s == NULL) {
		smart_str_appendl(out, "", 0);
		smart_str_0(out);
	}
}

static void throw_bad_answer(const char *endpoint, int status, const char *why)
{
	char *message;

	spprintf(&message, 0, "cometbox: unexpected answer from %s: %s", endpoint, why);
	cbx_throw(status, CBX_BAD_RESPONSE, why, message);
	efree(message);
}

/* Posts doc (n messages) and, on 200, puts the ids into ids (an array zval
 * the caller initialised). FAILURE has thrown. */
static zend_result post_batch(struct call *c, smart_str *doc, uint32_t n, zval *ids)
{
	smart_str answer = {0};
	int status = 0;
	zval decoded;
	char *endpoint;
	zend_result rc = FAILURE;
	const char *text;
	size_t len;

	ZVAL_UNDEF(&decoded);
	spprintf(&endpoint, 0, "%s/publish", c->url.base);
	smart_str_0(doc);
	if (cbx_http_post(&c->url, c->secret, c->timeout, ZSTR_VAL(doc->s), ZSTR_LEN(doc->s), &status, &answer) == FAILURE) {
		goto out;
	}
	smart_str_0(&answer);
	text = answer.s ? ZSTR_VAL(answer.s) : "";
	len = answer.s ? ZSTR_LEN(answer.s) : 0;
	if (php_json_decode_ex(&decoded, text, len, PHP_JSON_OBJECT_AS_ARRAY, 16) == FAILURE) {
		ZVAL_UNDEF(&decoded);
	}

	if (status == 200) {
		zval *list, *id;
		if (Z_TYPE(decoded) != IS_ARRAY) {
			throw_bad_answer(endpoint, 200, "body is not JSON");
			goto out;
		}
		list = zend_hash_str_find(Z_ARRVAL(decoded), "ids", sizeof("ids") - 1);
		if (list == NULL || Z_TYPE_P(list) != IS_ARRAY || zend_hash_num_elements(Z_ARRVAL_P(list)) != n
			|| !zend_array_is_list(Z_ARRVAL_P(list))) {
			char why[64];
			snprintf(why, sizeof(why), "expected {\"ids\":[...]} with %u id%s", n, n == 1 ? "" : "s");
			throw_bad_answer(endpoint, 200, why);
			goto out;
		}
		ZEND_HASH_FOREACH_VAL(Z_ARRVAL_P(list), id) {
			if (Z_TYPE_P(id) != IS_LONG || Z_LVAL_P(id) <= 0) {
				throw_bad_answer(endpoint, 200, "ids must be positive integers");
				goto out;
			}
		} ZEND_HASH_FOREACH_END();
		ZEND_HASH_FOREACH_VAL(Z_ARRVAL_P(list), id) {
			add_next_index_long(ids, Z_LVAL_P(id));
		} ZEND_HASH_FOREACH_END();
		rc = SUCCESS;
		goto out;
	}

	{
		zval *code = Z_TYPE(decoded) == IS_ARRAY
			? zend_hash_str_find(Z_ARRVAL(decoded), "error", sizeof("error") - 1) : NULL;
		char *message;
		if (code != NULL && Z_TYPE_P(code) == IS_STRING) {
			zval *detail = zend_hash_str_find(Z_ARRVAL(decoded), "detail", sizeof("detail") - 1);
			const char *d = detail != NULL && Z_TYPE_P(detail) == IS_STRING ? Z_STRVAL_P(detail) : "";
			spprintf(&message, 0, "cometbox: HTTP %d %s: %s", status, Z_STRVAL_P(code), d);
			cbx_throw(status, Z_STRVAL_P(code), d, message);
		} else {
			smart_str s = {0};
			snippet(&s, text, len);
			spprintf(&message, 0, "cometbox: HTTP %d from %s: %s", status, endpoint, ZSTR_VAL(s.s));
			cbx_throw(status, CBX_HTTP_ERROR, ZSTR_VAL(s.s), message);
			smart_str_free(&s);
		}
		efree(message);
	}

out:
	zval_ptr_dtor(&decoded);
	smart_str_free(&answer);
	efree(endpoint);
	return rc;
}

/* ---- the functions ------------------------------------------------------------ */

/* Publishes one element (queue, text, json) and returns its id. */
static void publish_one(zval *return_value, zend_string *queue, const char *text, size_t tlen, bool json, struct call *c)
{
	smart_str doc = {0};
	zval ids;

	array_init(&ids);
	smart_str_appendl(&doc, "<messages>", sizeof("<messages>") - 1);
	cbx_xml_element(&doc, ZSTR_VAL(queue), ZSTR_LEN(queue), text, tlen, json);
	smart_str_appendl(&doc, "</messages>", sizeof("</messages>") - 1);
	if (post_batch(c, &doc, 1, &ids) == SUCCESS) {
		RETVAL_LONG(Z_LVAL_P(zend_hash_index_find(Z_ARRVAL(ids), 0)));
	}
	zval_ptr_dtor(&ids);
	smart_str_free(&doc);
}

PHP_FUNCTION(cometbox_publish)
{
	zend_string *queue, *data, *url = NULL;
	HashTable *options = NULL;
	struct call c;

	ZEND_PARSE_PARAMETERS_START(2, 4)
		Z_PARAM_STR(queue)
		Z_PARAM_STR(data)
		Z_PARAM_OPTIONAL
		Z_PARAM_STR_OR_NULL(url)
		Z_PARAM_ARRAY_HT_OR_NULL(options)
	ZEND_PARSE_PARAMETERS_END();

	if (call_init(&c, url, options) == FAILURE) {
		cbx_url_free(&c.url);
		RETURN_THROWS();
	}
	if (cbx_check_queue(ZSTR_VAL(queue), ZSTR_LEN(queue), "") == SUCCESS
		&& cbx_check_text(ZSTR_VAL(data), ZSTR_LEN(data), "") == SUCCESS) {
		publish_one(return_value, queue, ZSTR_VAL(data), ZSTR_LEN(data), false, &c);
	}
	cbx_url_free(&c.url);
}

PHP_FUNCTION(cometbox_publish_json)
{
	zend_string *queue, *url = NULL;
	zval *value;
	HashTable *options = NULL;
	struct call c;
	smart_str json = {0};

	ZEND_PARSE_PARAMETERS_START(2, 4)
		Z_PARAM_STR(queue)
		Z_PARAM_ZVAL(value)
		Z_PARAM_OPTIONAL
		Z_PARAM_STR_OR_NULL(url)
		Z_PARAM_ARRAY_HT_OR_NULL(options)
	ZEND_PARSE_PARAMETERS_END();

	if (call_init(&c, url, options) == FAILURE) {
		cbx_url_free(&c.url);
		RETURN_THROWS();
	}
	if (cbx_check_queue(ZSTR_VAL(queue), ZSTR_LEN(queue), "") == SUCCESS
		&& cbx_encode_json(&json, value, "") == SUCCESS) {
		smart_str_0(&json);
		publish_one(return_value, queue, ZSTR_VAL(json.s), ZSTR_LEN(json.s), true, &c);
	}
	smart_str_free(&json);
	cbx_url_free(&c.url);
}

PHP_FUNCTION(cometbox_publish_many)
{
	HashTable *messages, *options = NULL;
	zend_string *url = NULL;
	struct call c;
	smart_str doc = {0};

	ZEND_PARSE_PARAMETERS_START(1, 3)
		Z_PARAM_ARRAY_HT(messages)
		Z_PARAM_OPTIONAL
		Z_PARAM_STR_OR_NULL(url)
		Z_PARAM_ARRAY_HT_OR_NULL(options)
	ZEND_PARSE_PARAMETERS_END();

	if (call_init(&c, url, options) == FAILURE) {
		cbx_url_free(&c.url);
		RETURN_THROWS();
	}
	if (cbx_xml_batch(&doc, messages) == SUCCESS) {
		zval ids;
		array_init(&ids);
		if (post_batch(&c, &doc, zend_hash_num_elements(messages), &ids) == SUCCESS) {
			RETVAL_COPY_VALUE(&ids);
		} else {
			zval_ptr_dtor(&ids);
		}
	}
	smart_str_free(&doc);
	cbx_url_free(&c.url);
}

/* ---- module ------------------------------------------------------------------- */

static ZEND_INI_MH(OnUpdateTimeout)
{
	double t = zend_strtod(ZSTR_VAL(new_value), NULL);

	if (!(t > 0) || t > 86400) {
		return FAILURE;
	}
	COMETBOX_G(timeout) = t;
	return SUCCESS;
}

/* phpinfo() pages are often left readable: show whether the secret is
 * set, never the secret. */
static PHP_INI_DISP(display_secret)
{
	zend_string *value = type == ZEND_INI_DISPLAY_ORIG && ini_entry->modified
		? ini_entry->orig_value : ini_entry->value;

	php_printf("%s", value != NULL && ZSTR_LEN(value) > 0 ? "(set, hidden)" : "no value");
}

PHP_INI_BEGIN()
	STD_PHP_INI_ENTRY("cometbox.url", "http://127.0.0.1:1802", PHP_INI_ALL, OnUpdateString,
		url, zend_cometbox_globals, cometbox_globals)
	PHP_INI_ENTRY("cometbox.timeout", "5", PHP_INI_ALL, OnUpdateTimeout)
	STD_PHP_INI_ENTRY_EX("cometbox.subscribe_secret", "", PHP_INI_ALL, OnUpdateString,
		subscribe_secret, zend_cometbox_globals, cometbox_globals, display_secret)
PHP_INI_END()

static PHP_GINIT_FUNCTION(cometbox)
{
#if defined(COMPILE_DL_COMETBOX) && defined(ZTS)
	ZEND_TSRMLS_CACHE_UPDATE();
#endif
	cometbox_globals->url = NULL;
	cometbox_globals->timeout = 5.0;
	cometbox_globals->subscribe_secret = NULL;
	cometbox_globals->conn_fd = -1;
	cometbox_globals->conn_key = NULL;
	cometbox_globals->conn_pid = 0;
}

static PHP_GSHUTDOWN_FUNCTION(cometbox)
{
	if (cometbox_globals->conn_fd >= 0) {
		close(cometbox_globals->conn_fd);
	}
	if (cometbox_globals->conn_key != NULL) {
		pefree(cometbox_globals->conn_key, 1);
	}
}

static PHP_MINIT_FUNCTION(cometbox)
{
	REGISTER_INI_ENTRIES();
	register_cometbox_symbols(module_number); /* #[\SensitiveParameter] of cometbox_token() */
	cbx_exception_ce = register_class_Cometbox_Exception(spl_ce_RuntimeException);
	return SUCCESS;
}

static PHP_MSHUTDOWN_FUNCTION(cometbox)
{
	UNREGISTER_INI_ENTRIES();
	return SUCCESS;
}

static PHP_MINFO_FUNCTION(cometbox)
{
	php_info_print_table_start();
	php_info_print_table_row(2, "cometbox publisher", "enabled");
	php_info_print_table_row(2, "version", PHP_COMETBOX_VERSION);
	php_info_print_table_row(2, "transport", "HTTP/1.1 over plain sockets (http:// only)");
	php_info_print_table_end();
	DISPLAY_INI_ENTRIES();
}

static const zend_module_dep cometbox_deps[] = {
	ZEND_MOD_REQUIRED("json")
	ZEND_MOD_REQUIRED("spl")
	ZEND_MOD_REQUIRED("hash")
	ZEND_MOD_REQUIRED("date")
	ZEND_MOD_END
};

zend_module_entry cometbox_module_entry = {
	STANDARD_MODULE_HEADER_EX,
	NULL,
	cometbox_deps,
	"cometbox",
	ext_functions,
	PHP_MINIT(cometbox),
	PHP_MSHUTDOWN(cometbox),
	NULL,
	NULL,
	PHP_MINFO(cometbox),
	PHP_COMETBOX_VERSION,
	PHP_MODULE_GLOBALS(cometbox),
	PHP_GINIT(cometbox),
	PHP_GSHUTDOWN(cometbox),
	NULL,
	STANDARD_MODULE_PROPERTIES_EX
};

#ifdef COMPILE_DL_COMETBOX
#ifdef ZTS
ZEND_TSRMLS_CACHE_DEFINE()
#endif
ZEND_GET_MODULE(cometbox)
#endif
