/* cmd_ping.c - `cometboxctl ping`: is the daemon there, and which one. */
#include "ctl.h"

int ctl_cmd_ping(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    struct cbx_admin_response resp;
    char *pos[1];
    int npos, rc;

    if ((rc = ctl_parse(c, cmd, argc, argv, NULL, pos, 0, &npos)) >= 0)
        return rc;
    if ((rc = ctl_call(c, "ping", NULL, &resp)) != CTL_EXIT_OK)
        return rc;
    if (c->json)
        ctl_print_json(resp.result);
    else
        printf("pong from cometboxd %s (admin protocol %.0f)\n", ctl_str(resp.result, "version"),
               ctl_num(resp.result, "protocol"));
    cbx_admin_response_free(&resp);
    return CTL_EXIT_OK;
}
