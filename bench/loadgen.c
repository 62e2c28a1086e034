/* cbx-loadgen: load generator for cometboxd and Nchan (bench/README.md).
 * One process, one epoll loop, non-blocking sockets. It holds N
 * subscribers, publishes rounds of messages that carry their publish time
 * and sequence number, and prints one JSON line with latency, losses,
 * throughput and the server's and its own CPU and memory. Not a test of
 * protocol conformance: it reads only what it needs. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "lg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct lg_opts lg_o;
struct lg_run lg_r;

enum phase {
	PH_CONNECT,
	PH_HOLD,
	PH_SETTLE,
	PH_ROUND,
	PH_REHOLD,
	PH_DRAIN,
	PH_PUBLISH,
	PH_CHURN,
	PH_DONE,
};

static struct {
	enum phase phase;
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
	/* CPU and memory */
	struct lg_pstat ps_base, ps_held, ps_w0, ps_w1, ps_end;
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
} S;

int64_t lg_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - lg_r.t0_ns) /
	       1000;
}

static void lat_push(uint32_t **a, size_t *n, size_t *cap, int64_t v)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 65536;
		uint32_t *p = realloc(*a, nc * sizeof **a);
		if (!p)
			return;
		*a = p;
		*cap = nc;
	}
	(*a)[(*n)++] = v < 0 ? 0 : (uint32_t)v;
}

/* ---- publish requests ---- */

static void http_post(struct lg_buf *req, const char *path, const char *ctype,
		      const struct lg_buf *body)
{
	lg_buf_printf(req,
		      "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		      "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n",
		      path, ctype, body->len);
	lg_buf_append(req, body->p, body->len);
}

/* One publish of count messages to queues q0.. (or all to queue q0 when
 * same_queue), marker bm.SEQ.DEST.T; dest = the queue index, or for churn
 * the slot. */
static uint32_t build_publish(struct lg_buf *req, uint32_t q0, uint32_t count,
			      uint32_t seq)
{
	static struct lg_buf body;
	char q[64];
	int64_t t = lg_now_us();
	body.len = 0;
	if (lg_o.server == LG_NCHAN) {
		lg_queue_name(q, sizeof q, q0);
		lg_buf_printf(&body, "bm.%u.%u.%lld", seq, q0, (long long)t);
		char path[96];
		snprintf(path, sizeof path, "/pub/%s", q);
		http_post(req, path, "text/plain", &body);
		return 1;
	}
	if (count > 1)
		lg_buf_printf(&body, "<messages>");
	for (uint32_t i = 0; i < count; i++) {
		uint32_t qi = q0 + i;
		if (lg_o.scenario == LG_PUBLISH)
			qi = (q0 + i) % (uint32_t)lg_o.pub_queues;
		lg_queue_name(q, sizeof q, qi);
		lg_buf_printf(&body, "<message queue=\"%s\">bm.%u.%u.%lld</message>",
			      q, seq, qi, (long long)t);
	}
	if (count > 1)
		lg_buf_printf(&body, "</messages>");
	http_post(req, "/publish", "application/xml", &body);
	return count;
}

uint32_t lg_job_next(struct lg_buf *req)
{
	switch (lg_o.scenario) {
	case LG_MAILBOX:
	case LG_IDLE:
	case LG_FANOUT: {
		if (S.phase != PH_ROUND || S.next_q >= S.njobs_q)
			return 0;
		int r = S.cur_round;
		if (!S.round_first_pub[r])
			S.round_first_pub[r] = lg_now_us();
		if (lg_o.scenario == LG_FANOUT) {
			S.next_q = S.njobs_q;
			return build_publish(req, 0, 1, (uint32_t)r);
		}
		uint32_t count = (uint32_t)lg_o.batch;
		if (count > S.njobs_q - S.next_q)
			count = S.njobs_q - S.next_q;
		uint32_t n = build_publish(req, S.next_q, count, (uint32_t)r);
		S.next_q += n;
		return n;
	}
	case LG_PUBLISH: {
		if (S.pub_next >= lg_o.pub_messages || lg_now_us() >= S.pub_until)
			return 0;
		if (!lg_r.pub_first_us)
			lg_r.pub_first_us = lg_now_us();
		long left = lg_o.pub_messages - S.pub_next;
		uint32_t count = (uint32_t)(left < lg_o.batch ? left : lg_o.batch);
		uint32_t q0 = (uint32_t)(S.pub_next % lg_o.pub_queues);
		uint32_t n = build_publish(req, q0, count, 0);
		S.pub_next += n;
		return n;
	}
	case LG_CHURN: {
		while (S.ring_head != S.ring_tail) {
			uint32_t slot = S.ring[S.ring_head++ % S.ring_cap];
			struct lg_conn *c = &lg_r.subs[slot];
			if (c->dead)
				continue;
			/* the marker's dest is the slot, its seq the cycle */
			static struct lg_buf body;
			char q[64], path[96];
			body.len = 0;
			lg_queue_name(q, sizeof q, c->queue);
			lg_buf_printf(&body, "bm.%u.%u.%lld", c->cycle, slot,
				      (long long)lg_now_us());
			if (lg_o.server == LG_NCHAN) {
				snprintf(path, sizeof path, "/pub/%s", q);
				http_post(req, path, "text/plain", &body);
			} else {
				static struct lg_buf xml;
				xml.len = 0;
				lg_buf_printf(&xml, "<message queue=\"%s\">%s</message>",
					      q, body.p);
				http_post(req, "/publish", "application/xml", &xml);
			}
			return 1;
		}
		return 0;
	}
	}
	return 0;
}

