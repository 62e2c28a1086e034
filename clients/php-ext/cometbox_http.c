/* One HTTP/1.1 POST to cometboxd's publish port over a plain TCP socket
 * (no libcurl, no TLS), bounded by one deadline for connecting, sending and
 * reading the answer. Not for interpreting the answer: see cometbox.c. */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "cometbox_http.h"
#include "cometbox_encode.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A status line and headers longer than this are not cometboxd's. */
#define CBX_MAX_HEADER_BYTES (64 * 1024)

/* ---- URL ---------------------------------------------------------------- */

void cbx_url_free(struct cbx_url *u)
{
	if (u->base) efree(u->base);
	if (u->host) efree(u->host);
	if (u->port) efree(u->port);
	if (u->hostport) efree(u->hostport);
	if (u->path) efree(u->path);
	memset(u, 0, sizeof(*u));
}

static void throw_bad_url(const char *url, size_t len)
{
	smart_str q = {0};

	cbx_quote(&q, url, len);
	smart_str_0(&q);
	cbx_throw_invalid("invalid URL %s: expected http://HOST:PORT with an optional path", ZSTR_VAL(q.s));
	smart_str_free(&q);
}

zend_result cbx_url_parse(struct cbx_url *u, const char *url, size_t len)
{
	const char *auth, *auth_end, *host, *host_end, *port = NULL, *port_end = NULL, *end;
	size_t i;

	memset(u, 0, sizeof(*u));
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char) url[i];
		if (c < 0x21 || c > 0x7E || c == '?' || c == '#') {
			goto bad;
		}
	}
	if (len >= 8 && strncasecmp(url, "https://", 8) == 0) {
		cbx_throw_invalid("the cometbox extension speaks plain http only; use the class with "
			"transport \"curl\" or \"stream\" for https");
		return FAILURE;
	}
	if (len < 7 || strncasecmp(url, "http://", 7) != 0) {
		goto bad;
	}
	end = url + len;
	while (end > url + 7 && end[-1] == '/') {
		end--;
	}
	auth = url + 7;
	auth_end = memchr(auth, '/', (size_t) (end - auth));
	if (auth_end == NULL) {
		auth_end = end;
	}
	if (auth_end == auth || memchr(auth, '@', (size_t) (auth_end - auth)) != NULL) {
		goto bad;
	}
	if (*auth == '[') {
		host = auth + 1;
		host_end = memchr(host, ']', (size_t) (auth_end - host));
		if (host_end == NULL || host_end == host) {
			goto bad;
		}
		if (host_end + 1 < auth_end) {
			if (host_end[1] != ':') {
				goto bad;
			}
			port = host_end + 2;
			port_end = auth_end;
		}
	} else {
		host = auth;
		host_end = memchr(auth, ':', (size_t) (auth_end - auth));
		if (host_end == NULL) {
			host_end = auth_end;
		} else {
			port = host_end + 1;
			port_end = auth_end;
		}
		if (host_end == host || memchr(host, '[', (size_t) (host_end - host)) != NULL
			|| memchr(host, ']', (size_t) (host_end - host)) != NULL) {
			goto bad;
		}
	}
	if (port != NULL) {
		unsigned long p = 0;
		const char *c;
		if (port == port_end || port_end - port > 5) {
			goto bad;
		}
		for (c = port; c < port_end; c++) {
			if (*c < '0' || *c > '9' || *c == ':') {
				goto bad;
			}
			p = p * 10 + (unsigned long) (*c - '0');
		}
		if (p == 0 || p > 65535) {
			goto bad;
		}
	}
	u->base = estrndup(url, (size_t) (end - url));
	u->host = estrndup(host, (size_t) (host_end - host));
	u->port = port ? estrndup(port, (size_t) (port_end - port)) : estrdup("80");
	u->hostport = estrndup(auth, (size_t) (auth_end - auth));
	u->path = estrndup(auth_end, (size_t) (end - auth_end));
	return SUCCESS;

