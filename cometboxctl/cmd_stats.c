/* cmd_stats.c - `cometboxctl stats`: the daemon at a glance. */
#include <string.h>
#include "ctl.h"

static void counter_row(struct ctl_table *t, const cJSON *counters, const cJSON *rates, const char *key,
                        const char *label)
{
    char total[32], rate[32];
    const char *cells[3] = { label, total, rate };

    snprintf(total, sizeof total, "%.0f", ctl_num(counters, key));
    snprintf(rate, sizeof rate, "%.2f", ctl_num(rates, key));
    ctl_table_add(t, cells);
}

/* "refused  max-connections 3, too-large 1" (the reasons that happened), or "refused  0". */
static void print_refused(const cJSON *refused)
{
    const cJSON *v;
    bool any = false;

    printf("\nrefused     ");
    cJSON_ArrayForEach(v, refused) {
        if (!cJSON_IsNumber(v) || v->valuedouble == 0)
            continue;
        printf("%s %s %.0f", any ? "," : "", v->string, v->valuedouble);
        any = true;
    }
    printf("%s\n", any ? "" : " 0");
}

/* "journal  off", or its state, sync mode and files (docs/ADMIN.md) */
static void print_journal(const cJSON *j)
{
    char jb[32], sb[32];
    const char *state = ctl_str(j, "state");

    if (j == NULL || strcmp(state, "off") == 0) {
        printf("journal      off (no state-dir: messages live in memory only)\n");
        return;
    }
    ctl_fmt_size(jb, sizeof jb, ctl_num(j, "bytes"));
    ctl_fmt_size(sb, sizeof sb, ctl_num(j, "snapshot_bytes"));
    if (strcmp(state, "failing") == 0)
        printf("journal      FAILING: %s (%.0f publishes refused; writing is retried)\n", ctl_str(j, "error"),
               ctl_num(j, "refused_publishes"));
    else
        printf("journal      ok, sync %s, journal.%.0f %s, snapshot %s, %.0f compactions\n", ctl_str(j, "sync"),
               ctl_num(j, "generation"), jb, sb, ctl_num(j, "compactions"));
}

/* "broker       memory", or Redis's state (docs/ADMIN.md) */
static void print_broker(const cJSON *b)
{
    if (b == NULL || strcmp(ctl_str(b, "type"), "redis") != 0) {
        printf("broker       memory (this node alone)\n");
        return;
    }
    if (strcmp(ctl_str(b, "state"), "up") == 0)
        printf("broker       redis up (%s), %.0f queues mirrored, %.0f reconnects, %.0f errors\n", ctl_str(b, "url"),
               ctl_num(b, "mirrored"), ctl_num(b, "reconnects"), ctl_num(b, "errors"));
    else
        printf("broker       redis DOWN (%s): %s; publishes get 503, reconnecting\n", ctl_str(b, "url"),
               ctl_str(b, "last_error"));
}

static void print_stats(const cJSON *r)
{
    const cJSON *conn = ctl_get(r, "connections"), *held = ctl_get(r, "held");
    const cJSON *counters = ctl_get(r, "counters"), *rates = ctl_get(r, "rates");
    char up[32], mem[32], pb[32], sb[32], window[32], rate_head[64];
    const char *head[3] = { "", "total", rate_head };
    struct ctl_table *t;

    ctl_fmt_duration(up, sizeof up, ctl_num(r, "uptime_us"));
    ctl_fmt_size(mem, sizeof mem, ctl_num(r, "memory_rss_bytes"));
    ctl_fmt_size(pb, sizeof pb, ctl_num(r, "pending_bytes"));
    ctl_fmt_size(sb, sizeof sb, ctl_num(r, "stored_bytes"));
    printf("cometboxd %s (pid %.0f, threads %s), up %s, memory %s\n", ctl_str(r, "version"), ctl_num(r, "pid"),
           ctl_str(r, "threads"), up, mem);
    printf("connections  browser %.0f, publish %.0f, admin %.0f\n", ctl_num(conn, "browser"),
           ctl_num(conn, "publish"), ctl_num(conn, "admin"));
    printf("held         %.0f (long-poll %.0f, stream %.0f, sse %.0f, ws %.0f)\n", ctl_num(held, "total"),
           ctl_num(held, "long-poll"), ctl_num(held, "stream"), ctl_num(held, "sse"), ctl_num(held, "ws"));
    printf("queues       %.0f\n", ctl_num(r, "queues"));
    printf("pending      %.0f messages, %s\n", ctl_num(r, "pending_messages"), pb);
    printf("stored       %.0f messages, %s\n", ctl_num(r, "stored_messages"), sb);
    print_journal(ctl_get(r, "journal"));
    print_broker(ctl_get(r, "broker"));
    printf("\n");
    ctl_fmt_duration(window, sizeof window, ctl_num(rates, "window_us"));
    snprintf(rate_head, sizeof rate_head, "per second (last %s)", window);
    t = ctl_table_new("lrr", head);
    counter_row(t, counters, rates, "published", "published");
    counter_row(t, counters, rates, "delivered", "delivered");
    counter_row(t, counters, rates, "acknowledged", "acknowledged");
    counter_row(t, counters, rates, "expired", "expired");
    counter_row(t, counters, rates, "dropped", "dropped");
    counter_row(t, counters, rates, "flushed", "flushed");
    counter_row(t, counters, rates, "publish_requests", "publish requests");
    counter_row(t, counters, rates, "publish_errors", "publish errors");
    counter_row(t, counters, rates, "rejected_connections", "rejected connections");
    ctl_table_print(t, stdout);
    ctl_table_free(t);
    print_refused(ctl_get(r, "refused"));
}

int ctl_cmd_stats(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    struct cbx_admin_response resp;
    char *pos[1];
    int npos, rc;

    if ((rc = ctl_parse(c, cmd, argc, argv, NULL, pos, 0, &npos)) >= 0)
        return rc;
    if ((rc = ctl_call(c, "stats", NULL, &resp)) != CTL_EXIT_OK)
        return rc;
    if (c->json)
        ctl_print_json(resp.result);
    else
        print_stats(resp.result);
    cbx_admin_response_free(&resp);
    return CTL_EXIT_OK;
}