/* ---- deliveries ---- */

void lg_on_delivery(struct lg_conn *c, uint32_t seq, uint32_t dest,
		    int64_t t_pub_us, int64_t now_us)
{
	lg_r.deliveries++;
	if (lg_o.scenario == LG_CHURN) {
		if (dest != c->idx) {
			S.misrouted++;
		} else if (seq == c->cycle && !c->cycle_got) {
			c->cycle_got = 1;
			S.cycles_done++;
			lat_push(&S.lat, &S.nlat, &S.caplat, now_us - t_pub_us);
			lat_push(&S.cyc, &S.ncyc, &S.capcyc,
				 now_us - c->cycle_t0);
		} else {
			S.dups++;
		}
		return;
	}
	if (seq >= (uint32_t)S.total_rounds) {
		S.stray++;
		return;
	}
	uint8_t *r = &S.recv[(size_t)c->idx * (size_t)S.total_rounds + seq];
	if (*r < 255)
		(*r)++;
	if (*r > 1) {
		S.dups++;
		return;
	}
	S.unique++;
	S.round_recv[seq]++;
	if (now_us > S.round_last_recv[seq])
		S.round_last_recv[seq] = now_us;
	if (lg_o.scenario != LG_FANOUT && dest != c->queue)
		S.misrouted++;
	if (seq >= 1) {
		lat_push(&S.lat, &S.nlat, &S.caplat, now_us - t_pub_us);
		S.window_msgs++;
	}
}

int lg_sub_continue(struct lg_conn *c)
{
	if (c->dead)
		return 0;
	if (lg_o.scenario == LG_CHURN)
		return !c->cycle_got;
	return 1;
}

/* ---- phases ---- */

static void pubs_kick(void)
{
	for (int i = 0; i < lg_o.pub_conns; i++) {
		struct lg_conn *c = &lg_r.pubs[i];
		if (c->fd < 0 && lg_pub_open(c) < 0)
			continue;
		lg_pub_kick(c);
	}
}

static int pubs_open_on_sub_port(void)
{
	if (lg_o.pub_port != lg_o.sub_port || lg_o.pub_ip != lg_o.sub_ip)
		return 0;
	int n = 0;
	for (int i = 0; i < lg_o.pub_conns; i++)
		n += lg_r.pubs[i].fd >= 0;
	return n;
}

static int count_alive(void)
{
	int n = 0;
	for (int i = 0; i < lg_r.nsubs; i++)
		n += !lg_r.subs[i].dead;
	return n;
}

/* Are all subscribers held? Streams: each got its 200 head. Long-polls:
 * each request is sent, and sock_diag shows the server's side of every
 * connection established with nothing left unread, i.e. the server has
 * read every poll. */
static int all_held(int64_t now)
{
	S.alive = count_alive();
	if (lg_o.transport != LG_LP) {
		S.held_final = lg_r.held;
		S.hold_check = "stream-head";
		return lg_r.held >= S.alive;
	}
	if (lg_r.lp_waiting < S.alive)
		return 0;
	if (now - S.t_last_diag < 10000)
		return 0;
	S.t_last_diag = now;
	long est, unread;
	/* the dump costs the generator CPU that is not load generation: it
	 * is kept out of the generator's figure and reported on its own */
	double c0 = lg_self_cpu_s();
	int rc = lg_diag_count(lg_o.sub_port, &est, &unread);
	double dc = lg_self_cpu_s() - c0;
	S.diag_cpu_s += dc;
	if (S.window_open)
		S.diag_cpu_win_s += dc;
	S.diag_calls++;
	if (rc < 0) {
		S.hold_check = "settle-only";
		S.held_final = lg_r.lp_waiting;
		return 1;
	}
	S.hold_check = "sock_diag";
	est -= pubs_open_on_sub_port();
	S.last_est = est;
	S.last_unread = unread;
	S.held_final = (int)(est < S.alive ? est : S.alive);
	return est >= S.alive && unread == 0;
}