bad:
	throw_bad_url(url, len);
	return FAILURE;
}

/* ---- errors ------------------------------------------------------------- */

static void throw_timeout(const char *endpoint, double timeout)
{
	char secs[64], detail[96];
	char *message;

	snprintf(secs, sizeof(secs), "%g", timeout);
	snprintf(detail, sizeof(detail), "no answer within %s s", secs);
	spprintf(&message, 0, "cometbox: no answer from %s within %s s", endpoint, secs);
	cbx_throw(0, CBX_TIMEOUT, detail, message);
	efree(message);
}

static void throw_unreachable(const char *endpoint, const char *reason)
{
	char *message;

	spprintf(&message, 0, "cometbox: cannot reach %s: %s", endpoint, reason);
	cbx_throw(0, CBX_CONNECTION_FAILED, reason, message);
	efree(message);
}

static void throw_bad_answer(const char *endpoint, int status, const char *why)
{
	char *message;

	spprintf(&message, 0, "cometbox: unexpected answer from %s: %s", endpoint, why);
	cbx_throw(status, CBX_BAD_RESPONSE, why, message);
	efree(message);
}

static void throw_too_large(const char *endpoint)
{
	char detail[64];
	char *message;

	snprintf(detail, sizeof(detail), "answer larger than %d bytes", CBX_MAX_ANSWER_BYTES);
	spprintf(&message, 0, "cometbox: answer from %s is larger than %d bytes", endpoint, CBX_MAX_ANSWER_BYTES);
	cbx_throw(0, CBX_BAD_RESPONSE, detail, message);
	efree(message);
}

/* ---- time and sockets ---------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Waits until fd is ready for events or the deadline passes.
 * Returns 1 ready, 0 deadline passed, -1 poll failed (errno set). */
static int wait_fd(int fd, short events, double deadline)
{
	for (;;) {
		double left = deadline - now_s();
		struct pollfd p;
		int r, ms;

		if (left <= 0) {
			return 0;
		}
		ms = left * 1000 >= INT_MAX ? INT_MAX : (int) ceil(left * 1000);
		p.fd = fd;
		p.events = events;
		p.revents = 0;
		r = poll(&p, 1, ms);
		if (r > 0) {
			return 1;
		}
		if (r < 0 && errno != EINTR) {
			return -1;
		}
	}
}

/* Connects to u before the deadline. Returns the non-blocking socket, or -1
 * after throwing connection_failed or timeout. Name resolution is not bounded
 * by the deadline (getaddrinfo() cannot be). */
static int connect_to(const struct cbx_url *u, const char *endpoint, double deadline, double timeout)
{
	struct addrinfo hints, *res = NULL, *ai;
	int fd = -1, err = ECONNREFUSED, gai, one = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	gai = getaddrinfo(u->host, u->port, &hints, &res);
	if (gai != 0) {
		char *reason;
		spprintf(&reason, 0, "cannot resolve %s: %s", u->host,
			gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
		throw_unreachable(endpoint, reason);
		efree(reason);
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			break;
		}
		err = errno;
		if (err == EINPROGRESS) {
			int w = wait_fd(fd, POLLOUT, deadline);
			if (w == 0) {
				close(fd);
				freeaddrinfo(res);
				throw_timeout(endpoint, timeout);
				return -1;
			}
			if (w > 0) {
				socklen_t len = sizeof(err);
				if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
					break;
				}
				if (err == 0) {
					err = errno;
				}
			} else {
				err = errno;
			}
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		throw_unreachable(endpoint, strerror(err));
		return -1;
	}
	/* The request goes out in two writes (head, body); don't let Nagle hold the second. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Sends all of buf. Returns 0, 1 when the deadline passed, or -1 with
 * errno set when the connection failed. */
static int send_all(int fd, const char *buf, size_t len, double deadline)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n > 0) {
			buf += n;
			len -= (size_t) n;
			continue;
		}
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int w = wait_fd(fd, POLLOUT, deadline);
			if (w == 0) {
				return 1;
			}
			if (w < 0) {
				return -1;
			}
			continue;
		}
		return -1;
	}
	return 0;
}

