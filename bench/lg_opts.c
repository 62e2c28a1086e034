/* Command-line options of cbx-loadgen, into lg_o. Only parsing and
 * defaults; what the options do is in loadgen.c and lg_conn.c. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "lg.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

const char *const lg_scenario_names[] = {"mailbox", "fanout", "publish",
					 "idle", "churn"};
const char *const lg_transport_names[] = {"lp", "stream", "sse", "ws"};


static void usage(FILE *f)
{
	fprintf(f,
		"usage: cbx-loadgen --server cometboxd|nchan --sub HOST:PORT[,HOST:PORT..] [--pub HOST:PORT]\n"
		"         [--scenario mailbox|fanout|publish|idle|churn] [--transport lp|stream|sse|ws]\n"
		"         [-n N] [--rounds M] [--batch B] [--pub-conns P] [--pid PID[,PID..]]\n"
		"         [--redis-pid PID[,PID..]]\n"
		"         [--src-addrs S] [--settle-ms MS] [--gap-ms MS] [--round-timeout-ms MS]\n"
		"         [--messages K] [--queues Q] [--duration S] [--max-cycles C]\n"
		"         [--max-seconds S] [--label TEXT] [--mode TEXT] [--ws-ack]\n"
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

/* PID[,PID..] into a[], at most cap of them; -1 on a bad list. */
static int parse_pids(const char *s, pid_t *a, int *n, int cap)
{
	char *e;
	while (*s) {
		long pid = strtol(s, &e, 10);
		if (e == s || pid <= 0 || *n >= cap || (*e && *e != ','))
			return -1;
		a[(*n)++] = (pid_t)pid;
		s = *e == ',' ? e + 1 : e;
	}
	return 0;
}

/* HOST:PORT[,HOST:PORT..] into lg_o.subs; -1 on a bad list. */
static int parse_targets(const char *s)
{
	char one[96];
	while (*s) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		if (len >= sizeof one || lg_o.nsubs >= LG_MAX_TARGETS)
			return -1;
		memcpy(one, s, len);
		one[len] = '\0';
		struct lg_target *t = &lg_o.subs[lg_o.nsubs];
		if (parse_addr(one, &t->ip, &t->port) < 0)
			return -1;
		lg_o.nsubs++;
		s = comma ? comma + 1 : s + len;
	}
	return lg_o.nsubs ? 0 : -1;
}

static int pick(const char *v, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(v, names[i]))
			return i;
	return -1;
}

int lg_opts_parse(int argc, char **argv)
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
		{"mode", 1, 0, 10},	 {"ws-ack", 0, 0, 11},
		{"redis-pid", 1, 0, 12},
		{"help", 0, 0, 'h'},
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
			lg_o.nsubs = 0;
			if (parse_targets(optarg) < 0)
				goto bad;
			have_sub = 1;
			break;
		case 'P':
			if (parse_addr(optarg, &lg_o.pub_ip, &lg_o.pub_port) < 0)
				goto bad;
			have_pub = 1;
			break;
		case 'c':
			if ((v = pick(optarg, lg_scenario_names, 5)) < 0)
				goto bad;
			lg_o.scenario = (enum lg_scenario)v;
			break;
		case 't':
			if ((v = pick(optarg, lg_transport_names, 4)) < 0)
				goto bad;
			lg_o.transport = (enum lg_transport)v;
			break;
		case 'n': lg_o.n = atoi(optarg); break;
		case 'r': lg_o.rounds = atoi(optarg); break;
		case 'b': lg_o.batch = atoi(optarg); break;
		case 'k': lg_o.pub_conns = atoi(optarg); break;
		case 'a': lg_o.src_addrs = atoi(optarg); break;
		case 'p':
			if (parse_pids(optarg, lg_o.pids, &lg_o.npids, 16) < 0)
				goto bad;
			break;
		case 12:
			if (parse_pids(optarg, lg_o.redis_pids,
				       &lg_o.nredis_pids, 4) < 0)
				goto bad;
			break;
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
		case 11: lg_o.ws_ack = 1; break;
		case 'h': usage(stdout); exit(0);
		default: goto bad;
		}
	}
	if (!have_sub || optind != argc)
		goto bad;
	if (!have_pub) {
		lg_o.pub_ip = lg_o.subs[0].ip;
		lg_o.pub_port = lg_o.subs[0].port;
	}
	/* Redis's share is a part of the server's figures: each --redis-pid
	 * must be one of --pid */
	for (int i = 0; i < lg_o.nredis_pids; i++) {
		int found = 0;
		for (int j = 0; j < lg_o.npids; j++)
			found |= lg_o.pids[j] == lg_o.redis_pids[i];
		if (!found) {
			fprintf(stderr, "cbx-loadgen: --redis-pid %d is not in "
				"--pid\n", (int)lg_o.redis_pids[i]);
			goto bad;
		}
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
	if (lg_o.scenario == LG_CHURN &&
	    (lg_o.transport == LG_STREAM || lg_o.transport == LG_WS) &&
	    lg_o.server == LG_NCHAN)
		goto bad; /* Nchan's raw stream and its WebSocket frames carry
			   * no resumable id */
	lg_o.settle_ms = settle >= 0 ? settle
			 : lg_o.scenario == LG_IDLE ? 1000
						    : 100;
	/* queue names unique to this run: runs against one server (the smoke
	 * test) must not see each other's pending messages */
	uint32_t rnd;
	if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		rnd = (uint32_t)ts.tv_nsec ^ ((uint32_t)getpid() << 12);
	}
	snprintf(lg_o.tag, sizeof lg_o.tag, "q%08x", rnd);
	return 0;
bad:
	usage(stderr);
	return -1;
}
