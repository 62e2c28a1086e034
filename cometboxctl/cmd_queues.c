/* cmd_queues.c - `cometboxctl queues [PATTERN]`: one row per queue. */
#include "ctl.h"

static void print_queues(const cJSON *r, const char *pattern)
{
    const char *head[7] = { "QUEUE", "PENDING", "STORED", "BYTES", "WAITING", "OLDEST", "LAST PUBLISH" };
    const cJSON *qs = ctl_get(r, "queues"), *q;
    double now = ctl_num(r, "now_us");
    struct ctl_table *t;

    if (cJSON_GetArraySize(qs) == 0) {
        if (pattern != NULL)
            printf("no queues match %s\n", pattern);
        else
            printf("no queues\n");
        return;
    }
    t = ctl_table_new("lrrrrll", head);
    cJSON_ArrayForEach(q, qs) {
        char pending[24], stored[24], bytes[24], waiting[24], oldest[32] = "-", last[40] = "-";
        const char *cells[7] = { ctl_str(q, "name"), pending, stored, bytes, waiting, oldest, last };
        snprintf(pending, sizeof pending, "%.0f", ctl_num(q, "pending"));
        snprintf(stored, sizeof stored, "%.0f", ctl_num(q, "stored"));
        ctl_fmt_size(bytes, sizeof bytes, ctl_num(q, "bytes"));
        snprintf(waiting, sizeof waiting, "%.0f", ctl_num(q, "waiting"));
        if (cJSON_IsNumber(ctl_get(q, "oldest_us")))
            ctl_fmt_duration(oldest, sizeof oldest, now - ctl_num(q, "oldest_us"));
        if (cJSON_IsNumber(ctl_get(q, "last_publish_us"))) {
            char d[32];
            ctl_fmt_duration(d, sizeof d, now - ctl_num(q, "last_publish_us"));
            snprintf(last, sizeof last, "%s ago", d);
        }
        ctl_table_add(t, cells);
    }
    ctl_table_print(t, stdout);
    ctl_table_free(t);
    if (cJSON_IsTrue(ctl_get(r, "truncated")))
        printf("(%d of %.0f queues shown; --limit N shows more)\n", cJSON_GetArraySize(qs), ctl_num(r, "total"));
}

int ctl_cmd_queues(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    return ctl_list_command(c, cmd, argc, argv, "pattern", print_queues);
}