static void window_begin(void)
{
	lg_proc_read(lg_o.pids, lg_o.npids, &S.ps_w0);
	S.gen_w0 = lg_self_cpu_s();
	S.t_w0 = lg_now_us();
	S.window_open = 1;
}

static void window_end(void)
{
	if (!S.window_open)
		return;
	lg_proc_read(lg_o.pids, lg_o.npids, &S.ps_w1);
	S.gen_w1 = lg_self_cpu_s();
	S.t_w1 = lg_now_us();
	S.window_open = 0;
}

static void round_start(int64_t now)
{
	int r = S.cur_round;
	if (r == 1)
		window_begin();
	S.next_q = 0;
	S.njobs_q = lg_o.scenario == LG_FANOUT ? 1u : (uint32_t)lg_o.n;
	S.alive = count_alive();
	S.t_until = now + lg_o.round_timeout_ms * 1000LL;
	S.phase = PH_ROUND;
	pubs_kick();
}

static void step_rounds(int64_t now)
{
	switch (S.phase) {
	case PH_CONNECT: {
		/* open in bursts so that the listen backlogs do not overflow */
		int dead = 0;
		for (int i = 0; i < S.opened; i++)
			dead += lg_r.subs[i].dead;
		int pending = S.opened - dead -
			      (lg_o.transport == LG_LP ? lg_r.lp_waiting
						       : lg_r.held);
		for (int k = 0; k < 256 && S.opened < lg_o.n && pending < 1024;
		     k++, pending++) {
			struct lg_conn *c = &lg_r.subs[S.opened++];
			if (lg_sub_open(c) < 0)
				c->dead = 1;
		}
		/* connecting and holding share one deadline, set in main() */
		if (S.opened == lg_o.n || now > S.t_until)
			S.phase = PH_HOLD;
		break;
	}
	case PH_HOLD:
		if (all_held(now) || now > S.t_until) {
			S.hold_timed_out = now > S.t_until;
			if (S.hold_timed_out)
				fprintf(stderr,
					"cbx-loadgen: not all held in time: %d "
					"of %d held or polls sent, server side: "
					"%ld established, %ld with unread bytes\n",
					lg_o.transport == LG_LP ? lg_r.lp_waiting
								: lg_r.held,
					S.alive, S.last_est, S.last_unread);
			S.t_held = now;
			S.phase = PH_SETTLE;
			S.t_until = now + lg_o.settle_ms * 1000LL;
		}
		break;
	case PH_SETTLE:
		if (now < S.t_until)
			break;
		lg_proc_read(lg_o.pids, lg_o.npids, &S.ps_held);
		S.tcp_held = lg_kernel_tcp_mem_kb();
		S.slab_held = lg_kernel_slab_kb();
		S.cur_round = 0;
		if (S.total_rounds == 0) {
			S.phase = PH_DONE;
			break;
		}
		round_start(now);
		break;
	case PH_ROUND: {
		int r = S.cur_round;
		long want = S.alive;
		int published = S.next_q >= S.njobs_q && lg_r.pub_inflight == 0;
		if (published && !S.round_pub_done[r])
			S.round_pub_done[r] = lg_r.pub_last_us;
		int got_all = S.round_recv[r] >= want;
		if (!(published && got_all) && now < S.t_until)
			break;
		if (now >= S.t_until) {
			S.round_timeouts++;
			S.timeouts_in_row++;
			fprintf(stderr,
				"cbx-loadgen: round %d timed out: %ld of %ld "
				"delivered, publish %s\n",
				r, S.round_recv[r], want,
				published ? "done" : "unfinished");
		}
		else
			S.timeouts_in_row = 0;
		if (S.timeouts_in_row >= 2) {
			/* the server has stopped delivering; more rounds would
			 * only burn the time budget */
			S.error = "two rounds in a row timed out";
			window_end();
			S.phase = PH_DRAIN;
			S.t_until = now + 300000;
		} else if (r == S.total_rounds - 1) {
			window_end();
			S.phase = PH_DRAIN;
			S.t_until = now + 300000;
		} else {
			S.cur_round++;
			S.phase = PH_REHOLD;
			S.t_until = now + 10000000LL;
			S.t_hold0 = now;
		}
		break;
	}
	case PH_REHOLD:
		if (all_held(now) || now > S.t_until) {
			if (now > S.t_until && !S.hold_timed_out) {
				S.hold_timed_out = 1;
				fprintf(stderr,
					"cbx-loadgen: before round %d, not all "
					"held after 10 s: %d of %d polls sent, "
					"server side: %ld established, %ld with "
					"unread bytes\n",
					S.cur_round, lg_r.lp_waiting, S.alive,
					S.last_est, S.last_unread);
			}
			if (now - S.t_hold0 < lg_o.gap_ms * 1000LL &&
			    now <= S.t_until)
				break;
			round_start(now);
		}
		break;
	case PH_DRAIN:
		if (now >= S.t_until)
			S.phase = PH_DONE;
		break;
	default:
		break;
	}
}

