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

#include <errno.h>
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


struct lg_state lg_s;

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
		if (lg_s.phase != LG_PH_ROUND || lg_s.next_q >= lg_s.njobs_q)
			return 0;
		int r = lg_s.cur_round;
		if (!lg_s.round_first_pub[r])
			lg_s.round_first_pub[r] = lg_now_us();
		if (lg_o.scenario == LG_FANOUT) {
			lg_s.next_q = lg_s.njobs_q;
			return build_publish(req, 0, 1, (uint32_t)r);
		}
		uint32_t count = (uint32_t)lg_o.batch;
		if (count > lg_s.njobs_q - lg_s.next_q)
			count = lg_s.njobs_q - lg_s.next_q;
		uint32_t n = build_publish(req, lg_s.next_q, count, (uint32_t)r);
		lg_s.next_q += n;
		return n;
	}
	case LG_PUBLISH: {
		if (lg_s.pub_next >= lg_o.pub_messages || lg_now_us() >= lg_s.pub_until)
			return 0;
		if (!lg_r.pub_first_us)
			lg_r.pub_first_us = lg_now_us();
		long left = lg_o.pub_messages - lg_s.pub_next;
		uint32_t count = (uint32_t)(left < lg_o.batch ? left : lg_o.batch);
		uint32_t q0 = (uint32_t)(lg_s.pub_next % lg_o.pub_queues);
		uint32_t n = build_publish(req, q0, count, 0);
		lg_s.pub_next += n;
		return n;
	}
	case LG_CHURN: {
		while (lg_s.ring_head != lg_s.ring_tail) {
			uint32_t slot = lg_s.ring[lg_s.ring_head++ % lg_s.ring_cap];
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
			lg_s.misrouted++;
		} else if (seq == c->cycle && !c->cycle_got) {
			c->cycle_got = 1;
			lg_s.cycles_done++;
			lat_push(&lg_s.lat, &lg_s.nlat, &lg_s.caplat, now_us - t_pub_us);
			lat_push(&lg_s.cyc, &lg_s.ncyc, &lg_s.capcyc,
				 now_us - c->cycle_t0);
		} else {
			lg_s.dups++;
		}
		return;
	}
	if (seq >= (uint32_t)lg_s.total_rounds) {
		lg_s.stray++;
		return;
	}
	uint8_t *r = &lg_s.recv[(size_t)c->idx * (size_t)lg_s.total_rounds + seq];
	if (*r < 255)
		(*r)++;
	if (*r > 1) {
		lg_s.dups++;
		return;
	}
	lg_s.unique++;
	lg_s.round_recv[seq]++;
	if (now_us > lg_s.round_last_recv[seq])
		lg_s.round_last_recv[seq] = now_us;
	if (lg_o.scenario != LG_FANOUT && dest != c->queue)
		lg_s.misrouted++;
	int t = lg_sub_target(c);
	lg_s.tgt_unique[t]++;
	if (seq >= 1) {
		lat_push(&lg_s.lat, &lg_s.nlat, &lg_s.caplat, now_us - t_pub_us);
		if (lg_o.nsubs > 1)
			lat_push(&lg_s.tgt_lat[t], &lg_s.tgt_nlat[t],
				 &lg_s.tgt_caplat[t], now_us - t_pub_us);
		lg_s.window_msgs++;
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

/* Publisher connections open to a subscriber port (Nchan's one port, or
 * a --sub node's when --pub names the same): sock_diag counts them too. */
static int pubs_open_on_sub_port(void)
{
	int same = 0;
	for (int t = 0; t < lg_o.nsubs; t++)
		same |= lg_o.pub_port == lg_o.subs[t].port &&
			lg_o.pub_ip == lg_o.subs[t].ip;
	if (!same)
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
	lg_s.alive = count_alive();
	if (lg_o.transport != LG_LP) {
		lg_s.held_final = lg_r.held;
		lg_s.hold_check = "stream-head";
		return lg_r.held >= lg_s.alive;
	}
	if (lg_r.lp_waiting < lg_s.alive)
		return 0;
	if (now - lg_s.t_last_diag < 10000)
		return 0;
	lg_s.t_last_diag = now;
	long est, unread;
	/* the dump costs the generator CPU that is not load generation: it
	 * is kept out of the generator's figure and reported on its own */
	double c0 = lg_self_cpu_s();
	int rc = 0;
	est = unread = 0;
	for (int t = 0; t < lg_o.nsubs && rc == 0; t++) {
		/* every node's side of its connections (distinct ports) */
		long e1, u1;
		rc = lg_diag_count(lg_o.subs[t].port, &e1, &u1);
		est += e1;
		unread += u1;
	}
	double dc = lg_self_cpu_s() - c0;
	lg_s.diag_cpu_s += dc;
	if (lg_s.window_open)
		lg_s.diag_cpu_win_s += dc;
	lg_s.diag_calls++;
	if (rc < 0) {
		lg_s.hold_check = "settle-only";
		lg_s.held_final = lg_r.lp_waiting;
		return 1;
	}
	lg_s.hold_check = "sock_diag";
	est -= pubs_open_on_sub_port();
	lg_s.last_est = est;
	lg_s.last_unread = unread;
	lg_s.held_final = (int)(est < lg_s.alive ? est : lg_s.alive);
	return est >= lg_s.alive && unread == 0;
}

/* The server's figures (all --pid) and Redis's part (--redis-pid). */
static void procs_read(struct lg_pstat *all, struct lg_pstat *redis)
{
	lg_proc_read(lg_o.pids, lg_o.npids, all);
	lg_proc_read(lg_o.redis_pids, lg_o.nredis_pids, redis);
}

static void window_begin(void)
{
	procs_read(&lg_s.ps_w0, &lg_s.rs_w0);
	lg_s.gen_w0 = lg_self_cpu_s();
	lg_s.t_w0 = lg_now_us();
	lg_s.window_open = 1;
}

static void window_end(void)
{
	if (!lg_s.window_open)
		return;
	procs_read(&lg_s.ps_w1, &lg_s.rs_w1);
	lg_s.gen_w1 = lg_self_cpu_s();
	lg_s.t_w1 = lg_now_us();
	lg_s.window_open = 0;
}

static void round_start(int64_t now)
{
	int r = lg_s.cur_round;
	if (r == 1)
		window_begin();
	lg_s.next_q = 0;
	lg_s.njobs_q = lg_o.scenario == LG_FANOUT ? 1u : (uint32_t)lg_o.n;
	lg_s.alive = count_alive();
	lg_s.t_until = now + lg_o.round_timeout_ms * 1000LL;
	lg_s.phase = LG_PH_ROUND;
	pubs_kick();
}

static void step_rounds(int64_t now)
{
	switch (lg_s.phase) {
	case LG_PH_CONNECT: {
		/* open in bursts so that the listen backlogs do not overflow */
		int dead = 0;
		for (int i = 0; i < lg_s.opened; i++)
			dead += lg_r.subs[i].dead;
		int pending = lg_s.opened - dead -
			      (lg_o.transport == LG_LP ? lg_r.lp_waiting
						       : lg_r.held);
		for (int k = 0; k < 256 && lg_s.opened < lg_o.n && pending < 1024;
		     k++, pending++) {
			struct lg_conn *c = &lg_r.subs[lg_s.opened++];
			if (lg_sub_open(c) < 0)
				c->dead = 1;
		}
		/* connecting and holding share one deadline, set in main() */
		if (lg_s.opened == lg_o.n || now > lg_s.t_until)
			lg_s.phase = LG_PH_HOLD;
		break;
	}
	case LG_PH_HOLD:
		if (all_held(now) || now > lg_s.t_until) {
			lg_s.hold_timed_out = now > lg_s.t_until;
			if (lg_s.hold_timed_out)
				fprintf(stderr,
					"cbx-loadgen: not all held in time: %d "
					"of %d held or polls sent, server side: "
					"%ld established, %ld with unread bytes\n",
					lg_o.transport == LG_LP ? lg_r.lp_waiting
								: lg_r.held,
					lg_s.alive, lg_s.last_est, lg_s.last_unread);
			lg_s.t_held = now;
			lg_s.phase = LG_PH_SETTLE;
			lg_s.t_until = now + lg_o.settle_ms * 1000LL;
		}
		break;
	case LG_PH_SETTLE:
		if (now < lg_s.t_until)
			break;
		procs_read(&lg_s.ps_held, &lg_s.rs_held);
		lg_s.tcp_held = lg_kernel_tcp_mem_kb();
		lg_s.slab_held = lg_kernel_slab_kb();
		lg_s.cur_round = 0;
		if (lg_s.total_rounds == 0) {
			lg_s.phase = LG_PH_DONE;
			break;
		}
		round_start(now);
		break;
	case LG_PH_ROUND: {
		int r = lg_s.cur_round;
		long want = lg_s.alive;
		int published = lg_s.next_q >= lg_s.njobs_q && lg_r.pub_inflight == 0;
		if (published && !lg_s.round_pub_done[r])
			lg_s.round_pub_done[r] = lg_r.pub_last_us;
		int got_all = lg_s.round_recv[r] >= want;
		if (!(published && got_all) && now < lg_s.t_until)
			break;
		if (now >= lg_s.t_until) {
			lg_s.round_timeouts++;
			lg_s.timeouts_in_row++;
			fprintf(stderr,
				"cbx-loadgen: round %d timed out: %ld of %ld "
				"delivered, publish %s\n",
				r, lg_s.round_recv[r], want,
				published ? "done" : "unfinished");
		}
		else
			lg_s.timeouts_in_row = 0;
		if (lg_s.timeouts_in_row >= 2) {
			/* the server has stopped delivering; more rounds would
			 * only burn the time budget */
			lg_s.error = "two rounds in a row timed out";
			window_end();
			lg_s.phase = LG_PH_DRAIN;
			lg_s.t_until = now + 300000;
		} else if (r == lg_s.total_rounds - 1) {
			window_end();
			lg_s.phase = LG_PH_DRAIN;
			lg_s.t_until = now + 300000;
		} else {
			lg_s.cur_round++;
			lg_s.phase = LG_PH_REHOLD;
			lg_s.t_until = now + 10000000LL;
			lg_s.t_hold0 = now;
		}
		break;
	}
	case LG_PH_REHOLD:
		if (all_held(now) || now > lg_s.t_until) {
			if (now > lg_s.t_until && !lg_s.hold_timed_out) {
				lg_s.hold_timed_out = 1;
				fprintf(stderr,
					"cbx-loadgen: before round %d, not all "
					"held after 10 s: %d of %d polls sent, "
					"server side: %ld established, %ld with "
					"unread bytes\n",
					lg_s.cur_round, lg_r.lp_waiting, lg_s.alive,
					lg_s.last_est, lg_s.last_unread);
			}
			if (now - lg_s.t_hold0 < lg_o.gap_ms * 1000LL &&
			    now <= lg_s.t_until)
				break;
			round_start(now);
		}
		break;
	case LG_PH_DRAIN:
		if (now >= lg_s.t_until)
			lg_s.phase = LG_PH_DONE;
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
	int exhausted = lg_s.pub_next >= lg_o.pub_messages || now >= lg_s.pub_until;
	if (exhausted && lg_r.pub_inflight == 0) {
		window_end();
		lg_s.phase = LG_PH_DONE;
	}
	if (now > lg_s.pub_until + 10000000LL) {
		lg_s.error = "publish answers timed out";
		window_end();
		lg_s.phase = LG_PH_DONE;
	}
}

static void step_churn(int64_t now)
{
	if (!lg_s.stopping &&
	    (now >= lg_s.churn_until || lg_s.cycles_started >= lg_o.max_cycles)) {
		lg_s.stopping = 1;
		lg_s.t_until = now + 5000000;
	}
	int active = 0;
	int opens = 0;
	int check_timeouts = now - lg_s.t_last_diag > 100000;
	if (check_timeouts)
		lg_s.t_last_diag = now;
	for (int i = 0; i < lg_r.nsubs; i++) {
		struct lg_conn *c = &lg_r.subs[i];
		if (c->dead)
			continue;
		if (c->fd >= 0 && !c->cycle_got) {
			active++;
			if (check_timeouts && now - c->cycle_t0 > 5000000) {
				/* no message in 5 s: lost; give the slot up */
				lg_s.cycles_lost++;
				c->dead = 1;
				lg_conn_close(c);
			}
			continue;
		}
		if (c->fd >= 0)
			lg_conn_close(c);
		if (lg_s.stopping || opens >= 256 ||
		    lg_s.cycles_started >= lg_o.max_cycles)
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
		lg_s.cycles_started++;
		lg_s.ring[lg_s.ring_tail++ % lg_s.ring_cap] = (uint32_t)i;
	}
	if (opens)
		pubs_kick();
	if (lg_s.stopping && (active == 0 || now > lg_s.t_until)) {
		lg_s.cycles_lost += active;
		window_end();
		lg_s.phase = LG_PH_DONE;
	}
}

int main(int argc, char **argv)
{
	if (lg_opts_parse(argc, argv) < 0)
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
	lg_s.total_rounds = lg_o.rounds + 1;
	if (lg_o.scenario == LG_IDLE && lg_o.rounds == 0)
		lg_s.total_rounds = 0;
	size_t tr = (size_t)(lg_s.total_rounds + 1);
	lg_s.recv = calloc((size_t)nsubs * tr + 1, 1);
	lg_s.round_recv = calloc(tr, sizeof *lg_s.round_recv);
	lg_s.round_first_pub = calloc(tr, sizeof(int64_t));
	lg_s.round_last_recv = calloc(tr, sizeof(int64_t));
	lg_s.round_pub_done = calloc(tr, sizeof(int64_t));
	lg_s.ring_cap = (size_t)nsubs + 1;
	lg_s.ring = calloc(lg_s.ring_cap, sizeof *lg_s.ring);
	if (!lg_s.recv || !lg_s.round_recv || !lg_s.round_first_pub ||
	    !lg_s.round_last_recv || !lg_s.round_pub_done || !lg_s.ring)
		return 1;

	procs_read(&lg_s.ps_base, &lg_s.rs_base);
	lg_s.tcp_base = lg_kernel_tcp_mem_kb();
	lg_s.slab_base = lg_kernel_slab_kb();
	lg_s.t_start = lg_now_us();
	lg_s.t_deadline = lg_s.t_start + lg_o.max_seconds * 1000000LL;
	lg_r.running = 1;
	switch (lg_o.scenario) {
	case LG_PUBLISH:
		lg_s.phase = LG_PH_PUBLISH;
		lg_s.pub_until = lg_s.t_start + (int64_t)(lg_o.duration_s * 1e6);
		break;
	case LG_CHURN:
		lg_s.phase = LG_PH_CHURN;
		lg_s.churn_until = lg_s.t_start + (int64_t)(lg_o.duration_s * 1e6);
		window_begin();
		break;
	default:
		lg_s.phase = LG_PH_CONNECT;
		lg_s.t_until = lg_s.t_start + 20000000LL + lg_o.n * 2000LL;
		break;
	}
	static struct epoll_event evs[1024];
	while (lg_s.phase != LG_PH_DONE) {
		int nev = epoll_wait(lg_r.epfd, evs, 1024, 2);
		if (nev < 0 && errno != EINTR) {
			lg_s.error = "epoll_wait failed";
			break;
		}
		for (int i = 0; i < nev; i++)
			lg_conn_event(evs[i].data.ptr, evs[i].events);
		int64_t now = lg_now_us();
		if (now > lg_s.t_deadline) {
			lg_s.error = "run exceeded --max-seconds";
			window_end();
			break;
		}
		if (lg_s.phase == LG_PH_PUBLISH)
			step_publish(now);
		else if (lg_s.phase == LG_PH_CHURN)
			step_churn(now);
		else
			step_rounds(now);
	}
	lg_r.running = 0;
	procs_read(&lg_s.ps_end, &lg_s.rs_end);
	if (lg_o.scenario == LG_CHURN || lg_o.scenario == LG_PUBLISH) {
		lg_s.ps_held = lg_s.ps_end;
		lg_s.rs_held = lg_s.rs_end;
		lg_s.tcp_held = lg_kernel_tcp_mem_kb();
		lg_s.slab_held = lg_kernel_slab_kb();
	}
	double wall = (lg_now_us() - lg_s.t_start) / 1e6;
	lg_report(wall);
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
