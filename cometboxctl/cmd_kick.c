/* cmd_kick.c - `cometboxctl kick QUEUE | --client ID`: throws clients off for good. */
#include <stdlib.h>

#include "ctl.h"

int ctl_cmd_kick(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    struct cbx_admin_response resp;
    const char *client = NULL, *reason = NULL;
    const struct ctl_opt opts[] = { { "--client", &client, NULL }, { "--reason", &reason, NULL }, { NULL, NULL, NULL } };
    cJSON *args = NULL;
    char *pos[1], *end;
    long long id = 0;
    double n;
    int npos, rc;

    if ((rc = ctl_parse(c, cmd, argc, argv, opts, pos, 1, &npos)) >= 0)
        return rc;
    if ((npos == 1) == (client != NULL))
        return ctl_usage_error(cmd, npos == 1 ? "give a QUEUE or --client ID, not both" : "a QUEUE or --client ID is missing");
    if (client != NULL) {
        id = strtoll(client, &end, 10);
        if (*client < '0' || *client > '9' || *end != '\0' || id < 0)
            return ctl_usage_error(cmd, "--client needs a client id (a whole number, see `clients`), not \"%s\"", client);
    }
    if ((args = cJSON_CreateObject()) == NULL)
        return CTL_EXIT_DAEMON;
    if (npos == 1)
        cJSON_AddStringToObject(args, "queue", pos[0]);
    else
        cJSON_AddNumberToObject(args, "client", (double)id);
    if (reason != NULL)
        cJSON_AddStringToObject(args, "reason", reason);
    if ((rc = ctl_call(c, "kick", args, &resp)) != CTL_EXIT_OK)
        goto out;
    n = ctl_num(resp.result, "kicked");
    if (c->json)
        ctl_print_json(resp.result);
    else if (npos == 1)
        printf("kicked %.0f client%s on %s\n", n, n == 1 ? "" : "s", pos[0]);
    else
        printf("kicked client %lld\n", id);
    cbx_admin_response_free(&resp);
out:
    cJSON_Delete(args);
    return rc;
}
