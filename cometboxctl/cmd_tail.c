/* cmd_tail.c - `cometboxctl tail QUEUE...`: prints messages as they are
 * published until interrupted. SIGINT and SIGTERM write to a self-pipe that
 * the read loop watches, so an interrupt ends it cleanly with status 0. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "../common/qname.h"
#include "ctl.h"

static int intr_pipe[2] = { -1, -1 };

static void on_signal(int sig)
{
    int saved = errno;
    ssize_t w = write(intr_pipe[1], "x", 1);

    (void)sig, (void)w;
    errno = saved;
}

/* ID QUEUE DATA: text as it is when it is one printable line, else as JSON. */
static void print_message(const cJSON *m)
{
    const cJSON *data = ctl_get(m, "data");
    struct cbx_buf b;
    bool plain = cJSON_IsString(data);

    cbx_buf_init(&b);
    if (plain)
        for (const unsigned char *p = (const unsigned char *)data->valuestring; *p && plain; p++)
            plain = *p >= 0x20 && *p != 0x7f;
    if (plain)
        cbx_buf_adds(&b, data->valuestring);
    else
        cbx_admin_json_write(&b, data);
    printf("%.0f %s %s\n", ctl_num(m, "id"), ctl_str(m, "queue"), b.ok && b.s ? b.s : "");
    cbx_buf_free(&b);
}

static int watch(struct ctl *c)
{
    struct cbx_admin_response resp;
    int rc;

    for (;;) {
        rc = ctl_read(c, &resp, -1);
        if (rc < 0)
            return CTL_EXIT_OK; /* interrupted: the normal way to stop */
        if (rc != CTL_EXIT_OK)
            return rc;
        if (resp.kind == CBX_ADMIN_MESSAGE) {
            if (c->json)
                ctl_print_json(resp.message);
            else
                print_message(resp.message);
            fflush(stdout);
        } else if (resp.kind == CBX_ADMIN_END) {
            if (strcmp(resp.end, "overflow") == 0) {
                fprintf(stderr, "cometboxctl: the tail fell more than 10000 messages behind (its output was not "
                                "read fast enough) and was ended\n");
                rc = CTL_EXIT_DAEMON;
            } else {
                fprintf(stderr, "cometboxctl: cometboxd at %s is stopping; the tail ended\n", c->socket);
                rc = CTL_EXIT_UNREACHABLE;
            }
            cbx_admin_response_free(&resp);
            return rc;
        }
        cbx_admin_response_free(&resp);
    }
}

int ctl_cmd_tail(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    struct cbx_admin_response resp;
    struct sigaction sa;
    cJSON *args = NULL, *qs;
    char *pos[CBX_QLIST_MAX + 1];
    int npos, rc;

    if ((rc = ctl_parse(c, cmd, argc, argv, NULL, pos, CBX_QLIST_MAX + 1, &npos)) >= 0)
        return rc;
    if (npos == 0)
        return ctl_usage_error(cmd, "a QUEUE is missing");
    if (npos > CBX_QLIST_MAX)
        return ctl_usage_error(cmd, "at most %d queues", CBX_QLIST_MAX);
    if (pipe2(intr_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        fprintf(stderr, "cometboxctl: pipe: %s\n", strerror(errno));
        return CTL_EXIT_DAEMON;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    c->intr_fd = intr_pipe[0];
    if ((args = cJSON_CreateObject()) == NULL || (qs = cJSON_AddArrayToObject(args, "queues")) == NULL) {
        rc = CTL_EXIT_DAEMON;
        goto out;
    }
    for (int i = 0; i < npos; i++)
        cJSON_AddItemToArray(qs, cJSON_CreateString(pos[i]));
    rc = ctl_call(c, "tail", args, &resp);
    if (rc < 0) {
        rc = CTL_EXIT_OK; /* interrupted before the daemon answered */
        goto out;
    }
    if (rc != CTL_EXIT_OK)
        goto out;
    cbx_admin_response_free(&resp);
    fprintf(stderr, "cometboxctl: tailing");
    for (int i = 0; i < npos; i++)
        fprintf(stderr, "%s %s", i ? "," : "", pos[i]);
    fprintf(stderr, "; interrupt to stop\n");
    rc = watch(c);
out:
    cJSON_Delete(args);
    return rc;
}
