/* cometbox_token(): subscriber tokens (docs/SECURITY.md, "Subscribers:
 * subscribe-auth = token"), the C twin of clients/php/src/Internal/Token.php
 * with the same checks and error texts. HMAC-SHA256 through PHP's own hash
 * extension (php_hash_fetch_ops); no hash is written here. No I/O. */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "php.h"
#include "ext/hash/php_hash.h"
#include "ext/date/php_date.h"
#include "ext/standard/base64.h"

#include "php_cometbox.h"
#include "cometbox_encode.h"

/* The limits of Internal\Token: MAX_QUEUES, MIN_SECRET_BYTES, MAX_TTL. */
#define CBX_TOKEN_MAX_QUEUES 16
#define CBX_TOKEN_MIN_SECRET 16
#define CBX_TOKEN_MAX_TTL 31622400

/* HMAC (RFC 2104) of msg under key with the hash ops (SHA-256 here) into
 * digest (ops->digest_size bytes). The construction is the one of PHP's
 * hash_hmac(); every buffer that saw the key is wiped before it is freed. */
static void hmac(const php_hash_ops *ops, const unsigned char *key, size_t klen,
	const unsigned char *msg, size_t mlen, unsigned char *digest)
{
	void *ctx = php_hash_alloc_context(ops);      /* owned; efree() */
	unsigned char *block = ecalloc(1, ops->block_size); /* owned: the padded key */
	unsigned char *inner = emalloc(ops->digest_size);   /* owned */

	if (klen > ops->block_size) {
		/* a long key is replaced by its hash, zero-padded like a short one */
		ops->hash_init(ctx, NULL);
		ops->hash_update(ctx, key, klen);
		ops->hash_final(block, ctx);
	} else {
		memcpy(block, key, klen);
	}
	for (size_t i = 0; i < ops->block_size; i++) {
		block[i] ^= 0x36;
	}
	ops->hash_init(ctx, NULL);
	ops->hash_update(ctx, block, ops->block_size);
	ops->hash_update(ctx, msg, mlen);
	ops->hash_final(inner, ctx);
	for (size_t i = 0; i < ops->block_size; i++) {
		block[i] ^= 0x36 ^ 0x5c;
	}
	ops->hash_init(ctx, NULL);
	ops->hash_update(ctx, block, ops->block_size);
	ops->hash_update(ctx, inner, ops->digest_size);
	ops->hash_final(digest, ctx);

	ZEND_SECURE_ZERO(block, ops->block_size);
	ZEND_SECURE_ZERO(inner, ops->digest_size);
	ZEND_SECURE_ZERO(ctx, ops->context_size);
	efree(inner);
	efree(block);
	efree(ctx);
}

/* Checks the secret: SUCCESS, or invalid_argument thrown. */
static zend_result check_secret(const char *secret, size_t len)
{
	if (len == 0) {
		cbx_throw_invalid("a token needs a subscribe secret (option \"subscribe_secret\", "
			"or ini cometbox.subscribe_secret for the extension)");
		return FAILURE;
	}
	if (len < CBX_TOKEN_MIN_SECRET) {
		cbx_throw_invalid("the subscribe secret must be at least %d bytes, got %zu", CBX_TOKEN_MIN_SECRET, len);
		return FAILURE;
	}
	if (memchr(secret, '\0', len) != NULL) {
		cbx_throw_invalid("the subscribe secret must not contain NUL bytes");
		return FAILURE;
	}
	return SUCCESS;
}

/* Checks the queue list and appends the names joined by "," to out.
 * SUCCESS, or invalid_argument thrown. */
static zend_result join_queues(smart_str *out, HashTable *queues)
{
	uint32_t n = zend_hash_num_elements(queues), i = 0;
	zend_string *seen[CBX_TOKEN_MAX_QUEUES];
	zval *val;

	if (n == 0 || n > CBX_TOKEN_MAX_QUEUES) {
		cbx_throw_invalid("a token covers 1 to %d queues, got %u", CBX_TOKEN_MAX_QUEUES, n);
		return FAILURE;
	}
	ZEND_HASH_FOREACH_VAL(queues, val) {
		char where[32];

		ZVAL_DEREF(val);
		snprintf(where, sizeof(where), "queue %u: ", i + 1);   /* counted from 1 */
		if (Z_TYPE_P(val) != IS_STRING) {
			cbx_throw_typed(where, "expected a string, got ", val);
			return FAILURE;
		}
		if (cbx_check_queue(Z_STRVAL_P(val), Z_STRLEN_P(val), where) == FAILURE) {
			return FAILURE;
		}
		for (uint32_t k = 0; k < i; k++) {
			if (zend_string_equals(seen[k], Z_STR_P(val))) {
				smart_str q = {0};
				cbx_quote(&q, Z_STRVAL_P(val), Z_STRLEN_P(val));
				smart_str_0(&q);
				cbx_throw_invalid("%sduplicate queue name %s", where, ZSTR_VAL(q.s));
				smart_str_free(&q);
				return FAILURE;
			}
		}
		seen[i] = Z_STR_P(val); /* borrowed from the array, which outlives this call */
		if (i > 0) {
			smart_str_appendc(out, ',');
		}
		smart_str_append(out, Z_STR_P(val));
		i++;
	} ZEND_HASH_FOREACH_END();
	return SUCCESS;
}

