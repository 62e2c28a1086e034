/* cmd_publish.c - `cometboxctl publish QUEUE MESSAGE [--json]`: one message,
 * through the daemon's own publish path; prints the id. */
#include <stdlib.h>
#include <string.h>

#include "../common/pub.h"
#include "ctl.h"

int ctl_cmd_publish(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    struct cbx_admin_response resp;
    bool is_json = false;
    /* here --json says the message is JSON: it is taken before the common --json */
    const struct ctl_opt opts[] = { { "--json", NULL, &is_json }, { NULL, NULL, NULL } };
    cJSON *args = NULL, *data;
    char *pos[2];
    int npos, rc;

    if ((rc = ctl_parse(c, cmd, argc, argv, opts, pos, 2, &npos)) >= 0)
        return rc;
    if (npos < 2)
        return ctl_usage_error(cmd, npos == 0 ? "QUEUE and MESSAGE are missing" : "MESSAGE is missing");
    if (is_json) {
        /* the daemon's own rules for JSON text (cbx_json_compact: one value, UTF-8, no raw
         * control character in a string), so the refusal says where, before anything is sent */
        char why[256];
        size_t len;
        char *compact = cbx_json_compact(pos[1], strlen(pos[1]), &len, why, sizeof why);
        if (compact == NULL)
            return ctl_usage_error(cmd, "MESSAGE is not one JSON value (--json): %s", why);
        data = cJSON_ParseWithLength(compact, len);
        free(compact);
    } else {
        data = cJSON_CreateString(pos[1]);
    }
    if (data == NULL || (args = cJSON_CreateObject()) == NULL) {
        cJSON_Delete(data);
        return CTL_EXIT_DAEMON;
    }
    cJSON_AddStringToObject(args, "queue", pos[0]);
    cJSON_AddItemToObject(args, "data", data);
    if ((rc = ctl_call(c, "publish", args, &resp)) != CTL_EXIT_OK)
        goto out;
    if (c->json)
        ctl_print_json(resp.result);
    else
        printf("%.0f\n", ctl_num(resp.result, "id"));
    cbx_admin_response_free(&resp);
out:
    cJSON_Delete(args);
    return rc;
}
