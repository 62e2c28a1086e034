/* The JSON line cbx-loadgen prints at the end of a run: percentiles,
 * losses, throughput, CPU and memory, from lg_s and lg_r. Formats only. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "lg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>


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


void lg_report(double wall_s)
{
	int rounds_sc = lg_o.scenario == LG_MAILBOX ||
			lg_o.scenario == LG_FANOUT || lg_o.scenario == LG_IDLE;
	long expected = 0, missing = 0;
	if (rounds_sc) {
		expected = (long)lg_o.n * lg_s.total_rounds;
		missing = expected - lg_s.unique;
	} else if (lg_o.scenario == LG_CHURN) {
		expected = lg_s.cycles_started;
		missing = lg_s.cycles_lost;
	}
	double srv_cpu = lg_s.ps_w1.cpu_s - lg_s.ps_w0.cpu_s;
	double srv_sys = lg_s.ps_w1.sys_s - lg_s.ps_w0.sys_s;
	double gen_cpu = lg_s.gen_w1 - lg_s.gen_w0 - lg_s.diag_cpu_win_s;
	long msgs = rounds_sc ? lg_s.window_msgs
		    : lg_o.scenario == LG_CHURN ? lg_s.cycles_done
						: lg_r.pub_ok_msgs;
	double per = msgs ? 1e6 / (double)msgs : 0;
	int n = lg_o.n > 0 ? lg_o.n : 1;

	printf("{\"tool\":\"cbx-loadgen\",\"server\":\"%s\",\"mode\":",
	       lg_o.server == LG_CBX ? "cometboxd" : "nchan");
	print_json_str(lg_o.mode);
	printf(",\"label\":");
	print_json_str(lg_o.label);
	printf(",\"sub_targets\":%d,\"pub_port\":%u", lg_o.nsubs,
	       lg_o.pub_port);
	printf(",\"scenario\":\"%s\",\"transport\":\"%s\",\"n\":%d,"
	       "\"rounds\":%d,\"batch\":%d,\"pub_conns\":%d,\"src_addrs\":%d,",
	       lg_scenario_names[lg_o.scenario], lg_transport_names[lg_o.transport],
	       lg_o.scenario == LG_PUBLISH ? 0 : lg_o.n, lg_o.rounds,
	       lg_o.batch, lg_o.pub_conns, lg_o.src_addrs);
	if (lg_o.scenario != LG_PUBLISH && lg_o.scenario != LG_CHURN)
		printf("\"held\":%d,\"hold_ms\":%.1f,\"hold_check\":\"%s\","
		       "\"hold_timed_out\":%s,",
		       lg_s.held_final, (lg_s.t_held - lg_s.t_start) / 1000.0,
		       lg_s.hold_check ? lg_s.hold_check : "none",
		       lg_s.hold_timed_out ? "true" : "false");
	printf("\"expected\":%ld,\"delivered\":%ld,\"missing\":%ld,"
	       "\"duplicates\":%ld,\"misrouted\":%ld,\"stray\":%ld,"
	       "\"gaps\":%ld,\"kicks\":%ld,",
	       expected,
	       rounds_sc ? lg_s.unique : lg_s.cycles_done, missing, lg_s.dups,
	       lg_s.misrouted, lg_s.stray, lg_r.gaps, lg_r.kicks);
	print_dist("lat_ms", lg_s.lat, lg_s.nlat, 1e-3);
	putchar(',');
	if (rounds_sc && lg_s.total_rounds > 1) {
		uint32_t rt[4096];
		size_t nr = 0;
		double pub_s = 0;
		long pub_msgs = 0;
		for (int r = 1; r < lg_s.total_rounds && nr < 4096; r++) {
			/* a round nobody received has no completion time (its
			 * messages count as missing) */
			if (!lg_s.round_first_pub[r] ||
			    lg_s.round_last_recv[r] < lg_s.round_first_pub[r])
				continue;
			rt[nr++] = (uint32_t)(lg_s.round_last_recv[r] -
					      lg_s.round_first_pub[r]);
			if (lg_s.round_pub_done[r]) {
				pub_s += (lg_s.round_pub_done[r] -
					  lg_s.round_first_pub[r]) / 1e6;
				pub_msgs += lg_o.scenario == LG_FANOUT ? 1
								       : lg_o.n;
			}
		}
		print_dist("round_ms", rt, nr, 1e-3);
		printf(",\"round_timeouts\":%ld,\"round_publish_msgs_per_s\":%.0f,",
		       lg_s.round_timeouts, pub_s > 0 ? pub_msgs / pub_s : 0);
	}
	if (lg_o.scenario == LG_CHURN) {
		double d = (lg_s.t_w1 - lg_s.t_w0) / 1e6;
		print_dist("cycle_ms", lg_s.cyc, lg_s.ncyc, 1e-3);
		printf(",\"cycles\":%ld,\"cycles_per_s\":%.0f,"
		       "\"concurrency\":%d,",
		       lg_s.cycles_done,
		       d > 0 ? lg_s.cycles_done / d : 0,
		       lg_o.n);
	}
	double pub_s = (lg_r.pub_last_us - lg_r.pub_first_us) / 1e6;
	printf("\"publish\":{\"requests\":%ld,\"messages_ok\":%ld,"
	       "\"messages_failed\":%ld,\"msgs_per_s\":%.0f},",
	       lg_r.pub_requests, lg_r.pub_ok_msgs, lg_r.pub_err_msgs,
	       lg_o.scenario == LG_PUBLISH && pub_s > 0
		       ? lg_r.pub_ok_msgs / pub_s
		       : 0);
	/* publish round trips: POST built to its answer, µs */
	print_dist("pub_rtt_ms", lg_r.pub_rtt, lg_r.npub_rtt, 1e-3);
	putchar(',');
	printf("\"srv\":{\"pids\":%d,\"cpu_ms\":%.1f,\"cpu_us_per_msg\":%.2f,"
	       "\"sys_ms\":%.1f,\"sys_us_per_msg\":%.2f,\"cpu_ms_total\":%.1f,"
	       "\"rss_kb_base\":%ld,\"rss_kb_held\":%ld,\"rss_kb_end\":%ld,"
	       "\"pss_kb_base\":%ld,\"pss_kb_held\":%ld,\"pss_kb_end\":%ld,"
	       "\"rss_b_per_sub\":%.0f,\"pss_b_per_sub\":%.0f,"
	       "\"threads_held\":%ld},",
	       lg_o.npids, srv_cpu * 1e3, srv_cpu * per, srv_sys * 1e3,
	       srv_sys * per,
	       (lg_s.ps_end.cpu_s - lg_s.ps_base.cpu_s) * 1e3, lg_s.ps_base.rss_kb,
	       lg_s.ps_held.rss_kb, lg_s.ps_end.rss_kb, lg_s.ps_base.pss_kb,
	       lg_s.ps_held.pss_kb, lg_s.ps_end.pss_kb,
	       (lg_s.ps_held.rss_kb - lg_s.ps_base.rss_kb) * 1024.0 / n,
	       (lg_s.ps_held.pss_kb - lg_s.ps_base.pss_kb) * 1024.0 / n,
	       lg_s.ps_held.threads);
	if (lg_o.nredis_pids) {
		/* Redis's share, already counted in srv above */
		double r_cpu = lg_s.rs_w1.cpu_s - lg_s.rs_w0.cpu_s;
		double r_sys = lg_s.rs_w1.sys_s - lg_s.rs_w0.sys_s;
		printf("\"redis\":{\"pids\":%d,\"cpu_ms\":%.1f,"
		       "\"cpu_us_per_msg\":%.2f,\"sys_ms\":%.1f,"
		       "\"cpu_share\":%.3f,\"cpu_ms_total\":%.1f,"
		       "\"rss_kb_base\":%ld,\"rss_kb_held\":%ld,"
		       "\"rss_kb_end\":%ld,\"pss_kb_base\":%ld,"
		       "\"pss_kb_held\":%ld,\"pss_kb_end\":%ld},",
		       lg_o.nredis_pids, r_cpu * 1e3, r_cpu * per, r_sys * 1e3,
		       srv_cpu > 0 ? r_cpu / srv_cpu : 0,
		       (lg_s.rs_end.cpu_s - lg_s.rs_base.cpu_s) * 1e3,
		       lg_s.rs_base.rss_kb, lg_s.rs_held.rss_kb,
		       lg_s.rs_end.rss_kb, lg_s.rs_base.pss_kb,
		       lg_s.rs_held.pss_kb, lg_s.rs_end.pss_kb);
	}
	if (lg_o.nsubs > 1 && lg_r.nsubs > 0) {
		/* each node's subscribers: how many, what they got, and their
		 * latency (a node woken through Redis against the one that took
		 * the publish) */
		printf("\"targets\":[");
		for (int t = 0; t < lg_o.nsubs; t++) {
			int subs = lg_r.nsubs / lg_o.nsubs +
				   (t < lg_r.nsubs % lg_o.nsubs);
			printf("%s{\"port\":%u,\"subs\":%d,\"delivered\":%ld,",
			       t ? "," : "", lg_o.subs[t].port, subs,
			       lg_s.tgt_unique[t]);
			print_dist("lat_ms", lg_s.tgt_lat[t], lg_s.tgt_nlat[t],
				   1e-3);
			putchar('}');
		}
		printf("],");
	}
	printf("\"kernel\":{\"tcp_mem_kb_delta\":%ld,\"slab_kb_delta\":%ld,"
	       "\"tcp_b_per_sub\":%.0f,\"slab_b_per_sub\":%.0f},",
	       lg_s.tcp_held - lg_s.tcp_base, lg_s.slab_held - lg_s.slab_base,
	       (lg_s.tcp_held - lg_s.tcp_base) * 1024.0 / n,
	       (lg_s.slab_held - lg_s.slab_base) * 1024.0 / n);
	printf("\"gen\":{\"cpu_ms\":%.1f,\"cpu_us_per_msg\":%.2f,"
	       "\"cpu_ms_total\":%.1f,\"hold_check_cpu_ms\":%.1f,"
	       "\"hold_checks\":%ld},",
	       gen_cpu * 1e3, gen_cpu * per, lg_self_cpu_s() * 1e3,
	       lg_s.diag_cpu_s * 1e3, lg_s.diag_calls);
	long errors = lg_r.err_connect + lg_r.err_http + lg_r.err_proto +
		      lg_r.err_closed;
	printf("\"errors\":{\"connect\":%ld,\"http\":%ld,\"proto\":%ld,"
	       "\"closed\":%ld},\"reconnects\":%ld,\"stream_ends\":%ld,"
	       "\"lp_answers\":%ld,\"lp_empty\":%ld,\"wall_s\":%.2f,",
	       lg_r.err_connect, lg_r.err_http, lg_r.err_proto,
	       lg_r.err_closed, lg_r.sub_reconnects, lg_r.stream_ends,
	       lg_r.lp_answers, lg_r.lp_empty, wall_s);
	if (lg_o.transport == LG_WS)
		printf("\"ws\":{\"text_frames\":%ld,\"pings\":%ld,"
		       "\"closes\":%ld,\"acks\":%s},",
		       lg_r.ws_frames, lg_r.ws_pings, lg_r.ws_closes,
		       lg_o.ws_ack && lg_o.server == LG_CBX ? "true" : "false");
	int ok = !lg_s.error && missing == 0 && lg_s.dups == 0 && lg_s.misrouted == 0 &&
		 lg_s.stray == 0 && errors == 0 && lg_r.pub_err_msgs == 0 &&
		 (lg_o.scenario == LG_PUBLISH || lg_o.scenario == LG_CHURN ||
		  lg_s.held_final == lg_o.n) &&
		 !lg_s.hold_timed_out;
	printf("\"ok\":%s,\"error\":", ok ? "true" : "false");
	if (lg_s.error)
		print_json_str(lg_s.error);
	else if (lg_s.hold_timed_out)
		print_json_str("not every subscriber was held in time: some "
			       "request sat unanswered or unread on the server");
	else
		printf("null");
	printf("}\n");
	fflush(stdout);
}