/* Reads what is there into in. Returns bytes read, 0 at end of stream,
 * -1 with errno set on failure, -2 when the deadline passed. */
static ssize_t read_some(int fd, smart_str *in, double deadline)
{
	char buf[65536];

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n > 0) {
			smart_str_appendl(in, buf, (size_t) n);
			return n;
		}
		if (n == 0) {
			return 0;
		}
		if (errno == EINTR) {
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			int w = wait_fd(fd, POLLIN, deadline);
			if (w == 0) {
				return -2;
			}
			if (w < 0) {
				return -1;
			}
			continue;
		}
		return -1;
	}
}

/* ---- answer parsing ------------------------------------------------------ */

static const char *find_crlf(const char *s, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (s[i] == '\r' && s[i + 1] == '\n') {
			return s + i;
		}
	}
	return NULL;
}

static const char *find_head_end(const char *s, size_t len)
{
	for (size_t i = 0; i + 3 < len; i++) {
		if (s[i] == '\r' && s[i + 1] == '\n' && s[i + 2] == '\r' && s[i + 3] == '\n') {
			return s + i;
		}
	}
	return NULL;
}

/* Decodes the chunked body src[0..len) into out.
 * Returns 1 complete, 0 more bytes needed, -1 malformed, -2 too large. */
static int dechunk(const char *src, size_t len, smart_str *out)
{
	size_t pos = 0;

	for (;;) {
		const char *eol = find_crlf(src + pos, len - pos);
		size_t size = 0, k;
		int digits = 0;

		if (eol == NULL) {
			return len - pos > 1024 ? -1 : 0;
		}
		for (k = pos; src + k < eol; k++) {
			char c = src[k];
			int v;
			if (c >= '0' && c <= '9') v = c - '0';
			else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
			else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
			else if (c == ';' || c == ' ' || c == '\t') break;
			else return -1;
			size = size * 16 + (size_t) v;
			if (size > CBX_MAX_ANSWER_BYTES) {
				return -2;
			}
			digits++;
		}
		if (digits == 0) {
			return -1;
		}
		pos = (size_t) (eol - src) + 2;
		if (size == 0) {
			/* Trailer lines, then an empty line. */
			for (;;) {
				eol = find_crlf(src + pos, len - pos);
				if (eol == NULL) {
					return 0;
				}
				if (eol == src + pos) {
					return 1;
				}
				pos = (size_t) (eol - src) + 2;
			}
		}
		if (len - pos < size + 2) {
			return 0;
		}
		if (src[pos + size] != '\r' || src[pos + size + 1] != '\n') {
			return -1;
		}
		if ((out->s ? ZSTR_LEN(out->s) : 0) + size > CBX_MAX_ANSWER_BYTES) {
			return -2;
		}
		smart_str_appendl(out, src + pos, size);
		pos += size + 2;
	}
}

/* Parses "HTTP/1.x NNN ..." at the start of head. Returns the status or -1. */
static int parse_status(const char *head, size_t len)
{
	if (len < 12 || memcmp(head, "HTTP/1.", 7) != 0 || head[7] < '0' || head[7] > '9' || head[8] != ' ') {
		return -1;
	}
	for (int i = 9; i < 12; i++) {
		if (head[i] < '0' || head[i] > '9') {
			return -1;
		}
	}
	if (len > 12 && head[12] != ' ' && head[12] != '\r') {
		return -1;
	}
	return (head[9] - '0') * 100 + (head[10] - '0') * 10 + (head[11] - '0');
}

/* Case-insensitive: does the header line (without CRLF) have this name?
 * Sets *value to the text after the colon and leading blanks. */
