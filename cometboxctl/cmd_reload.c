/* cmd_reload.c - `cometboxctl reload`: the daemon reads its config files
 * and options again; prints the keys that changed and those that need a
 * restart (as the daemon's log does). */
#include "ctl.h"

static const char *shown(const char *text)
{
    return text[0] != '\0' ? text : "\"\"";
}

static void print_report(const cJSON *res)
{
    const cJSON *files = ctl_get(res, "files"), *changed = ctl_get(res, "changed");
    const cJSON *restart = ctl_get(res, "restart"), *it;
    int nfiles = cJSON_GetArraySize(files), nchanged = cJSON_GetArraySize(changed);
    int nrestart = cJSON_GetArraySize(restart), i = 0;

    if (nfiles == 0) {
        printf("reloaded: no config file (cometboxd was started without -c): nothing changed\n");
        return;
    }
    fputs("reloaded ", stdout);
    cJSON_ArrayForEach(it, files) {
        printf("%s%s", i++ > 0 ? ", " : "", cJSON_IsString(it) ? it->valuestring : "?");
    }
    if (nchanged + nrestart == 0)
        printf(": nothing changed\n");
    else
        printf(": %d key%s changed, %d need%s a restart\n", nchanged, nchanged == 1 ? "" : "s", nrestart,
               nrestart == 1 ? "s" : "");
    cJSON_ArrayForEach(it, changed) {
        printf("  %s: %s -> %s\n", ctl_str(it, "key"), shown(ctl_str(it, "old")), shown(ctl_str(it, "new")));
    }
    cJSON_ArrayForEach(it, restart) {
        if (ctl_get(it, "max") != NULL)
            printf("%s changed in the file, but above %s (its value at start) it needs a restart; keeping %s\n",
                   ctl_str(it, "key"), ctl_str(it, "max"), shown(ctl_str(it, "old")));
        else
            printf("%s changed in the file but needs a restart; keeping %s\n", ctl_str(it, "key"),
                   shown(ctl_str(it, "old")));
    }
}

int ctl_cmd_reload(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    struct cbx_admin_response resp;
    char *pos[1];
    int npos, rc;

    if ((rc = ctl_parse(c, cmd, argc, argv, NULL, pos, 0, &npos)) >= 0)
        return rc;
    if ((rc = ctl_call(c, "reload", NULL, &resp)) != CTL_EXIT_OK)
        return rc;
    if (c->json)
        ctl_print_json(resp.result);
    else
        print_report(resp.result);
    cbx_admin_response_free(&resp);
    return CTL_EXIT_OK;
}
