/* cmd_flush.c - `cometboxctl flush QUEUE | --all`: drops pending messages. */
#include "ctl.h"

int ctl_cmd_flush(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    struct cbx_admin_response resp;
    bool all = false;
    const struct ctl_opt opts[] = { { "--all", NULL, &all }, { NULL, NULL, NULL } };
    cJSON *args = NULL;
    char *pos[1];
    double n;
    int npos, rc;

    if ((rc = ctl_parse(c, cmd, argc, argv, opts, pos, 1, &npos)) >= 0)
        return rc;
    if ((npos == 1) == all)
        return ctl_usage_error(cmd, all ? "give a QUEUE or --all, not both" : "a QUEUE or --all is missing");
    if ((args = cJSON_CreateObject()) == NULL)
        return CTL_EXIT_DAEMON;
    if (all)
        cJSON_AddTrueToObject(args, "all");
    else
        cJSON_AddStringToObject(args, "queue", pos[0]);
    if ((rc = ctl_call(c, "flush", args, &resp)) != CTL_EXIT_OK)
        goto out;
    n = ctl_num(resp.result, "flushed");
    if (c->json)
        ctl_print_json(resp.result);
    else
        printf("flushed %.0f message%s from %s\n", n, n == 1 ? "" : "s", all ? "every queue" : pos[0]);
    cbx_admin_response_free(&resp);
out:
    cJSON_Delete(args);
    return rc;
}