static bool header_is(const char *line, size_t len, const char *name, const char **value, size_t *vlen)
{
	size_t n = strlen(name);

	if (len <= n || line[n] != ':' || strncasecmp(line, name, n) != 0) {
		return false;
	}
	line += n + 1;
	len -= n + 1;
	while (len > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		len--;
	}
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t')) {
		len--;
	}
	*value = line;
	*vlen = len;
	return true;
}

/* ---- the kept-alive connection ------------------------------------------- */

/* One connection per process (per thread under ZTS) is kept after an answer
 * that allows it, for the next call to the same host and port; see
 * COMETBOX_G(conn_*). */

void cbx_conn_drop(void)
{
	if (COMETBOX_G(conn_fd) >= 0) {
		/* After a fork the socket is shared with the parent: just forget it here. */
		close(COMETBOX_G(conn_fd));
		COMETBOX_G(conn_fd) = -1;
	}
	if (COMETBOX_G(conn_key) != NULL) {
		pefree(COMETBOX_G(conn_key), 1);
		COMETBOX_G(conn_key) = NULL;
	}
}

/* The kept connection to key, or -1. A connection the daemon closed (or that
 * has unexpected bytes waiting) is dropped rather than reused. */
static int conn_take(const char *key)
{
	int fd = COMETBOX_G(conn_fd);
	struct pollfd p;

	if (fd < 0) {
		return -1;
	}
	if (COMETBOX_G(conn_pid) != getpid() || strcmp(COMETBOX_G(conn_key), key) != 0) {
		cbx_conn_drop();
		return -1;
	}
	p.fd = fd;
	p.events = POLLIN;
	p.revents = 0;
	if (poll(&p, 1, 0) != 0) {
		cbx_conn_drop();
		return -1;
	}
	COMETBOX_G(conn_fd) = -1; /* the caller owns it now */
	return fd;
}

static void conn_keep(int fd, const char *key)
{
	cbx_conn_drop();
	COMETBOX_G(conn_fd) = fd;
	COMETBOX_G(conn_key) = pestrdup(key, 1);
	COMETBOX_G(conn_pid) = getpid();
}

/* ---- one exchange ---------------------------------------------------------- */

enum exchange {
	EX_OK,       /* *status and answer filled */
	EX_THROWN,   /* an exception was thrown */
	EX_STALE,    /* nothing came back on a reused connection: try a fresh one */
};

/* Sends req and body on fd and reads one answer. *keep says whether fd may
 * carry another request afterwards. */
