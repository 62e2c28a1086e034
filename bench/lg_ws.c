/* WebSocket framing for cbx-loadgen's ws transport (RFC 6455, version 13,
 * client side): the handshake's headers and its check, server frames read,
 * client frames (pongs) written masked. What a frame means to a run lives in
 * lg_conn.c. Not a conforming client: no extensions, no UTF-8 check. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "lg.h"

#include <string.h>

/* A fixed key: every connection of the generator sends the same one, and
 * its accept value is RFC 6455's example (section 1.3), so no SHA-1 is
 * needed to check the answer. */
static const char ws_key[] = "dGhlIHNhbXBsZSBub25jZQ==";
static const char ws_accept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/* No server here sends more in one frame; a larger length is taken for
 * garbage rather than buffered. */
#define WS_MAX_PAYLOAD (16u << 20)

int lg_ws_handshake(struct lg_buf *o)
{
	return lg_buf_printf(o,
			     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
			     "Sec-WebSocket-Key: %s\r\n"
			     "Sec-WebSocket-Version: 13\r\n",
			     ws_key);
}

int lg_ws_accept_ok(const struct lg_http *h)
{
	return h->status == 101 && !strcmp(h->ws_accept, ws_accept);
}

ssize_t lg_ws_frame_parse(const char *p, size_t n, struct lg_ws_frame *f)
{
	const unsigned char *u = (const unsigned char *)p;
	if (n < 2)
		return 0;
	if (u[0] & 0x70)
		return -1; /* reserved bits: no extension was agreed */
	if (u[1] & 0x80)
		return -1; /* a server never masks */
	f->fin = u[0] >> 7;
	f->opcode = u[0] & 0x0f;
	uint64_t len = u[1] & 0x7f;
	size_t head = 2;
	if (len == 126) {
		if (n < 4)
			return 0;
		len = (uint64_t)u[2] << 8 | u[3];
		head = 4;
	} else if (len == 127) {
		if (n < 10)
			return 0;
		len = 0;
		for (int i = 2; i < 10; i++)
			len = len << 8 | u[i];
		head = 10;
	}
	if (len > WS_MAX_PAYLOAD)
		return -1;
	if ((f->opcode & 0x08) && (!f->fin || len > 125))
		return -1; /* a control frame is whole and short */
	if (n - head < len)
		return 0;
	f->payload = p + head;
	f->len = (size_t)len;
	return (ssize_t)(head + len);
}

int lg_ws_frame_append(struct lg_buf *o, int opcode, const void *payload,
		       size_t len)
{
	/* the key only has to be there (section 5.3); a counter will do */
	static uint32_t next_key = 0x9e3779b9u;
	unsigned char head[14], mask[4];
	size_t h = 0;
	uint32_t key = next_key;
	next_key = next_key * 1664525u + 1013904223u;
	head[h++] = (unsigned char)(0x80 | (opcode & 0x0f));
	if (len < 126) {
		head[h++] = (unsigned char)(0x80 | len);
	} else if (len < 65536) {
		head[h++] = 0x80 | 126;
		head[h++] = (unsigned char)(len >> 8);
		head[h++] = (unsigned char)len;
	} else {
		head[h++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			head[h++] = (unsigned char)((uint64_t)len >> (8 * i));
	}
	for (int i = 0; i < 4; i++)
		head[h++] = mask[i] = (unsigned char)(key >> (8 * i));
	if (lg_buf_append(o, head, h) < 0)
		return -1;
	size_t at = o->len;
	if (lg_buf_append(o, payload, len) < 0)
		return -1;
	unsigned char *d = (unsigned char *)o->p + at;
	for (size_t i = 0; i < len; i++)
		d[i] ^= mask[i & 3];
	return 0;
}
