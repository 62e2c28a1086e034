/* What cbx-loadgen reads from the kernel: the server's CPU time and memory
 * from /proc/PID, its own CPU time, kernel-wide socket memory, and the
 * server side of our connections through sock_diag (to tell when held
 * long-polls have been read by the server). Read-only; changes nothing. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "lg.h"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static int read_small_file(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, cap - 1, f);
	fclose(f);
	buf[n] = '\0';
	return 0;
}

/* Value in kB of a "Key:   123 kB" line, or -1. */
static long field_kb(const char *text, const char *key)
{
	const char *p = strstr(text, key);
	if (!p)
		return -1;
	return strtol(p + strlen(key), NULL, 10);
}

int lg_proc_read(const pid_t *pids, int npids, struct lg_pstat *out)
{
	memset(out, 0, sizeof *out);
	long tck = sysconf(_SC_CLK_TCK);
	char path[64], buf[4096];
	for (int i = 0; i < npids; i++) {
		snprintf(path, sizeof path, "/proc/%d/stat", (int)pids[i]);
		if (read_small_file(path, buf, sizeof buf) < 0)
			return -1;
		/* fields after the command name, which may hold spaces */
		char *p = strrchr(buf, ')');
		if (!p)
			return -1;
		unsigned long long ut = 0, st = 0;
		long nthreads = 0;
		/* p+2 is field 3 (state); utime is 14, stime 15, threads 20 */
		if (sscanf(p + 2,
			   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu"
			   " %*d %*d %*d %*d %ld",
			   &ut, &st, &nthreads) != 3)
			return -1;
		out->cpu_s += (double)(ut + st) / (double)tck;
		out->sys_s += (double)st / (double)tck;
		out->threads += nthreads;
		snprintf(path, sizeof path, "/proc/%d/status", (int)pids[i]);
		if (read_small_file(path, buf, sizeof buf) < 0)
			return -1;
		long rss = field_kb(buf, "VmRSS:");
		out->rss_kb += rss > 0 ? rss : 0;
		snprintf(path, sizeof path, "/proc/%d/smaps_rollup",
			 (int)pids[i]);
		if (read_small_file(path, buf, sizeof buf) == 0) {
			long pss = field_kb(buf, "\nPss:");
			out->pss_kb += pss > 0 ? pss : 0;
		}
	}
	out->ok = npids > 0;
	return 0;
}

double lg_self_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

long lg_kernel_tcp_mem_kb(void)
{
	char buf[4096];
	if (read_small_file("/proc/net/sockstat", buf, sizeof buf) < 0)
		return -1;
	const char *p = strstr(buf, "\nTCP:");
	if (!p)
		return -1;
	p = strstr(p, " mem ");
	if (!p)
		return -1;
	return strtol(p + 5, NULL, 10) * (sysconf(_SC_PAGESIZE) / 1024);
}

long lg_kernel_slab_kb(void)
{
	char buf[8192];
	if (read_small_file("/proc/meminfo", buf, sizeof buf) < 0)
		return -1;
	return field_kb(buf, "\nSlab:");
}

int lg_diag_count(uint16_t port, long *established, long *unread)
{
	*established = *unread = 0;
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC,
			NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -1;
	/* The request carries a filter, sport >= port && sport <= port, so
	 * that the kernel fills messages only for the server's sockets (it
	 * still walks all of them). Jump offsets as in iproute2's ss: "no"
	 * past the end (len + 4) rejects. */
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
		struct nlattr attr;
		struct inet_diag_bc_op bc[4];
	} req;
	memset(&req, 0, sizeof req);
	req.nlh.nlmsg_len = sizeof req;
	req.attr.nla_len = (uint16_t)(sizeof req.attr + sizeof req.bc);
	req.attr.nla_type = INET_DIAG_REQ_BYTECODE;
	req.bc[0] = (struct inet_diag_bc_op){INET_DIAG_BC_S_GE, 8, 20};
	req.bc[1] = (struct inet_diag_bc_op){0, 0, port};
	req.bc[2] = (struct inet_diag_bc_op){INET_DIAG_BC_S_LE, 8, 12};
	req.bc[3] = (struct inet_diag_bc_op){0, 0, port};
	req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.r.sdiag_family = AF_INET;
	req.r.sdiag_protocol = IPPROTO_TCP;
	req.r.idiag_states = 1u << 1; /* TCP_ESTABLISHED */
	req.r.id.idiag_sport = htons(port);
	int rc = -1;
	if (send(fd, &req, sizeof req, 0) < 0)
		goto out;
	static char buf[65536];
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof buf, 0);
		if (n <= 0)
			goto out;
		struct nlmsghdr *h = (struct nlmsghdr *)buf;
		for (; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE) {
				rc = 0;
				goto out;
			}
			if (h->nlmsg_type == NLMSG_ERROR)
				goto out;
			struct inet_diag_msg *m = NLMSG_DATA(h);
			if (ntohs(m->id.idiag_sport) != port)
				continue;
			(*established)++;
			if (m->idiag_rqueue > 0)
				(*unread)++;
		}
	}
out:
	close(fd);
	return rc;
}
