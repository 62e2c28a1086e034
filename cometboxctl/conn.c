/* conn.c - cometboxctl's side of the admin socket: connecting, with a
 * message that names the socket and says what to check when that fails, and
 * one request line out, answer lines in. Not for what commands print. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

static int unreachable(struct ctl *c, const char *what, const char *hint)
{
    fprintf(stderr, "cometboxctl: cannot reach cometboxd at %s: %s; %s\n", c->socket, what, hint);
    return CTL_EXIT_UNREACHABLE;
}

static int ctl_connect(struct ctl *c)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat st;
    int fd;

    if (c->fd >= 0)
        return CTL_EXIT_OK;
    if (strlen(c->socket) >= sizeof sa.sun_path)
        return unreachable(c, "the path is too long for a UNIX socket", "check -s or " CBX_ADMIN_SOCKET_ENV);
    if (stat(c->socket, &st) == 0 && !S_ISSOCK(st.st_mode))
        return unreachable(c, "it is not a socket",
                           "check admin-socket in cometboxd.conf, and -s or " CBX_ADMIN_SOCKET_ENV);
    memcpy(sa.sun_path, c->socket, strlen(c->socket) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return unreachable(c, strerror(errno), "the system is out of resources");
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        close(fd);
        switch (e) {
        case ENOENT:
            return unreachable(c, "no such socket",
                               "is cometboxd running, with admin-socket set to this path? "
                               "(-s PATH or " CBX_ADMIN_SOCKET_ENV " choose another socket)");
        case ECONNREFUSED:
            return unreachable(c, "connection refused", "the socket is left over: is cometboxd running?");
        case EACCES:
        case EPERM:
            return unreachable(c, "permission denied",
                               "run cometboxctl as the user cometboxd runs as (or root), or widen "
                               "admin-socket-mode to a group you are in");
        case ENOTDIR:
            return unreachable(c, strerror(e), "check the path given with -s or " CBX_ADMIN_SOCKET_ENV);
        default:
            return unreachable(c, strerror(e), "is cometboxd running?");
        }
    }
    c->fd = fd;
    return CTL_EXIT_OK;
}

void ctl_close(struct ctl *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* After a failed send: the daemon may have said why before it closed
 * ("too many admin clients"). Prints that (exit 1), else the failure (exit 3). */