static void step_publish(int64_t now)
{
	if (!lg_r.pub_first_us) {
		window_begin();
		pubs_kick();
		if (!lg_r.pub_first_us)
			lg_r.pub_first_us = now;
	}
	int exhausted = S.pub_next >= lg_o.pub_messages || now >= S.pub_until;
	if (exhausted && lg_r.pub_inflight == 0) {
		window_end();
		S.phase = PH_DONE;
	}
	if (now > S.pub_until + 10000000LL) {
		S.error = "publish answers timed out";
		window_end();
		S.phase = PH_DONE;
	}
}

static void step_churn(int64_t now)
{
	if (!S.stopping &&
	    (now >= S.churn_until || S.cycles_started >= lg_o.max_cycles)) {
		S.stopping = 1;
		S.t_until = now + 5000000;
	}
	int active = 0;
	int opens = 0;
	int check_timeouts = now - S.t_last_diag > 100000;
	if (check_timeouts)
		S.t_last_diag = now;
	for (int i = 0; i < lg_r.nsubs; i++) {
		struct lg_conn *c = &lg_r.subs[i];
		if (c->dead)
			continue;
		if (c->fd >= 0 && !c->cycle_got) {
			active++;
			if (check_timeouts && now - c->cycle_t0 > 5000000) {
				/* no message in 5 s: lost; give the slot up */
				S.cycles_lost++;
				c->dead = 1;
				lg_conn_close(c);
			}
			continue;
		}
		if (c->fd >= 0)
			lg_conn_close(c);
		if (S.stopping || opens >= 256 ||
		    S.cycles_started >= lg_o.max_cycles)
			continue;
		c->cycle++;
		c->cycle_got = 0;
		c->cycle_t0 = now;
		if (lg_sub_open(c) < 0) {
			c->dead = 1;
			continue;
		}
		opens++;
		active++;
		S.cycles_started++;
		S.ring[S.ring_tail++ % S.ring_cap] = (uint32_t)i;
	}
	if (opens)
		pubs_kick();
	if (S.stopping && (active == 0 || now > S.t_until)) {
		S.cycles_lost += active;
		window_end();
		S.phase = PH_DONE;
	}
}

