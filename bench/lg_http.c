/* Byte buffers and an incremental HTTP/1.1 response parser for cbx-loadgen.
 * It reads what cometboxd and nginx send (Content-Length, chunked, or body
 * until close); it is not a general HTTP client. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "lg.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int lg_buf_append(struct lg_buf *b, const void *d, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return -1;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

int lg_buf_printf(struct lg_buf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof tmp)
		return -1;
	return lg_buf_append(b, tmp, (size_t)n);
}

void lg_buf_consume(struct lg_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
	} else {
		memmove(b->p, b->p + n, b->len - n);
		b->len -= n;
	}
	if (b->p)
		b->p[b->len] = '\0';
}

void lg_buf_free(struct lg_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void lg_http_reset(struct lg_http *h)
{
	h->state = LG_HS_HEAD;
	h->status = 0;
	h->conn_close = 0;
	h->headers_new = 0;
	h->left = 0;
	h->ws_accept[0] = '\0';
	/* last_modified and etag persist: they are the long-poll cursor */
}

static void copy_value(char *dst, size_t cap, const char *v, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

/* Parses the status line and headers in p[0..n) (n ends before the blank
 * line). Returns 0 or -1. */
static int parse_head(struct lg_http *h, const char *p, size_t n)
{
	if (n < 12 || strncmp(p, "HTTP/1.", 7) != 0)
		return -1;
	h->status = atoi(p + 9);
	int chunked = 0;
	long long clen = -1;
	const char *end = p + n;
	const char *line = memchr(p, '\n', n);
	while (line && line < end) {
		line++;
		const char *eol = memchr(line, '\n', (size_t)(end - line));
		if (!eol)
			eol = end;
		const char *colon = memchr(line, ':', (size_t)(eol - line));
		if (colon) {
			size_t nlen = (size_t)(colon - line);
			const char *v = colon + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			const char *ve = eol;
			while (ve > v && isspace((unsigned char)ve[-1]))
				ve--;
			size_t vlen = (size_t)(ve - v);
			if (nlen == 14 && !strncasecmp(line, "content-length", 14))
				clen = atoll(v);
			else if (nlen == 17 &&
				 !strncasecmp(line, "transfer-encoding", 17))
				chunked = vlen >= 7 &&
					  !strncasecmp(ve - 7, "chunked", 7);
			else if (nlen == 10 && !strncasecmp(line, "connection", 10))
				h->conn_close = vlen == 5 &&
						!strncasecmp(v, "close", 5);
			else if (nlen == 13 &&
				 !strncasecmp(line, "last-modified", 13))
				copy_value(h->last_modified,
					   sizeof h->last_modified, v, vlen);
			else if (nlen == 4 && !strncasecmp(line, "etag", 4))
				copy_value(h->etag, sizeof h->etag, v, vlen);
			else if (nlen == 20 &&
				 !strncasecmp(line, "sec-websocket-accept", 20))
				copy_value(h->ws_accept, sizeof h->ws_accept, v,
					   vlen);
		}
		line = eol;
	}
	h->headers_new = 1;
	if (h->status == 101) {
		/* switched protocols: what follows is not an HTTP body */
		h->state = LG_HS_DONE;
	} else if (chunked) {
		h->state = LG_HS_CHUNK_SIZE;
	} else if (clen >= 0) {
		h->left = clen;
		h->state = clen ? LG_HS_LEN : LG_HS_DONE;
	} else if (h->status == 204 || h->status == 304) {
		h->state = LG_HS_DONE;
	} else {
		h->state = LG_HS_CLOSE;
	}
	return 0;
}

ssize_t lg_http_parse(struct lg_http *h, const char *p, size_t n,
		      struct lg_buf *body)
{
	size_t off = 0;
	for (;;) {
		const char *q = p + off;
		size_t avail = n - off;
		switch (h->state) {
		case LG_HS_HEAD: {
			const char *e = memmem(q, avail, "\r\n\r\n", 4);
			if (!e)
				return avail > 16384 ? -1 : (ssize_t)off;
			if (parse_head(h, q, (size_t)(e - q) + 2) < 0)
				return -1;
			off += (size_t)(e - q) + 4;
			break;
		}
		case LG_HS_LEN:
		case LG_HS_CHUNK_DATA: {
			if (!avail)
				return (ssize_t)off;
			size_t take = avail < (size_t)h->left ? avail
							      : (size_t)h->left;
			if (lg_buf_append(body, q, take) < 0)
				return -1;
			off += take;
			h->left -= (long long)take;
			if (!h->left)
				h->state = h->state == LG_HS_LEN
						   ? LG_HS_DONE
						   : LG_HS_CHUNK_CRLF;
			break;
		}
		case LG_HS_CHUNK_SIZE: {
			const char *e = memchr(q, '\n', avail);
			if (!e)
				return avail > 1024 ? -1 : (ssize_t)off;
			char *endp;
			long long sz = strtoll(q, &endp, 16);
			if (endp == q || sz < 0)
				return -1;
			off += (size_t)(e - q) + 1;
			h->left = sz;
			h->state = sz ? LG_HS_CHUNK_DATA : LG_HS_TRAILER;
			break;
		}
		case LG_HS_CHUNK_CRLF:
			if (avail < 2)
				return (ssize_t)off;
			if (q[0] != '\r' || q[1] != '\n')
				return -1;
			off += 2;
			h->state = LG_HS_CHUNK_SIZE;
			break;
		case LG_HS_TRAILER: {
			const char *e = memchr(q, '\n', avail);
			if (!e)
				return avail > 4096 ? -1 : (ssize_t)off;
			int blank = e == q || (e == q + 1 && q[0] == '\r');
			off += (size_t)(e - q) + 1;
			if (blank)
				h->state = LG_HS_DONE;
			break;
		}
		case LG_HS_CLOSE:
			if (avail && lg_buf_append(body, q, avail) < 0)
				return -1;
			return (ssize_t)n;
		case LG_HS_DONE:
			return (ssize_t)off;
		}
	}
}

int lg_http_eof(struct lg_http *h)
{
	if (h->state == LG_HS_CLOSE) {
		h->state = LG_HS_DONE;
		return 0;
	}
	return h->state == LG_HS_DONE ? 0 : -1;
}
