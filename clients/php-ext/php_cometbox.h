/* The cometbox PHP extension: cometbox_publish*() functions, cometbox_token()
 * and the Cometbox\Exception class, speaking docs/PROTOCOL.md over plain sockets.
 * Declarations shared by its source files; not a public C API. */

#ifndef PHP_COMETBOX_H
#define PHP_COMETBOX_H

#include "php.h"
#include "zend_smart_str.h"

#include <sys/types.h>

#define PHP_COMETBOX_VERSION "0.1.0"

extern zend_module_entry cometbox_module_entry;
#define phpext_cometbox_ptr &cometbox_module_entry

ZEND_BEGIN_MODULE_GLOBALS(cometbox)
	char *url;      /* cometbox.url; owned by the ini machinery */
	double timeout; /* cometbox.timeout, seconds, > 0 */
	char *subscribe_secret; /* cometbox.subscribe_secret; owned by the ini machinery, may be NULL */
	/* The kept-alive connection (cometbox_http.c): socket or -1, the
	 * "host port" it goes to (persistent memory), the pid that opened it. */
	int conn_fd;
	char *conn_key;
	pid_t conn_pid;
ZEND_END_MODULE_GLOBALS(cometbox)

ZEND_EXTERN_MODULE_GLOBALS(cometbox)
#define COMETBOX_G(v) ZEND_MODULE_GLOBALS_ACCESSOR(cometbox, v)

#if defined(ZTS) && defined(COMPILE_DL_COMETBOX)
ZEND_TSRMLS_CACHE_EXTERN()
#endif

/* Cometbox\Exception; set in MINIT. */
extern zend_class_entry *cbx_exception_ce;

#define CBX_INVALID_ARGUMENT "invalid_argument"
#define CBX_CONNECTION_FAILED "connection_failed"
#define CBX_TIMEOUT "timeout"
#define CBX_BAD_RESPONSE "bad_response"
#define CBX_HTTP_ERROR "http_error"

/* Largest answer body accepted, as in the class (Transport::MAX_ANSWER_BYTES). */
#define CBX_MAX_ANSWER_BYTES (4 * 1024 * 1024)

/* Throws Cometbox\Exception with these fields (message copied, not kept). */
void cbx_throw(zend_long status, const char *code, const char *detail, const char *message);

/* Throws Cometbox\Exception (invalid_argument, status 0), detail formatted
 * from fmt and message "cometbox: " + detail. */
void cbx_throw_invalid(const char *fmt, ...) ZEND_ATTRIBUTE_FORMAT(printf, 1, 2);

#endif