/* ---- report ---- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(const uint32_t *a, size_t n, double q)
{
	if (!n)
		return 0;
	size_t i = (size_t)ceil(q * (double)n);
	return a[i ? i - 1 : 0];
}

static void print_dist(const char *name, uint32_t *a, size_t n, double scale)
{
	if (n)
		qsort(a, n, sizeof *a, cmp_u32);
	double sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += a[i];
	printf("\"%s\":{\"count\":%zu,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
	       "\"max\":%.3f,\"mean\":%.3f}",
	       name, n, pct(a, n, .5) * scale, pct(a, n, .9) * scale,
	       pct(a, n, .99) * scale, n ? a[n - 1] * scale : 0,
	       n ? sum / (double)n * scale : 0);
}

static void print_json_str(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		if (*s == '"' || *s == '\\')
			putchar('\\');
		if ((unsigned char)*s >= 0x20)
			putchar(*s);
	}
	putchar('"');
}

static const char *scenario_names[] = {"mailbox", "fanout", "publish", "idle",
				       "churn"};
static const char *transport_names[] = {"lp", "stream", "sse"};

static void report(double wall_s)
{
	int rounds_sc = lg_o.scenario == LG_MAILBOX ||
			lg_o.scenario == LG_FANOUT || lg_o.scenario == LG_IDLE;
	long expected = 0, missing = 0;
	if (rounds_sc) {
		expected = (long)lg_o.n * S.total_rounds;
		missing = expected - S.unique;
	} else if (lg_o.scenario == LG_CHURN) {
		expected = S.cycles_started;
		missing = S.cycles_lost;
	}
	double srv_cpu = S.ps_w1.cpu_s - S.ps_w0.cpu_s;
	double gen_cpu = S.gen_w1 - S.gen_w0 - S.diag_cpu_win_s;
	long msgs = rounds_sc ? S.window_msgs
		    : lg_o.scenario == LG_CHURN ? S.cycles_done
						: lg_r.pub_ok_msgs;
	double per = msgs ? 1e6 / (double)msgs : 0;
	int n = lg_o.n > 0 ? lg_o.n : 1;

	printf("{\"tool\":\"cbx-loadgen\",\"server\":\"%s\",\"mode\":",
	       lg_o.server == LG_CBX ? "cometboxd" : "nchan");
	print_json_str(lg_o.mode);
	printf(",\"label\":");
	print_json_str(lg_o.label);
	printf(",\"scenario\":\"%s\",\"transport\":\"%s\",\"n\":%d,"
	       "\"rounds\":%d,\"batch\":%d,\"pub_conns\":%d,\"src_addrs\":%d,",
	       scenario_names[lg_o.scenario], transport_names[lg_o.transport],
	       lg_o.scenario == LG_PUBLISH ? 0 : lg_o.n, lg_o.rounds,
	       lg_o.batch, lg_o.pub_conns, lg_o.src_addrs);
	if (lg_o.scenario != LG_PUBLISH && lg_o.scenario != LG_CHURN)
		printf("\"held\":%d,\"hold_ms\":%.1f,\"hold_check\":\"%s\","
		       "\"hold_timed_out\":%s,",
		       S.held_final, (S.t_held - S.t_start) / 1000.0,
		       S.hold_check ? S.hold_check : "none",
		       S.hold_timed_out ? "true" : "false");
	printf("\"expected\":%ld,\"delivered\":%ld,\"missing\":%ld,"
	       "\"duplicates\":%ld,\"misrouted\":%ld,\"stray\":%ld,"
	       "\"gaps\":%ld,\"kicks\":%ld,",
	       expected,
	       rounds_sc ? S.unique : S.cycles_done, missing, S.dups,
	       S.misrouted, S.stray, lg_r.gaps, lg_r.kicks);
	print_dist("lat_ms", S.lat, S.nlat, 1e-3);
	putchar(',');
	if (rounds_sc && S.total_rounds > 1) {
		uint32_t rt[4096];
		size_t nr = 0;
		double pub_s = 0;
		long pub_msgs = 0;
		for (int r = 1; r < S.total_rounds && nr < 4096; r++) {
			if (!S.round_first_pub[r])
				continue;
			rt[nr++] = (uint32_t)(S.round_last_recv[r] -
					      S.round_first_pub[r]);
			if (S.round_pub_done[r]) {
				pub_s += (S.round_pub_done[r] -
					  S.round_first_pub[r]) / 1e6;
				pub_msgs += lg_o.scenario == LG_FANOUT ? 1
								       : lg_o.n;
			}
		}
		print_dist("round_ms", rt, nr, 1e-3);
		printf(",\"round_timeouts\":%ld,\"round_publish_msgs_per_s\":%.0f,",
		       S.round_timeouts, pub_s > 0 ? pub_msgs / pub_s : 0);
	}
	if (lg_o.scenario == LG_CHURN) {
		double d = (S.t_w1 - S.t_w0) / 1e6;
		print_dist("cycle_ms", S.cyc, S.ncyc, 1e-3);
		printf(",\"cycles\":%ld,\"cycles_per_s\":%.0f,"
		       "\"concurrency\":%d,",
		       S.cycles_done,
		       d > 0 ? S.cycles_done / d : 0,
		       lg_o.n);
	}
	double pub_s = (lg_r.pub_last_us - lg_r.pub_first_us) / 1e6;
	printf("\"publish\":{\"requests\":%ld,\"messages_ok\":%ld,"
	       "\"messages_failed\":%ld,\"msgs_per_s\":%.0f},",
	       lg_r.pub_requests, lg_r.pub_ok_msgs, lg_r.pub_err_msgs,
	       lg_o.scenario == LG_PUBLISH && pub_s > 0
		       ? lg_r.pub_ok_msgs / pub_s
		       : 0);
	printf("\"srv\":{\"pids\":%d,\"cpu_ms\":%.1f,\"cpu_us_per_msg\":%.2f,"
	       "\"cpu_ms_total\":%.1f,"
	       "\"rss_kb_base\":%ld,\"rss_kb_held\":%ld,\"rss_kb_end\":%ld,"
	       "\"pss_kb_base\":%ld,\"pss_kb_held\":%ld,\"pss_kb_end\":%ld,"
	       "\"rss_b_per_sub\":%.0f,\"pss_b_per_sub\":%.0f,"
	       "\"threads_held\":%ld},",
	       lg_o.npids, srv_cpu * 1e3, srv_cpu * per,
	       (S.ps_end.cpu_s - S.ps_base.cpu_s) * 1e3, S.ps_base.rss_kb,
	       S.ps_held.rss_kb, S.ps_end.rss_kb, S.ps_base.pss_kb,
	       S.ps_held.pss_kb, S.ps_end.pss_kb,
	       (S.ps_held.rss_kb - S.ps_base.rss_kb) * 1024.0 / n,
	       (S.ps_held.pss_kb - S.ps_base.pss_kb) * 1024.0 / n,
	       S.ps_held.threads);
	printf("\"kernel\":{\"tcp_mem_kb_delta\":%ld,\"slab_kb_delta\":%ld,"
	       "\"tcp_b_per_sub\":%.0f,\"slab_b_per_sub\":%.0f},",
	       S.tcp_held - S.tcp_base, S.slab_held - S.slab_base,
	       (S.tcp_held - S.tcp_base) * 1024.0 / n,
	       (S.slab_held - S.slab_base) * 1024.0 / n);
	printf("\"gen\":{\"cpu_ms\":%.1f,\"cpu_us_per_msg\":%.2f,"
	       "\"cpu_ms_total\":%.1f,\"hold_check_cpu_ms\":%.1f,"
	       "\"hold_checks\":%ld},",
	       gen_cpu * 1e3, gen_cpu * per, lg_self_cpu_s() * 1e3,
	       S.diag_cpu_s * 1e3, S.diag_calls);
	long errors = lg_r.err_connect + lg_r.err_http + lg_r.err_proto +
		      lg_r.err_closed;
	printf("\"errors\":{\"connect\":%ld,\"http\":%ld,\"proto\":%ld,"
	       "\"closed\":%ld},\"reconnects\":%ld,\"stream_ends\":%ld,"
	       "\"lp_answers\":%ld,\"lp_empty\":%ld,\"wall_s\":%.2f,",
	       lg_r.err_connect, lg_r.err_http, lg_r.err_proto,
	       lg_r.err_closed, lg_r.sub_reconnects, lg_r.stream_ends,
	       lg_r.lp_answers, lg_r.lp_empty, wall_s);
	int ok = !S.error && missing == 0 && S.dups == 0 && S.misrouted == 0 &&
		 S.stray == 0 && errors == 0 && lg_r.pub_err_msgs == 0 &&
		 (lg_o.scenario == LG_PUBLISH || lg_o.scenario == LG_CHURN ||
		  S.held_final == lg_o.n);
	printf("\"ok\":%s,\"error\":", ok ? "true" : "false");
	if (S.error)
		print_json_str(S.error);
	else
		printf("null");
	printf("}\n");
	fflush(stdout);
}

/* ---- options ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: cbx-loadgen --server cometboxd|nchan --sub HOST:PORT [--pub HOST:PORT]\n"
		"         [--scenario mailbox|fanout|publish|idle|churn] [--transport lp|stream|sse]\n"
		"         [-n N] [--rounds M] [--batch B] [--pub-conns P] [--pid PID[,PID..]]\n"
		"         [--src-addrs S] [--settle-ms MS] [--gap-ms MS] [--round-timeout-ms MS]\n"
		"         [--messages K] [--queues Q] [--duration S] [--max-cycles C]\n"
		"         [--max-seconds S] [--label TEXT] [--mode TEXT]\n"
		"Prints one JSON line on standard output; see bench/README.md.\n");
}

static int parse_addr(const char *s, uint32_t *ip, uint16_t *port)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof host)
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	struct in_addr a;
	if (inet_pton(AF_INET, host, &a) != 1)
		return -1;
	long p = strtol(colon + 1, NULL, 10);
	if (p <= 0 || p > 65535)
		return -1;
	*ip = a.s_addr;
	*port = (uint16_t)p;
	return 0;
}

static int pick(const char *v, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(v, names[i]))
			return i;
	return -1;
}

static int parse_opts(int argc, char **argv)
{
	static const struct option lo[] = {
		{"server", 1, 0, 's'},	 {"sub", 1, 0, 'S'},
		{"pub", 1, 0, 'P'},	 {"scenario", 1, 0, 'c'},
		{"transport", 1, 0, 't'}, {"subscribers", 1, 0, 'n'},
		{"rounds", 1, 0, 'r'},	 {"batch", 1, 0, 'b'},
		{"pub-conns", 1, 0, 'k'}, {"pid", 1, 0, 'p'},
		{"src-addrs", 1, 0, 'a'}, {"settle-ms", 1, 0, 1},
		{"gap-ms", 1, 0, 2},	 {"round-timeout-ms", 1, 0, 3},
		{"max-seconds", 1, 0, 4}, {"messages", 1, 0, 5},
		{"queues", 1, 0, 6},	 {"duration", 1, 0, 7},
		{"max-cycles", 1, 0, 8},  {"label", 1, 0, 9},
		{"mode", 1, 0, 10},	 {"help", 0, 0, 'h'},
		{0, 0, 0, 0}};
	static const char *servers[] = {"cometboxd", "nchan"};
	int have_sub = 0, have_pub = 0, settle = -1, opt;
	lg_o.n = 1000;
	lg_o.rounds = 10;
	lg_o.batch = 100;
	lg_o.pub_conns = 8;
	lg_o.src_addrs = 20;
	lg_o.gap_ms = 20;
	lg_o.round_timeout_ms = 20000;
	lg_o.max_seconds = 300;
	lg_o.pub_messages = 100000;
	lg_o.pub_queues = 1000;
	lg_o.duration_s = 5;
	lg_o.max_cycles = 1000000;
	lg_o.label = "";
	lg_o.mode = "";
	while ((opt = getopt_long(argc, argv, "n:h", lo, NULL)) != -1) {
		int v;
		switch (opt) {
		case 's':
			if ((v = pick(optarg, servers, 2)) < 0)
				goto bad;
			lg_o.server = (enum lg_server_kind)v;
			break;
		case 'S':
			if (parse_addr(optarg, &lg_o.sub_ip, &lg_o.sub_port) < 0)
				goto bad;
			have_sub = 1;
			break;
		case 'P':
			if (parse_addr(optarg, &lg_o.pub_ip, &lg_o.pub_port) < 0)
				goto bad;
			have_pub = 1;
			break;
		case 'c':
			if ((v = pick(optarg, scenario_names, 5)) < 0)
				goto bad;
			lg_o.scenario = (enum lg_scenario)v;
			break;
		case 't':
			if ((v = pick(optarg, transport_names, 3)) < 0)
				goto bad;
			lg_o.transport = (enum lg_transport)v;
			break;
		case 'n': lg_o.n = atoi(optarg); break;
		case 'r': lg_o.rounds = atoi(optarg); break;
		case 'b': lg_o.batch = atoi(optarg); break;
		case 'k': lg_o.pub_conns = atoi(optarg); break;
		case 'a': lg_o.src_addrs = atoi(optarg); break;
		case 'p': {
			char *s = optarg, *e;
			while (*s && lg_o.npids < 16) {
				long pid = strtol(s, &e, 10);
				if (e == s || pid <= 0)
					goto bad;
				lg_o.pids[lg_o.npids++] = (pid_t)pid;
				s = *e == ',' ? e + 1 : e;
			}
			break;
		}
		case 1: settle = atoi(optarg); break;
		case 2: lg_o.gap_ms = atoi(optarg); break;
		case 3: lg_o.round_timeout_ms = atoi(optarg); break;
		case 4: lg_o.max_seconds = atoi(optarg); break;
		case 5: lg_o.pub_messages = atol(optarg); break;
		case 6: lg_o.pub_queues = atoi(optarg); break;
		case 7: lg_o.duration_s = atof(optarg); break;
		case 8: lg_o.max_cycles = atol(optarg); break;
		case 9: lg_o.label = optarg; break;
		case 10: lg_o.mode = optarg; break;
		case 'h': usage(stdout); exit(0);
		default: goto bad;
		}
	}
	if (!have_sub || optind != argc)
		goto bad;
	if (!have_pub) {
		lg_o.pub_ip = lg_o.sub_ip;
		lg_o.pub_port = lg_o.sub_port;
	}
	if (lg_o.server == LG_NCHAN)
		lg_o.batch = 1; /* Nchan publishes one message per POST */
	if (lg_o.n < 1 || lg_o.n > 100000 || lg_o.rounds < 0 ||
	    lg_o.rounds > 1000 || lg_o.batch < 1 || lg_o.batch > 10000 ||
	    lg_o.pub_conns < 1 || lg_o.pub_conns > 256 || lg_o.src_addrs < 1 ||
	    lg_o.src_addrs > 250 || lg_o.pub_queues < 1 ||
	    lg_o.max_seconds < 1 || lg_o.max_seconds > 3600 ||
	    lg_o.duration_s <= 0 || lg_o.duration_s > 600)
		goto bad;
	if (lg_o.scenario == LG_CHURN && lg_o.transport == LG_STREAM &&
	    lg_o.server == LG_NCHAN)
		goto bad; /* Nchan's raw stream carries no resumable id */
	lg_o.settle_ms = settle >= 0 ? settle
			 : lg_o.scenario == LG_IDLE ? 1000
						    : 100;
	snprintf(lg_o.tag, sizeof lg_o.tag, "q%x",
		 (unsigned)(getpid() ^ (unsigned)time(NULL)) & 0xfffffu);
	return 0;