static int send_failed(struct ctl *c, int e)
{
    struct cbx_admin_response resp = { 0 };
    char buf[4096], err[256], *nl;
    ssize_t n;

    while ((n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
        cbx_buf_add(&c->in, buf, (size_t)n);
    if (c->in.ok && c->in.len > 0 && (nl = memchr(c->in.s, '\n', c->in.len)) != NULL &&
        cbx_admin_response_parse(c->in.s, (size_t)(nl - c->in.s), &resp, err, sizeof err) == CBX_OK &&
        resp.kind == CBX_ADMIN_ERROR) {
        fprintf(stderr, "cometboxctl: %s\n", resp.error);
        cbx_admin_response_free(&resp);
        return CTL_EXIT_DAEMON;
    }
    cbx_admin_response_free(&resp);
    fprintf(stderr, "cometboxctl: lost the connection to cometboxd at %s: %s; check the daemon's log\n", c->socket,
            strerror(e));
    return CTL_EXIT_UNREACHABLE;
}

static int send_all(struct ctl *c, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t w = send(c->fd, s, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return send_failed(c, errno);
        s += w;
        len -= (size_t)w;
    }
    return CTL_EXIT_OK;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ctl_read(struct ctl *c, struct cbx_admin_response *resp, int timeout_ms)
{
    int64_t deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : 0;
    char err[256];
    char *nl;

    memset(resp, 0, sizeof *resp);
    while ((nl = c->in.len ? memchr(c->in.s, '\n', c->in.len) : NULL) == NULL) {
        struct pollfd p[2] = { { .fd = c->fd, .events = POLLIN }, { .fd = c->intr_fd, .events = POLLIN } };
        char buf[65536];
        int wait = -1, r;
        ssize_t n;

        if (timeout_ms >= 0) {
            int64_t left = deadline - now_ms();
            if (left <= 0) {
                fprintf(stderr, "cometboxctl: no answer from cometboxd at %s within %d s; is it stuck? check its log\n",
                        c->socket, timeout_ms / 1000);
                return CTL_EXIT_UNREACHABLE;
            }
            wait = (int)left;
        }
        r = poll(p, c->intr_fd >= 0 ? 2 : 1, wait);
        if (r > 0 && c->intr_fd >= 0 && p[1].revents != 0)
            return -1;
        if (r <= 0 || p[0].revents == 0)
            continue;
        n = recv(c->fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "cometboxctl: cometboxd at %s closed the connection%s%s; is it stopping? check its log\n",
                    c->socket, n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
            return CTL_EXIT_UNREACHABLE;
        }
        cbx_buf_add(&c->in, buf, (size_t)n);
        if (!c->in.ok) {
            fprintf(stderr, "cometboxctl: out of memory\n");
            return CTL_EXIT_UNREACHABLE;
        }
    }
    size_t len = (size_t)(nl - c->in.s);
    enum cbx_err rc = cbx_admin_response_parse(c->in.s, len, resp, err, sizeof err);
    memmove(c->in.s, nl + 1, c->in.len - len - 1);
    c->in.len -= len + 1;
    c->in.s[c->in.len] = '\0';
    if (rc != CBX_OK) {
        cbx_admin_response_free(resp);
        fprintf(stderr, "cometboxctl: %s answered outside the admin protocol (%s); is it cometboxd's admin socket?\n",
                c->socket, err);
        return CTL_EXIT_UNREACHABLE;
    }
    return CTL_EXIT_OK;
}

int ctl_call(struct ctl *c, const char *cmd, const cJSON *args, struct cbx_admin_response *resp)
{
    uint64_t id = c->next_id++;
    size_t len;
    char *line;
    int rc;

    memset(resp, 0, sizeof *resp);
    if ((rc = ctl_connect(c)) != CTL_EXIT_OK)
        return rc;
    line = cbx_admin_request_encode(id, cmd, args, &len);
    if (line == NULL) {
        fprintf(stderr, "cometboxctl: out of memory\n");
        return CTL_EXIT_DAEMON;
    }
    if (len - 1 > CBX_ADMIN_LINE_MAX) {
        free(line);
        fprintf(stderr, "cometboxctl: the request is over %d bytes, the admin socket's limit "
                        "(publish large messages with POST /publish)\n", CBX_ADMIN_LINE_MAX);
        return CTL_EXIT_USAGE;
    }
    rc = send_all(c, line, len);
    free(line);
    if (rc != CTL_EXIT_OK)
        return rc;
    for (;;) {
        rc = ctl_read(c, resp, CTL_TIMEOUT_MS);
        if (rc < 0)
            return -1; /* interrupted (only tail sets intr_fd): the caller decides */
        if (rc != CTL_EXIT_OK)
            return rc;
        if (resp->id == (double)id && (resp->kind == CBX_ADMIN_OK || resp->kind == CBX_ADMIN_ERROR))
            break;
        if (resp->id < 0 && resp->kind == CBX_ADMIN_ERROR)
            break; /* the daemon could not read the request at all */
        cbx_admin_response_free(resp); /* a line for another request: not ours */
    }
    if (resp->kind == CBX_ADMIN_ERROR) {
        fprintf(stderr, "cometboxctl: %s\n", resp->error);
        cbx_admin_response_free(resp);
        return CTL_EXIT_DAEMON;
    }
    return CTL_EXIT_OK;
}

int ctl_list_command(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv, const char *arg_name,
                     void (*print)(const cJSON *result, const char *arg))
{
    struct cbx_admin_response resp;
    const char *limit = NULL;
    const struct ctl_opt opts[] = { { "--limit", &limit, NULL }, { NULL, NULL, NULL } };
    cJSON *args = NULL;
    char *pos[1];
    int npos, rc;

    if ((rc = ctl_parse(c, cmd, argc, argv, opts, pos, 1, &npos)) >= 0)
        return rc;
    if ((args = cJSON_CreateObject()) == NULL)
        return CTL_EXIT_DAEMON;
    if (npos == 1)
        cJSON_AddStringToObject(args, arg_name, pos[0]);
    if ((rc = ctl_add_limit(cmd, limit, args)) >= 0)
        goto out;
    if ((rc = ctl_call(c, cmd->name, args, &resp)) != CTL_EXIT_OK)
        goto out;
    if (c->json)
        ctl_print_json(resp.result);
    else
        print(resp.result, npos == 1 ? pos[0] : NULL);
    cbx_admin_response_free(&resp);
out:
    cJSON_Delete(args);
    return rc;
}