/* cometbox_token(array $queues, int $ttl = 3600, ?string $secret = null): string
 * $secret null: the ini cometbox.subscribe_secret; "" counts as no secret. */
PHP_FUNCTION(cometbox_token)
{
	HashTable *queues;
	zend_long ttl = 3600;
	zend_string *secret_arg = NULL, *algo = NULL, *sig = NULL;
	const char *secret;
	size_t secret_len;
	const php_hash_ops *ops;
	smart_str list = {0}, msg = {0}, token = {0};
	unsigned char digest[64];
	char expiry[MAX_LENGTH_OF_LONG + 1];
	size_t sig_len;

	ZEND_PARSE_PARAMETERS_START(1, 3)
		Z_PARAM_ARRAY_HT(queues)
		Z_PARAM_OPTIONAL
		Z_PARAM_LONG(ttl)
		Z_PARAM_STR_OR_NULL(secret_arg)
	ZEND_PARSE_PARAMETERS_END();

	if (secret_arg != NULL) {
		secret = ZSTR_VAL(secret_arg);
		secret_len = ZSTR_LEN(secret_arg);
	} else {
		secret = COMETBOX_G(subscribe_secret) ? COMETBOX_G(subscribe_secret) : "";
		secret_len = strlen(secret);
	}
	/* the order of the checks is the class's: secret, queues, ttl */
	if (check_secret(secret, secret_len) == FAILURE || join_queues(&list, queues) == FAILURE) {
		goto out;
	}
	if (ttl < 1 || ttl > CBX_TOKEN_MAX_TTL) {
		cbx_throw_invalid("ttl must be 1 to %d seconds, got " ZEND_LONG_FMT, CBX_TOKEN_MAX_TTL, ttl);
		goto out;
	}
	algo = zend_string_init("sha256", sizeof("sha256") - 1, 0);
	ops = php_hash_fetch_ops(algo);
	if (ops == NULL || ops->digest_size > sizeof(digest)) {
		zend_throw_error(NULL, "cometbox: PHP's hash extension has no sha256");
		goto out;
	}
	/* php_time() is PHP's time(), so the class and the extension agree to the second */
	snprintf(expiry, sizeof(expiry), ZEND_LONG_FMT, (zend_long) php_time() + ttl);
	smart_str_0(&list);

	smart_str_appends(&msg, "cometbox1:");
	smart_str_appends(&msg, expiry);
	smart_str_appendc(&msg, ':');
	smart_str_append(&msg, list.s);
	smart_str_0(&msg);
	hmac(ops, (const unsigned char *) secret, secret_len,
		(const unsigned char *) ZSTR_VAL(msg.s), ZSTR_LEN(msg.s), digest);

	/* base64url without padding */
	sig = php_base64_encode(digest, ops->digest_size);
	ZEND_SECURE_ZERO(digest, sizeof(digest));
	sig_len = ZSTR_LEN(sig);
	while (sig_len > 0 && ZSTR_VAL(sig)[sig_len - 1] == '=') {
		sig_len--;
	}
	for (size_t i = 0; i < sig_len; i++) {
		char *c = &ZSTR_VAL(sig)[i];
		*c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
	}

	smart_str_appends(&token, expiry);
	smart_str_appendc(&token, '.');
	smart_str_append(&token, list.s);
	smart_str_appendc(&token, '.');
	smart_str_appendl(&token, ZSTR_VAL(sig), sig_len);
	RETVAL_STR(smart_str_extract(&token));

out:
	if (sig != NULL) {
		zend_string_release(sig);
	}
	if (algo != NULL) {
		zend_string_release(algo);
	}
	smart_str_free(&msg);
	smart_str_free(&list);
}