static enum exchange exchange(int fd, bool reused, const char *endpoint, double deadline, double timeout,
	smart_str *req, const char *body, size_t len, int *status, smart_str *answer, bool *keep)
{
	smart_str in = {0};
	enum exchange rc = EX_THROWN;
	int send_errno = 0, sent;
	const char *head_end;
	size_t body_start;
	bool chunked = false, has_length = false, close_asked = false, http11;
	size_t content_length = 0;
	ssize_t n;

	*keep = false;
	sent = send_all(fd, ZSTR_VAL(req->s), ZSTR_LEN(req->s), deadline);
	if (sent == 0) {
		sent = send_all(fd, body, len, deadline);
	}
	if (sent == 1) {
		throw_timeout(endpoint, timeout);
		goto out;
	}
	if (sent < 0) {
		if (reused) {
			rc = EX_STALE;
			goto out;
		}
		/* The daemon may have answered (413) and closed before reading all
		 * of a large body: read what it said before giving up. */
		send_errno = errno;
		shutdown(fd, SHUT_WR);
	}

	/* Status line and headers; 1xx interim answers are skipped. */
	for (;;) {
		while ((head_end = in.s ? find_head_end(ZSTR_VAL(in.s), ZSTR_LEN(in.s)) : NULL) == NULL) {
			if (in.s && ZSTR_LEN(in.s) > CBX_MAX_HEADER_BYTES) {
				throw_bad_answer(endpoint, 0, "header block too long");
				goto out;
			}
			n = read_some(fd, &in, deadline);
			if (n == -2) {
				throw_timeout(endpoint, timeout);
				goto out;
			}
			if (n <= 0) {
				int e = n < 0 ? errno : send_errno;
				if (reused && (in.s == NULL || ZSTR_LEN(in.s) == 0)) {
					rc = EX_STALE;
				} else if (e != 0) {
					throw_unreachable(endpoint, strerror(e));
				} else if (in.s == NULL || ZSTR_LEN(in.s) == 0) {
					throw_unreachable(endpoint, "the connection closed without an answer");
				} else {
					throw_unreachable(endpoint, "the connection closed before the answer was complete");
				}
				goto out;
			}
		}
		if ((size_t) (head_end - ZSTR_VAL(in.s)) > CBX_MAX_HEADER_BYTES) {
			throw_bad_answer(endpoint, 0, "header block too long");
			goto out;
		}
		*status = parse_status(ZSTR_VAL(in.s), (size_t) (head_end - ZSTR_VAL(in.s)));
		if (*status < 0) {
			throw_bad_answer(endpoint, 0, "no HTTP status line");
			goto out;
		}
		if (*status >= 200) {
			break;
		}
		{
			/* Drop the interim answer and look for the next head. */
			size_t used = (size_t) (head_end - ZSTR_VAL(in.s)) + 4;
			smart_str rest = {0};
			smart_str_appendl(&rest, ZSTR_VAL(in.s) + used, ZSTR_LEN(in.s) - used);
			smart_str_free(&in);
			in = rest;
		}
	}
	http11 = ZSTR_VAL(in.s)[7] == '1';
	body_start = (size_t) (head_end - ZSTR_VAL(in.s)) + 4;

	{
		const char *line = find_crlf(ZSTR_VAL(in.s), body_start) + 2;
		while (line < head_end + 2) {
			const char *eol = find_crlf(line, (size_t) (head_end + 2 - line));
			const char *value;
			size_t vlen;
			if (eol == NULL) {
				break;
			}
			if (header_is(line, (size_t) (eol - line), "Transfer-Encoding", &value, &vlen)) {
				chunked = vlen >= 7 && strncasecmp(value + vlen - 7, "chunked", 7) == 0;
			} else if (header_is(line, (size_t) (eol - line), "Connection", &value, &vlen)) {
				close_asked = vlen == 5 && strncasecmp(value, "close", 5) == 0;
			} else if (header_is(line, (size_t) (eol - line), "Content-Length", &value, &vlen)) {
				size_t cl = 0;
				if (vlen == 0 || vlen > 12) {
					throw_bad_answer(endpoint, *status, "bad Content-Length");
					goto out;
				}
				for (size_t k = 0; k < vlen; k++) {
					if (value[k] < '0' || value[k] > '9') {
						throw_bad_answer(endpoint, *status, "bad Content-Length");
						goto out;
					}
					cl = cl * 10 + (size_t) (value[k] - '0');
				}
				if (has_length && cl != content_length) {
					throw_bad_answer(endpoint, *status, "bad Content-Length");
					goto out;
				}
				has_length = true;
				content_length = cl;
			}
			line = eol + 2;
		}
	}
	if (has_length && !chunked && content_length > CBX_MAX_ANSWER_BYTES) {
		throw_too_large(endpoint);
		goto out;
	}
	/* Another request may follow only on an HTTP/1.1 answer that did not
	 * ask to close, whose end we know, and after which nothing is waiting. */
	*keep = http11 && !close_asked && send_errno == 0 && (chunked || has_length);
	if (*status == 204 || *status == 304) {
		*keep = *keep && ZSTR_LEN(in.s) == body_start;
		rc = EX_OK;
		goto out;
	}

	/* The body. */
	for (;;) {
		size_t have = ZSTR_LEN(in.s) - body_start;

		if (chunked) {
			const char *b = ZSTR_VAL(in.s) + body_start;
			/* Try to decode once the buffer can hold a whole chunked body. */
			if (have >= 5 && memcmp(b + have - 4, "\r\n\r\n", 4) == 0) {
				int d;
				smart_str_free(answer);
				d = dechunk(b, have, answer);
				if (d == 1) {
					rc = EX_OK;
					goto out;
				}
				if (d == -1) {
					throw_bad_answer(endpoint, *status, "bad chunked encoding");
					goto out;
				}
				if (d == -2) {
					throw_too_large(endpoint);
					goto out;
				}
			}
			if (have > CBX_MAX_ANSWER_BYTES + 64 * 1024) {
				throw_too_large(endpoint);
				goto out;
			}
		} else if (has_length) {
			if (have >= content_length) {
				smart_str_appendl(answer, ZSTR_VAL(in.s) + body_start, content_length);
				*keep = *keep && have == content_length;
				rc = EX_OK;
				goto out;
			}
		} else if (have > CBX_MAX_ANSWER_BYTES) {
			throw_too_large(endpoint);
			goto out;
		}
		n = read_some(fd, &in, deadline);
		if (n == -2) {
			throw_timeout(endpoint, timeout);
			goto out;
		}
		if (n < 0) {
			throw_unreachable(endpoint, strerror(errno));
			goto out;
		}
		if (n == 0) {
			if (!chunked && !has_length) {
				/* Framed by the end of the connection. */
				smart_str_appendl(answer, ZSTR_VAL(in.s) + body_start, ZSTR_LEN(in.s) - body_start);
				rc = EX_OK;
				goto out;
			}
			throw_unreachable(endpoint, "the connection closed before the answer was complete");
			goto out;
		}
	}

out:
	if (rc != EX_OK) {
		*keep = false;
		smart_str_free(answer);
	}
	smart_str_free(&in);
	return rc;
}

