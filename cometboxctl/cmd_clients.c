/* cmd_clients.c - `cometboxctl clients [QUEUE]`: one row per held request. */
#include <string.h>

#include "ctl.h"

static void print_clients(const cJSON *r, const char *queue)
{
    const char *head[6] = { "ID", "ADDRESS", "TRANSPORT", "QUEUES", "CURSOR", "CONNECTED" };
    const cJSON *cs = ctl_get(r, "clients"), *cl, *q;
    double now = ctl_num(r, "now_us");
    struct ctl_table *t;

    if (cJSON_GetArraySize(cs) == 0) {
        if (queue != NULL)
            printf("no clients on %s\n", queue);
        else
            printf("no clients\n");
        return;
    }
    t = ctl_table_new("rllllr", head);
    cJSON_ArrayForEach(cl, cs) {
        char id[24], queues[4096] = "", cursor[24],
            since[32] = "-";
        const char *cells[6] = { id, ctl_str(cl, "addr"), ctl_str(cl, "transport"), queues, cursor, since };
        size_t len = 0;
        snprintf(id, sizeof id, "%.0f", ctl_num(cl, "id"));
        cJSON_ArrayForEach(q, ctl_get(cl, "queues")) {
            if (cJSON_IsString(q) && len + strlen(q->valuestring) + 2 < sizeof queues)
                len += (size_t)snprintf(queues + len, sizeof queues - len, "%s%s", len ? "," : "", q->valuestring);
        }
        snprintf(cursor, sizeof cursor, "%.0f", ctl_num(cl, "cursor"));
        if (cJSON_IsNumber(ctl_get(cl, "since_us")))
            ctl_fmt_duration(since, sizeof since, now - ctl_num(cl, "since_us"));
        ctl_table_add(t, cells);
    }
    ctl_table_print(t, stdout);
    ctl_table_free(t);
    if (cJSON_IsTrue(ctl_get(r, "truncated")))
        printf("(%d of %.0f clients shown; --limit N shows more)\n", cJSON_GetArraySize(cs), ctl_num(r, "total"));
}

int ctl_cmd_clients(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    return ctl_list_command(c, cmd, argc, argv, "queue", print_clients);
}
