/* Client connections of cbx-loadgen: non-blocking connect, requests of the
 * four subscriber transports for cometboxd and Nchan, publish POSTs, and
 * reading answers and WebSocket frames (their framing: lg_ws.c). What a run
 * does with them lives in loadgen.c. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "lg.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static int set_interest(struct lg_conn *c, int out)
{
	if (c->want_out == out)
		return 0;
	struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0),
				 .data.ptr = c};
	if (epoll_ctl(lg_r.epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		return -1;
	c->want_out = out;
	return 0;
}

static int conn_connect(struct lg_conn *c, uint32_t ip, uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			0);
	if (fd < 0)
		goto fail;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (lg_o.src_addrs > 1) {
		/* spread over 127.0.0.1..N so that 15,000 connections and the
		 * TIME_WAITs of churn do not run out of ephemeral ports; the
		 * port is picked at connect(), per destination */
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
			   sizeof one);
		struct sockaddr_in src = {.sin_family = AF_INET};
		src.sin_addr.s_addr =
			htonl(0x7f000001u + c->idx % (uint32_t)lg_o.src_addrs);
		if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0)
			goto fail_fd;
	}
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(port)};
	sa.sin_addr.s_addr = ip;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 &&
	    errno != EINPROGRESS)
		goto fail_fd;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
	if (epoll_ctl(lg_r.epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		goto fail_fd;
	c->fd = fd;
	c->want_out = 1;
	c->connecting = 1;
	c->ws = 0;
	c->in.len = 0;
	c->body.len = 0;
	lg_http_reset(&c->http);
	return 0;
fail_fd:
	close(fd);
fail:
	lg_r.err_connect++;
	return -1;
}

void lg_conn_close(struct lg_conn *c)
{
	if (c->fd < 0)
		return;
	close(c->fd);
	c->fd = -1;
	if (c->held) {
		c->held = 0;
		lg_r.held--;
	}
	if (c->role == LG_SUB && c->req_written && c->busy)
		lg_r.lp_waiting--;
	if (c->role == LG_PUB && c->busy)
		lg_r.pub_inflight--;
	c->busy = 0;
	c->req_written = 0;
	c->connecting = 0;
	c->ws = 0;
	c->out.len = 0;
	c->out_off = 0;
}

/* Sends what is left of c->out. Returns 0, or -1 after closing c. */
static int conn_flush(struct lg_conn *c)
{
	while (c->out_off < c->out.len) {
		ssize_t n = send(c->fd, c->out.p + c->out_off,
				 c->out.len - c->out_off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return set_interest(c, 1);
			lg_r.err_closed++;
			lg_conn_close(c);
			return -1;
		}
		c->out_off += (size_t)n;
	}
	if (c->out.len && !c->req_written) {
		c->req_written = 1;
		if (c->role == LG_SUB && lg_o.transport == LG_LP)
			lg_r.lp_waiting++;
	}
	return set_interest(c, 0);
}

int lg_queue_name(char *buf, size_t cap, uint32_t q)
{
	return snprintf(buf, cap, "%s.%u", lg_o.tag, q);
}

static void sub_build_request(struct lg_conn *c)
{
	char q[64];
	lg_queue_name(q, sizeof q, c->queue);
	struct lg_buf *o = &c->out;
	o->len = 0;
	c->out_off = 0;
	if (lg_o.server == LG_CBX) {
		static const char *path[] = {"/poll/", "/stream/", "/events/",
					     "/ws/"};
		lg_buf_printf(o, "GET %s%s", path[lg_o.transport], q);
		if (c->cursor)
			lg_buf_printf(o, "?since=%llu",
				      (unsigned long long)c->cursor);
		lg_buf_printf(o, " HTTP/1.1\r\nHost: 127.0.0.1\r\n");
	} else {
		static const char *path[] = {"/lp/", "/stream/", "/sse/", "/ws/"};
		lg_buf_printf(o, "GET %s%s HTTP/1.1\r\nHost: 127.0.0.1\r\n",
			      path[lg_o.transport], q);
		if (lg_o.transport == LG_LP && c->http.etag[0])
			lg_buf_printf(o,
				      "If-Modified-Since: %s\r\n"
				      "If-None-Match: %s\r\n",
				      c->http.last_modified, c->http.etag);
		if (lg_o.transport == LG_SSE && c->sse_id[0])
			lg_buf_printf(o, "Last-Event-ID: %s\r\n", c->sse_id);
	}
	if (lg_o.transport == LG_SSE)
		lg_buf_printf(o, "Accept: text/event-stream\r\n");
	if (lg_o.transport == LG_WS)
		lg_ws_handshake(o);
	lg_buf_printf(o, "\r\n");
	c->busy = 1;
	c->req_written = 0;
}

int lg_sub_open(struct lg_conn *c)
{
	const struct lg_target *t = &lg_o.subs[lg_sub_target(c)];
	c->role = LG_SUB;
	if (conn_connect(c, t->ip, t->port) < 0)
		return -1;
	sub_build_request(c);
	return 0;
}

int lg_pub_open(struct lg_conn *c)
{
	c->role = LG_PUB;
	c->busy = 0;
	if (conn_connect(c, lg_o.pub_ip, lg_o.pub_port) < 0)
		return -1;
	return 0;
}

void lg_pub_kick(struct lg_conn *c)
{
	if (c->fd < 0 || c->busy)
		return;
	c->out.len = 0;
	uint32_t n = lg_job_next(&c->out);
	if (!n)
		return;
	c->out_off = 0;
	c->busy = 1;
	c->req_written = 0;
	c->job_msgs = n;
	c->job_t0_us = lg_now_us();
	c->job_in_window = lg_s.window_open;
	lg_r.pub_inflight++;
	lg_r.pub_requests++;
	if (!c->connecting)
		conn_flush(c);
}

/* Finds "bm.SEQ.DEST.T" markers, and for cometboxd the message ids, gap
 * and kick objects; for Nchan SSE the last "id:" line. */
static void scan_text(struct lg_conn *c, const char *p, size_t n)
{
	const char *end = p + n;
	int64_t now = lg_now_us();
	for (const char *s = p;
	     (s = memmem(s, (size_t)(end - s), "bm.", 3)) != NULL;) {
		char *e;
		s += 3;
		unsigned long seq = strtoul(s, &e, 10);
		if (*e != '.')
			continue;
		unsigned long dest = strtoul(e + 1, &e, 10);
		if (*e != '.')
			continue;
		long long t = strtoll(e + 1, &e, 10);
		s = e;
		lg_on_delivery(c, (uint32_t)seq, (uint32_t)dest, t, now);
	}
	if (lg_o.server == LG_CBX) {
		for (const char *s = p;
		     (s = memmem(s, (size_t)(end - s), "\"id\":", 5)) != NULL;) {
			s += 5;
			unsigned long long id = strtoull(s, NULL, 10);
			if (id > c->cursor)
				c->cursor = id;
		}
		for (const char *s = p; (s = memmem(s, (size_t)(end - s),
						    "\"type\":\"gap\"", 12));
		     s += 12)
			lg_r.gaps++;
		for (const char *s = p; (s = memmem(s, (size_t)(end - s),
						    "\"type\":\"kick\"", 13));
		     s += 13)
			lg_r.kicks++;
	} else if (lg_o.transport == LG_SSE) {
		for (const char *s = p; s < end;) {
			const char *eol = memchr(s, '\n', (size_t)(end - s));
			if (!eol)
				eol = end;
			if (eol - s > 4 && !memcmp(s, "id: ", 4)) {
				size_t l = (size_t)(eol - s - 4);
				if (l >= sizeof c->sse_id)
					l = sizeof c->sse_id - 1;
				memcpy(c->sse_id, s + 4, l);
				c->sse_id[l] = '\0';
			}
			s = eol + 1;
		}
	}
}

/* Closes a subscriber's connection and, while the run goes on, opens it
 * again with its cursor. expected: a normal end (stream end, Connection:
 * close); otherwise it is an error, retried at most 5 times. */
static void sub_reconnect(struct lg_conn *c, int expected)
{
	lg_conn_close(c);
	if (!lg_r.running || !lg_sub_continue(c))
		return;
	if (!expected && ++c->reconnects > 5) {
		c->dead = 1;
		return;
	}
	lg_r.sub_reconnects += !expected;
	if (lg_sub_open(c) < 0)
		c->dead = 1;
}

/* The answer to a long-poll is complete, or a stream ended. */
static int sub_done(struct lg_conn *c)
{
	long before = lg_r.deliveries;
	if (c->body.len)
		scan_text(c, c->body.p, c->body.len);
	c->body.len = 0;
	int close_it = c->http.conn_close;
	if (lg_o.transport != LG_LP) {
		lg_r.stream_ends++;
		sub_reconnect(c, 1);
		return -1;
	}
	lg_r.lp_answers++;
	lg_r.lp_empty += lg_r.deliveries == before;
	lg_r.lp_waiting--;
	c->busy = 0;
	c->req_written = 0;
	lg_http_reset(&c->http);
	if (!lg_r.running || close_it || !lg_sub_continue(c)) {
		sub_reconnect(c, 1);
		return -1;
	}
	sub_build_request(c);
	return conn_flush(c);
}

/* One publish round trip, µs; dropped if memory runs out (the count in
 * the report says how many were kept). */
static void rtt_push(int64_t us)
{
	if (lg_r.npub_rtt == lg_r.cappub_rtt) {
		size_t cap = lg_r.cappub_rtt ? 2 * lg_r.cappub_rtt : 4096;
		uint32_t *a = realloc(lg_r.pub_rtt, cap * sizeof *a);
		if (!a)
			return;
		lg_r.pub_rtt = a;
		lg_r.cappub_rtt = cap;
	}
	lg_r.pub_rtt[lg_r.npub_rtt++] = us < 0 ? 0 : (uint32_t)us;
}

static int pub_done(struct lg_conn *c)
{
	int ok = c->http.status >= 200 && c->http.status < 300;
	if (ok) {
		lg_r.pub_ok_msgs += c->job_msgs;
	} else {
		lg_r.err_http++;
		lg_r.pub_err_msgs += c->job_msgs;
		if (lg_r.err_http < 5)
			fprintf(stderr, "cbx-loadgen: publish answered %d: %.200s\n",
				c->http.status, c->body.p ? c->body.p : "");
	}
	lg_r.pub_last_us = lg_now_us();
	if (ok && c->job_in_window)
		rtt_push(lg_r.pub_last_us - c->job_t0_us);
	c->busy = 0;
	lg_r.pub_inflight--;
	c->body.len = 0;
	int close_it = c->http.conn_close;
	lg_http_reset(&c->http);
	if (close_it) {
		lg_conn_close(c);
		lg_pub_open(c);
		return -1;
	}
	lg_pub_kick(c);
	return 0;
}

/* Sends a frame on an upgraded subscriber. Returns 0, or -1 after closing
 * c. */
static int ws_send(struct lg_conn *c, int opcode, const char *p, size_t n)
{
	if (c->out_off == c->out.len) {
		c->out.len = 0;
		c->out_off = 0;
	}
	if (lg_ws_frame_append(&c->out, opcode, p, n) < 0) {
		lg_r.err_proto++;
		sub_reconnect(c, 0);
		return -1;
	}
	return conn_flush(c);
}

/* A text or continuation frame. Text: the deliveries, found as in a
 * stream's lines (a cometboxd frame is one JSON array, its first the cursor
 * object; a Nchan frame is one message); a message split over continuation
 * frames is scanned once whole; with --ws-ack a cometboxd frame with
 * messages is acknowledged up to the cursor. Returns -1 when c was closed
 * (and maybe reopened). */
static int ws_text(struct lg_conn *c, const struct lg_ws_frame *f)
{
	if ((f->opcode == 1 && c->body.len) ||
	    lg_buf_append(&c->body, f->payload, f->len) < 0) {
		/* a new message inside a fragmented one, or no memory */
		lg_r.err_proto++;
		sub_reconnect(c, 0);
		return -1;
	}
	if (!f->fin)
		return 0;
	lg_r.ws_frames++;
	long before = lg_r.deliveries;
	scan_text(c, c->body.p, c->body.len);
	c->body.len = 0;
	if (lg_o.ws_ack && lg_o.server == LG_CBX && lg_r.deliveries > before) {
		char ack[48];
		int n = snprintf(ack, sizeof ack, "{\"ack\":%llu}",
				 (unsigned long long)c->cursor);
		if (ws_send(c, 1, ack, (size_t)n) < 0)
			return -1;
	}
	if (!c->held) {
		c->held = 1;
		lg_r.held++;
	}
	if (!lg_sub_continue(c)) {
		/* churn: the one message arrived */
		lg_conn_close(c);
		return -1;
	}
	return 0;
}

/* One whole server frame: text (above); ping: a pong; close: the end of
 * the connection, reopened with the cursor like a stream's; 1000 and 1001
 * (the server stops) are clean ends, other codes errors. Returns -1 when c
 * was closed (and maybe reopened). */
static int ws_frame(struct lg_conn *c, const struct lg_ws_frame *f)
{
	switch (f->opcode) {
	case 0:
	case 1:
		return ws_text(c, f);
	case 9:
		lg_r.ws_pings++;
		return ws_send(c, 10, f->payload, f->len);
	case 10:
		return 0;
	case 8: {
		unsigned code = f->len >= 2
			? (unsigned)(unsigned char)f->payload[0] << 8 |
				  (unsigned char)f->payload[1]
			: 1005;
		lg_r.ws_closes++;
		int clean = code == 1000 || code == 1001;
		if (clean) {
			lg_r.stream_ends++;
		} else {
			lg_r.err_closed++;
			if (lg_r.err_closed < 5)
				fprintf(stderr,
					"cbx-loadgen: WebSocket closed by the "
					"server: code %u %.*s\n",
					code, f->len > 2 ? (int)f->len - 2 : 0,
					f->payload + 2);
		}
		sub_reconnect(c, clean);
		return -1;
	}
	default:
		lg_r.err_proto++; /* binary: neither server sends one */
		sub_reconnect(c, 0);
		return -1;
	}
}

/* The frames in c->in. Returns -1 when c was closed (and maybe reopened). */
static int ws_process(struct lg_conn *c)
{
	size_t off = 0;
	while (off < c->in.len) {
		struct lg_ws_frame f;
		ssize_t used = lg_ws_frame_parse(c->in.p + off, c->in.len - off,
						 &f);
		if (used < 0) {
			lg_r.err_proto++;
			sub_reconnect(c, 0);
			return -1;
		}
		if (used == 0)
			break;
		off += (size_t)used;
		if (ws_frame(c, &f) < 0)
			return -1;
	}
	lg_buf_consume(&c->in, off);
	return 0;
}

/* The answer to a WebSocket handshake: a 101, then frames. Nchan sends none
 * until a message comes, so its subscriber is held at the 101; cometboxd
 * sends the cursor frame once the subscription is in place, and its
 * subscriber is held at that frame. */
static int ws_upgraded(struct lg_conn *c)
{
	if (!lg_ws_accept_ok(&c->http)) {
		lg_r.err_http++;
		if (lg_r.err_http < 5)
			fprintf(stderr,
				"cbx-loadgen: WebSocket handshake answered %d%s\n",
				c->http.status,
				c->http.status == 101 ? " with a wrong accept" : "");
		c->dead = 1;
		lg_conn_close(c);
		return -1;
	}
	c->ws = 1;
	c->body.len = 0;
	if (lg_o.server == LG_NCHAN && !c->held) {
		c->held = 1;
		lg_r.held++;
	}
	return ws_process(c);
}

/* Parses what arrived. Returns -1 when c was closed (and maybe reopened). */
static int conn_process(struct lg_conn *c)
{
	if (c->ws)
		return ws_process(c);
	while (c->in.len || c->http.state == LG_HS_DONE) {
		ssize_t used = lg_http_parse(&c->http, c->in.p, c->in.len,
					     &c->body);
		if (used < 0) {
			lg_r.err_proto++;
			if (c->role == LG_SUB)
				sub_reconnect(c, 0);
			else
				lg_conn_close(c);
			return -1;
		}
		lg_buf_consume(&c->in, (size_t)used);
		if (c->http.headers_new) {
			c->http.headers_new = 0;
			if (c->role == LG_SUB && lg_o.transport == LG_WS)
				return ws_upgraded(c);
			if (c->role == LG_SUB && c->http.status != 200) {
				lg_r.err_http++;
				if (lg_r.err_http < 5)
					fprintf(stderr,
						"cbx-loadgen: subscribe answered %d\n",
						c->http.status);
				c->dead = 1;
				lg_conn_close(c);
				return -1;
			}
			if (c->role == LG_SUB && lg_o.transport != LG_LP &&
			    !c->held) {
				c->held = 1;
				lg_r.held++;
			}
		}
		if (c->role == LG_SUB && lg_o.transport != LG_LP &&
		    c->body.len) {
			/* scan complete lines only; a line never holds half a
			 * marker */
			char *nl = memrchr(c->body.p, '\n', c->body.len);
			if (nl) {
				size_t l = (size_t)(nl - c->body.p) + 1;
				scan_text(c, c->body.p, l);
				lg_buf_consume(&c->body, l);
				if (!lg_sub_continue(c)) {
					/* churn: the one message arrived */
					lg_conn_close(c);
					return -1;
				}
			}
		}
		if (c->http.state == LG_HS_DONE) {
			if ((c->role == LG_SUB ? sub_done(c) : pub_done(c)) < 0)
				return -1;
			continue;
		}
		if (used == 0)
			break;
	}
	return 0;
}

static void conn_eof(struct lg_conn *c)
{
	if (c->ws) {
		/* gone without a close frame: a dropped connection */
		lg_r.err_closed++;
		sub_reconnect(c, 0);
		return;
	}
	int clean = lg_http_eof(&c->http) == 0;
	if (clean && c->http.state == LG_HS_DONE && c->http.status) {
		/* a body that ran until close */
		if (c->role == LG_SUB)
			sub_done(c);
		else
			pub_done(c);
		return;
	}
	if (c->role == LG_SUB) {
		/* an idle keep-alive closed by the server between polls is
		 * normal; anything else is an error */
		int idle = c->http.state == LG_HS_HEAD && c->in.len == 0 &&
			   lg_o.transport == LG_LP && !c->busy;
		if (!idle)
			lg_r.err_closed++;
		sub_reconnect(c, idle);
	} else {
		if (c->busy) {
			lg_r.err_closed++;
			lg_r.pub_err_msgs += c->job_msgs;
		}
		lg_conn_close(c);
		if (lg_r.running)
			lg_pub_open(c);
	}
}

void lg_conn_event(struct lg_conn *c, uint32_t events)
{
	if (c->fd < 0)
		return;
	if (c->connecting && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int err = 0;
		socklen_t len = sizeof err;
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			lg_r.err_connect++;
			if (c->role == LG_SUB) {
				sub_reconnect(c, 0);
			} else {
				if (c->busy)
					lg_r.pub_err_msgs += c->job_msgs;
				lg_conn_close(c);
			}
			return;
		}
		c->connecting = 0;
	}
	if (events & EPOLLOUT) {
		if (conn_flush(c) < 0)
			return;
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	static char buf[65536];
	for (int i = 0; i < 4; i++) {
		ssize_t n = recv(c->fd, buf, sizeof buf, 0);
		if (n > 0) {
			if (lg_buf_append(&c->in, buf, (size_t)n) < 0 ||
			    conn_process(c) < 0)
				return;
			if ((size_t)n < sizeof buf)
				return;
		} else if (n == 0) {
			conn_eof(c);
			return;
		} else {
			if (errno == EAGAIN || errno == EINTR)
				return;
			if (c->role == LG_SUB) {
				lg_r.err_closed++;
				sub_reconnect(c, 0);
			} else {
				conn_eof(c);
			}
			return;
		}
	}
}
