/* token.c - HMAC-SHA256 subscriber tokens with nettle. */
#include "token.h"

#include <nettle/base64.h>
#include <nettle/hmac.h>
#include <nettle/memops.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIG_B64_LEN 43 /* base64url of 32 bytes, without padding */

/* base64url, no padding, of the HMAC of "cometbox1:EXPIRY:QUEUES" */
static void sign(const char *secret, const char *expiry, size_t expiry_len, const char *queues, size_t queues_len,
                 char out[SIG_B64_LEN + 1])
{
    struct hmac_sha256_ctx ctx;
    uint8_t digest[SHA256_DIGEST_SIZE];
    struct base64_encode_ctx b64;
    char enc[BASE64_ENCODE_RAW_LENGTH(SHA256_DIGEST_SIZE) + 1];
    size_t n;

    hmac_sha256_set_key(&ctx, strlen(secret), (const uint8_t *)secret);
    hmac_sha256_update(&ctx, 10, (const uint8_t *)"cometbox1:");
    hmac_sha256_update(&ctx, expiry_len, (const uint8_t *)expiry);
    hmac_sha256_update(&ctx, 1, (const uint8_t *)":");
    hmac_sha256_update(&ctx, queues_len, (const uint8_t *)queues);
    hmac_sha256_digest(&ctx, sizeof digest, digest);
    base64url_encode_init(&b64);
    n = base64_encode_update(&b64, enc, sizeof digest, digest);
    n += base64_encode_final(&b64, enc + n);
    while (n > 0 && enc[n - 1] == '=')
        n--;
    memcpy(out, enc, n);
    out[n] = '\0';
}

bool cbx_token_make(const char *secret, const char *queues, int64_t expiry, char *out, size_t len)
{
    char exp[24], sig[SIG_B64_LEN + 1];
    int n = snprintf(exp, sizeof exp, "%lld", (long long)expiry);

    sign(secret, exp, (size_t)n, queues, strlen(queues), sig);
    return (size_t)snprintf(out, len, "%s.%s.%s", exp, queues, sig) < len;
}

bool cbx_secret_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    /* compare over the secret's length either way, so timing leaks only lengths */
    return la == lb && memeql_sec(a, b, la);
}

enum cbx_err cbx_token_check(const char *secret, const char *token, const struct cbx_qlist *want, int64_t now,
                             char *why, size_t whylen)
{
    const char *dot1, *dot2, *queues;
    char sig[SIG_B64_LEN + 1];
    size_t exp_len, queues_len;
    long long expiry = 0;

    if (token == NULL || token[0] == '\0') {
        snprintf(why, whylen, "a token is required (?token=)");
        return CBX_ERR_INVALID;
    }
    dot1 = strchr(token, '.');
    dot2 = strrchr(token, '.');
    if (dot1 == NULL || dot2 == dot1 || strlen(dot2 + 1) != SIG_B64_LEN) {
        snprintf(why, whylen, "malformed token: expected EXPIRY.QUEUES.SIGNATURE");
        return CBX_ERR_INVALID;
    }
    exp_len = (size_t)(dot1 - token);
    if (exp_len == 0 || exp_len > 12 || strspn(token, "0123456789") != exp_len) {
        snprintf(why, whylen, "malformed token: bad expiry");
        return CBX_ERR_INVALID;
    }
    for (size_t i = 0; i < exp_len; i++)
        expiry = expiry * 10 + (token[i] - '0');
    queues = dot1 + 1;
    queues_len = (size_t)(dot2 - queues);
    sign(secret, token, exp_len, queues, queues_len, sig);
    if (!memeql_sec(sig, dot2 + 1, SIG_B64_LEN)) {
        snprintf(why, whylen, "token signature does not match");
        return CBX_ERR_INVALID;
    }
    if (expiry <= now) {
        snprintf(why, whylen, "token expired");
        return CBX_ERR_INVALID;
    }
    for (size_t i = 0; i < want->n; i++) {
        size_t len = strlen(want->names[i]);
        const char *p = queues, *end = queues + queues_len;
        bool found = false;
        while (p < end && !found) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            size_t n = comma ? (size_t)(comma - p) : (size_t)(end - p);
            found = n == len && memcmp(p, want->names[i], len) == 0;
            p += n + 1;
        }
        if (!found) {
            snprintf(why, whylen, "token does not cover queue \"%s\"", want->names[i]);
            return CBX_ERR_INVALID;
        }
    }
    return CBX_OK;
}