/* ---- the request --------------------------------------------------------- */

zend_result cbx_http_post(const struct cbx_url *u, const char *secret,
	double timeout, const char *body, size_t len,
	int *status, smart_str *answer)
{
	double deadline = now_s() + timeout;
	smart_str req = {0};
	char *endpoint, *key;
	int fd;
	bool reused, keep = false;
	enum exchange ex;

	spprintf(&endpoint, 0, "%s/publish", u->base);
	spprintf(&key, 0, "%s %s", u->host, u->port);

	smart_str_appends(&req, "POST ");
	smart_str_appends(&req, u->path);
	smart_str_appends(&req, "/publish HTTP/1.1\r\nHost: ");
	smart_str_appends(&req, u->hostport);
	smart_str_appends(&req, "\r\nUser-Agent: cometbox-php-ext/" PHP_COMETBOX_VERSION
		"\r\nAccept: application/json\r\nContent-Type: application/xml; charset=utf-8\r\nContent-Length: ");
	smart_str_append_unsigned(&req, len);
	if (secret != NULL) {
		smart_str_appends(&req, "\r\nAuthorization: Bearer ");
		smart_str_appends(&req, secret);
	}
	smart_str_appends(&req, "\r\n\r\n");
	smart_str_0(&req);

	fd = conn_take(key);
	reused = fd >= 0;
	for (;;) {
		if (fd < 0) {
			fd = connect_to(u, endpoint, deadline, timeout);
			if (fd < 0) {
				ex = EX_THROWN;
				break;
			}
		}
		ex = exchange(fd, reused, endpoint, deadline, timeout, &req, body, len, status, answer, &keep);
		if (ex != EX_STALE) {
			break;
		}
		/* The daemon closed the idle connection before it read this request
		 * (nothing came back): send it once more on a new connection. */
		close(fd);
		fd = -1;
		reused = false;
	}
	if (fd >= 0) {
		if (ex == EX_OK && keep) {
			conn_keep(fd, key);
		} else {
			close(fd);
		}
	}
	smart_str_free(&req);
	efree(key);
	efree(endpoint);
	return ex == EX_OK ? SUCCESS : FAILURE;
}
