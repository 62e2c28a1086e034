/* Shared declarations of the cbx-loadgen benchmark client (bench/).
 * Only the load generator uses this; nothing in the daemon includes it. */
#ifndef CBX_LG_H
#define CBX_LG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A growable byte buffer. Owned by whoever holds the struct; free with
 * lg_buf_free(). */
struct lg_buf {
	char *p;
	size_t len;
	size_t cap;
};

int lg_buf_append(struct lg_buf *b, const void *d, size_t n);
int lg_buf_printf(struct lg_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void lg_buf_consume(struct lg_buf *b, size_t n);
void lg_buf_free(struct lg_buf *b);

/* Incremental HTTP/1.1 response parser (lg_http.c). */
enum lg_http_state {
	LG_HS_HEAD,
	LG_HS_LEN,
	LG_HS_CHUNK_SIZE,
	LG_HS_CHUNK_DATA,
	LG_HS_CHUNK_CRLF,
	LG_HS_TRAILER,
	LG_HS_CLOSE,
	LG_HS_DONE,
};

struct lg_http {
	enum lg_http_state state;
	int status;
	int conn_close;   /* the server said Connection: close */
	int headers_new;  /* set when the head was parsed; the caller clears it */
	long long left;   /* bytes left in the body or the current chunk */
	char last_modified[64];
	char etag[64];
	char ws_accept[64]; /* Sec-WebSocket-Accept of a 101 */
};

void lg_http_reset(struct lg_http *h);
/* Parses p[0..n). Appends decoded body bytes to body. Returns the number of
 * bytes consumed (it stops after the end of one response, state DONE), or
 * -1 on a malformed response. */
ssize_t lg_http_parse(struct lg_http *h, const char *p, size_t n,
		      struct lg_buf *body);
/* The peer closed: returns 0 when that ends the response cleanly. */
int lg_http_eof(struct lg_http *h);

/* WebSocket framing, client side (lg_ws.c). */
struct lg_ws_frame {
	int fin;
	int opcode;           /* 0 continuation, 1 text, 2 binary, 8 close,
			       * 9 ping, 10 pong */
	const char *payload;  /* borrowed: points into the parsed bytes */
	size_t len;
};

/* Appends the handshake's headers (Upgrade, Key, Version) to a GET. */
int lg_ws_handshake(struct lg_buf *o);
/* The answer to that handshake is a 101 with the key's accept value. */
int lg_ws_accept_ok(const struct lg_http *h);
/* Parses one server frame at p[0..n): returns the bytes it spans, 0 when
 * it is not all there yet, -1 when it breaks RFC 6455 (masked, reserved
 * bits, a fragmented or long control frame) or is over 16 MiB. */
ssize_t lg_ws_frame_parse(const char *p, size_t n, struct lg_ws_frame *f);
/* Appends one whole client frame, masked, to o. */
int lg_ws_frame_append(struct lg_buf *o, int opcode, const void *payload,
		       size_t len);

/* Process figures (lg_proc.c). */
struct lg_pstat {
	int ok;
	double cpu_s;   /* utime + stime of all listed processes */
	double sys_s;   /* stime alone: time in the kernel, system calls and
			 * the network work they do (loopback delivery too) */
	long rss_kb;    /* sum of VmRSS */
	long pss_kb;    /* sum of Pss (smaps_rollup), shared pages split */
	long threads;
};

int lg_proc_read(const pid_t *pids, int npids, struct lg_pstat *out);
double lg_self_cpu_s(void);
/* Kernel-wide figures: TCP socket buffer memory and slab, in KiB. */
long lg_kernel_tcp_mem_kb(void);
long lg_kernel_slab_kb(void);
/* Counts ESTABLISHED IPv4 TCP sockets whose local port is port (the
 * server's side of our connections) and how many of them still have unread
 * bytes in their receive queue. Returns 0, or -1 when sock_diag fails. */
int lg_diag_count(uint16_t port, long *established, long *unread);

/* ---- the run: options, connections, counters (loadgen.c, lg_conn.c) ---- */

enum lg_server_kind { LG_CBX, LG_NCHAN };
enum lg_transport { LG_LP, LG_STREAM, LG_SSE, LG_WS };
enum lg_scenario { LG_MAILBOX, LG_FANOUT, LG_PUBLISH, LG_IDLE, LG_CHURN };

#define LG_MAX_TARGETS 8

/* A server address to subscribe at: one node of several that share their
 * queues (bench/README.md, "Scale-out on Redis"). */
struct lg_target {
	uint32_t ip;         /* network order */
	uint16_t port;
};

struct lg_opts {
	enum lg_server_kind server;
	enum lg_transport transport;
	enum lg_scenario scenario;
	/* --sub A[,B..]: subscriber i (or churn slot i) connects to
	 * subs[i % nsubs]; publishes all go to --pub (default: subs[0]) */
	struct lg_target subs[LG_MAX_TARGETS];
	int nsubs;
	uint32_t pub_ip;     /* network order */
	uint16_t pub_port;
	int n;               /* subscribers (churn: concurrent slots) */
	int rounds;          /* measured rounds, after one warm-up round */
	int batch;           /* messages per publish POST (cometboxd) */
	int pub_conns;
	pid_t pids[16];       /* the server: every process of every node, and
			       * Redis's when it holds the queues */
	int npids;
	pid_t redis_pids[4];  /* of pids, those also reported on their own
			       * (the "redis" object: Redis's share) */
	int nredis_pids;
	int src_addrs;       /* bind to 127.0.0.1 .. 127.0.0.src_addrs */
	int settle_ms;
	int gap_ms;
	int round_timeout_ms;
	int max_seconds;
	long pub_messages;   /* publish scenario: total messages */
	int pub_queues;      /* publish scenario: queues written round-robin */
	double duration_s;   /* publish and churn scenarios: time bound */
	long max_cycles;     /* churn: bound on completed cycles */
	int ws_ack;          /* ws, cometboxd: acknowledge each frame with
			      * messages, as the JavaScript client does */
	const char *label;
	const char *mode;
	char tag[16];        /* queue-name prefix unique to this run */
};

enum lg_role { LG_SUB, LG_PUB };

/* One client connection. Subscriber connections live in lg_r.subs[], one
 * per subscriber (or churn slot); publisher ones in lg_r.pubs[]. */
struct lg_conn {
	int fd;               /* -1 when closed */
	enum lg_role role;
	uint32_t idx;
	uint32_t queue;
	int connecting;
	int want_out;         /* EPOLLOUT is in the interest set */
	int req_written;      /* the current request was fully sent */
	int busy;             /* a request is outstanding */
	int held;             /* stream/SSE: a 200 head arrived; ws: the 101
			       * (Nchan) or the first frame (cometboxd) */
	int ws;               /* ws: upgraded, c->in holds frames */
	int dead;             /* given up on; excluded from expectations */
	int reconnects;
	uint64_t cursor;      /* cometboxd: highest message id seen */
	char sse_id[64];      /* Nchan SSE: last event id */
	struct lg_buf out;
	size_t out_off;
	struct lg_buf in;
	struct lg_buf body;
	struct lg_http http;
	uint32_t job_msgs;    /* publisher: messages in the outstanding POST */
	int64_t job_t0_us;    /* publisher: when that POST was built */
	int job_in_window;    /* publisher: it was built in the measured window */
	uint32_t cycle;       /* churn: cycle number of this slot */
	int64_t cycle_t0;     /* churn: when this cycle connected */
	int cycle_got;        /* churn: the cycle's message arrived */
};

struct lg_run {
	int epfd;
	int64_t t0_ns;
	struct lg_conn *subs;
	int nsubs;
	struct lg_conn *pubs;
	int held;             /* stream/SSE/ws subscribers held */
	int lp_waiting;       /* long-polls whose request is sent, unanswered */
	int running;          /* subscribers reconnect while set */
	long err_connect;     /* connect or socket errors */
	long err_http;        /* non-2xx answers */
	long err_proto;       /* unparsable answers */
	long err_closed;      /* unexpected closes by the server */
	long sub_reconnects;
	long stream_ends;     /* streams the server ended cleanly (ws: a
			       * close frame 1000 or 1001) */
	long ws_frames;       /* ws: text frames received */
	long ws_pings;        /* ws: pings received (each answered) */
	long ws_closes;       /* ws: close frames received */
	long deliveries;      /* markers seen, before any dedup */
	long lp_answers;
	long lp_empty;        /* long-poll answers without a message */
	long gaps;
	long kicks;
	long pub_requests;
	long pub_ok_msgs;
	long pub_err_msgs;
	int pub_inflight;
	int64_t pub_first_us; /* first publish sent in the current window */
	int64_t pub_last_us;  /* last publish answered */
	uint32_t *pub_rtt;    /* µs from building a POST to its answer, for
			       * POSTs built in the measured window */
	size_t npub_rtt, cappub_rtt;
};

extern struct lg_opts lg_o;
extern const char *const lg_scenario_names[];
extern const char *const lg_transport_names[];

/* Parses the command line into lg_o (lg_opts.c); -1 after printing usage. */
int lg_opts_parse(int argc, char **argv);
extern struct lg_run lg_r;

int64_t lg_now_us(void);
int lg_queue_name(char *buf, size_t cap, uint32_t q);
/* The --sub target of a subscriber (or churn slot): round-robin by index,
 * so consecutive subscribers, and a fan-out's, spread evenly. */
static inline int lg_sub_target(const struct lg_conn *c)
{
	return (int)(c->idx % (uint32_t)lg_o.nsubs);
}
int lg_sub_open(struct lg_conn *c);
int lg_pub_open(struct lg_conn *c);
void lg_conn_close(struct lg_conn *c);
void lg_conn_event(struct lg_conn *c, uint32_t events);
void lg_pub_kick(struct lg_conn *c);

enum lg_phase {
	LG_PH_CONNECT,
	LG_PH_HOLD,
	LG_PH_SETTLE,
	LG_PH_ROUND,
	LG_PH_REHOLD,
	LG_PH_DRAIN,
	LG_PH_PUBLISH,
	LG_PH_CHURN,
	LG_PH_DONE,
};

/* The progress and tallies of one run (loadgen.c; reported by lg_report.c). */
struct lg_state {
	enum lg_phase phase;
	int total_rounds;      /* warm-up round 0 + measured rounds */
	int cur_round;
	uint32_t next_q;       /* next queue to publish in this round */
	uint32_t njobs_q;      /* queues to publish in this round */
	int opened;            /* subscribers opened so far */
	int alive;
	uint8_t *recv;         /* [sub * total_rounds + round] = times seen */
	long *round_recv;
	int64_t *round_first_pub, *round_last_recv, *round_pub_done;
	long unique, dups, misrouted, stray;
	uint32_t *lat;         /* µs, measured rounds or churn cycles */
	size_t nlat, caplat;
	uint32_t *cyc;         /* churn: µs from connect to the message */
	size_t ncyc, capcyc;
	int64_t t_w0, t_w1;    /* the measured window */
	int64_t t_start, t_hold0, t_held, t_until, t_deadline, t_last_diag;
	int held_final;
	double diag_cpu_s, diag_cpu_win_s; /* generator CPU in sock_diag */
	long diag_calls;
	long last_est, last_unread;   /* the last sock_diag figures */
	const char *hold_check;
	int hold_timed_out;
	long round_timeouts;
	int timeouts_in_row;
	/* CPU and memory: ps_ of all --pid, rs_ of --redis-pid alone */
	struct lg_pstat ps_base, ps_held, ps_w0, ps_w1, ps_end;
	struct lg_pstat rs_base, rs_held, rs_w0, rs_w1, rs_end;
	/* per --sub target: unique deliveries and their latencies (µs,
	 * measured rounds), when there are several targets */
	long tgt_unique[LG_MAX_TARGETS];
	uint32_t *tgt_lat[LG_MAX_TARGETS];
	size_t tgt_nlat[LG_MAX_TARGETS], tgt_caplat[LG_MAX_TARGETS];
	double gen_w0, gen_w1;
	long tcp_base, tcp_held, slab_base, slab_held;
	long window_msgs;      /* deliveries inside the measured window */
	int window_open;
	/* publish scenario */
	long pub_next;
	int64_t pub_until;
	/* churn */
	uint32_t *ring;
	size_t ring_head, ring_tail, ring_cap;
	long cycles_started, cycles_done, cycles_lost;
	int stopping;
	int64_t churn_until;
	const char *error;
};

extern struct lg_state lg_s;

/* Prints the result line on standard output (lg_report.c). */
void lg_report(double wall_s);

/* Scenario hooks, implemented in loadgen.c. */
/* Builds the next publish request into req; returns its message count, or 0
 * when there is nothing to publish now. */
uint32_t lg_job_next(struct lg_buf *req);
void lg_on_delivery(struct lg_conn *c, uint32_t seq, uint32_t dest,
		    int64_t t_pub_us, int64_t now_us);
/* A long-poll answer or a stream end was handled; returns 1 when the
 * subscriber should go on (re-poll or reconnect), 0 to leave it closed. */
int lg_sub_continue(struct lg_conn *c);

#endif