bad:
	usage(stderr);
	return -1;
}

int main(int argc, char **argv)
{
	if (parse_opts(argc, argv) < 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		if ((long)rl.rlim_cur < lg_o.n + lg_o.pub_conns + 64) {
			fprintf(stderr,
				"cbx-loadgen: open-file limit %ld is below "
				"%d subscribers\n",
				(long)rl.rlim_cur, lg_o.n);
			return 2;
		}
	}
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	lg_r.t0_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	lg_r.epfd = epoll_create1(EPOLL_CLOEXEC);
	int nsubs = lg_o.scenario == LG_PUBLISH ? 0 : lg_o.n;
	lg_r.subs = calloc((size_t)nsubs + 1, sizeof *lg_r.subs);
	lg_r.pubs = calloc((size_t)lg_o.pub_conns, sizeof *lg_r.pubs);
	lg_r.nsubs = nsubs;
	if (lg_r.epfd < 0 || !lg_r.subs || !lg_r.pubs)
		return 1;
	for (int i = 0; i < nsubs; i++) {
		struct lg_conn *c = &lg_r.subs[i];
		c->fd = -1;
		c->idx = (uint32_t)i;
		c->queue = lg_o.scenario == LG_FANOUT ? 0u : (uint32_t)i;
	}
	for (int i = 0; i < lg_o.pub_conns; i++) {
		lg_r.pubs[i].fd = -1;
		lg_r.pubs[i].idx = (uint32_t)i;
	}
	S.total_rounds = lg_o.rounds + 1;
	if (lg_o.scenario == LG_IDLE && lg_o.rounds == 0)
		S.total_rounds = 0;
	size_t tr = (size_t)(S.total_rounds + 1);
	S.recv = calloc((size_t)nsubs * tr + 1, 1);
	S.round_recv = calloc(tr, sizeof *S.round_recv);
	S.round_first_pub = calloc(tr, sizeof(int64_t));
	S.round_last_recv = calloc(tr, sizeof(int64_t));
	S.round_pub_done = calloc(tr, sizeof(int64_t));
	S.ring_cap = (size_t)nsubs + 1;
	S.ring = calloc(S.ring_cap, sizeof *S.ring);
	if (!S.recv || !S.round_recv || !S.round_first_pub ||
	    !S.round_last_recv || !S.round_pub_done || !S.ring)
		return 1;

	lg_proc_read(lg_o.pids, lg_o.npids, &S.ps_base);
	S.tcp_base = lg_kernel_tcp_mem_kb();
	S.slab_base = lg_kernel_slab_kb();
	S.t_start = lg_now_us();
	S.t_deadline = S.t_start + lg_o.max_seconds * 1000000LL;
	lg_r.running = 1;
	switch (lg_o.scenario) {
	case LG_PUBLISH:
		S.phase = PH_PUBLISH;
		S.pub_until = S.t_start + (int64_t)(lg_o.duration_s * 1e6);
		break;
	case LG_CHURN:
		S.phase = PH_CHURN;
		S.churn_until = S.t_start + (int64_t)(lg_o.duration_s * 1e6);
		window_begin();
		break;
	default:
		S.phase = PH_CONNECT;
		S.t_until = S.t_start + 20000000LL + lg_o.n * 2000LL;
		break;
	}
	static struct epoll_event evs[1024];
	while (S.phase != PH_DONE) {
		int nev = epoll_wait(lg_r.epfd, evs, 1024, 2);
		if (nev < 0 && errno != EINTR) {
			S.error = "epoll_wait failed";
			break;
		}
		for (int i = 0; i < nev; i++)
			lg_conn_event(evs[i].data.ptr, evs[i].events);
		int64_t now = lg_now_us();
		if (now > S.t_deadline) {
			S.error = "run exceeded --max-seconds";
			window_end();
			break;
		}
		if (S.phase == PH_PUBLISH)
			step_publish(now);
		else if (S.phase == PH_CHURN)
			step_churn(now);
		else
			step_rounds(now);
	}
	lg_r.running = 0;
	lg_proc_read(lg_o.pids, lg_o.npids, &S.ps_end);
	if (lg_o.scenario == LG_CHURN || lg_o.scenario == LG_PUBLISH) {
		S.ps_held = S.ps_end;
		S.tcp_held = lg_kernel_tcp_mem_kb();
		S.slab_held = lg_kernel_slab_kb();
	}
	double wall = (lg_now_us() - S.t_start) / 1e6;
	report(wall);
	/* reset rather than close: thousands of TIME_WAITs after every run
	 * would eat the ephemeral ports of the runs that follow */
	struct linger lin = {.l_onoff = 1, .l_linger = 0};
	for (int i = 0; i < nsubs; i++) {
		if (lg_r.subs[i].fd >= 0)
			setsockopt(lg_r.subs[i].fd, SOL_SOCKET, SO_LINGER, &lin,
				   sizeof lin);
		lg_conn_close(&lg_r.subs[i]);
	}
	for (int i = 0; i < lg_o.pub_conns; i++)
		lg_conn_close(&lg_r.pubs[i]);
	return 0;
}
