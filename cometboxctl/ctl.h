/* ctl.h - what the files of cometboxctl share: the connection to the admin
 * socket, the table of commands, argument parsing and output helpers.
 * Not for the line format itself (common/admin_proto.h). */
#ifndef CBXCTL_CTL_H
#define CBXCTL_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../common/admin_proto.h"

#ifndef CTL_VERSION
#define CTL_VERSION "0.1.0" /* the build passes the project version */
#endif
#define CTL_TIMEOUT_MS 10000 /* an answer that takes longer means the daemon is stuck */

/* Exit codes (docs/ADMIN.md): fixed, scripts rely on them. */
enum ctl_exit {
    CTL_EXIT_OK = 0,
    CTL_EXIT_DAEMON = 1,      /* the daemon answered with an error */
    CTL_EXIT_USAGE = 2,       /* bad command line */
    CTL_EXIT_UNREACHABLE = 3, /* the daemon cannot be reached */
};

struct ctl {
    const char *socket;       /* borrowed: -s, $COMETBOX_SOCKET or the default */
    bool json;                /* --json: one JSON document on stdout */
    int fd;                   /* -1 until connected */
    uint64_t next_id;
    struct cbx_buf in;        /* bytes read and not yet taken as a line */
    int intr_fd;              /* read end of a self-pipe a signal handler writes to, or -1 */
};

struct ctl;
struct ctl_command {
    const char *name;
    const char *args;         /* after the name, for the usage line */
    const char *summary;      /* one line for the tool's --help */
    const char *help;         /* the rest of the command's --help */
    int (*run)(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv); /* argv[0] is the name */
};

/* One option a command takes besides the common ones. */
struct ctl_opt {
    const char *name;         /* "--reason" */
    const char **value;       /* set for an option with a value, else NULL */
    bool *flag;               /* set for a flag, else NULL */
};

/* main.c: parses a command's arguments. Handles --help (prints the
 * command's help: returns 0), --json (unless opts names it), -s/--socket,
 * and `--`; positional arguments go to pos (at most max_pos, else a usage
 * error). Returns -1 to go on, or an exit code. */
int ctl_parse(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv, const struct ctl_opt *opts,
              char **pos, int max_pos, int *npos);
/* Adds {"limit":N} to args for --limit TEXT (NULL: nothing); -1 to go on, or an exit code. */
int ctl_add_limit(const struct ctl_command *cmd, const char *text, cJSON *args);
/* Prints "cometboxctl: MSG" and the command's usage line to stderr; returns CTL_EXIT_USAGE. */
int ctl_usage_error(const struct ctl_command *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* conn.c: connects (when not yet) and sends one request; args may be NULL.
 * On success *resp holds the answer (free with cbx_admin_response_free()).
 * Returns CTL_EXIT_OK; CTL_EXIT_DAEMON after printing the daemon's error;
 * CTL_EXIT_UNREACHABLE after printing what failed, with the socket path and
 * what to check; -1 when interrupted (see ctl_read). */
int ctl_call(struct ctl *c, const char *cmd, const cJSON *args, struct cbx_admin_response *resp);
/* Reads the next answer line; timeout_ms < 0 waits for ever. Returns
 * CTL_EXIT_OK, CTL_EXIT_UNREACHABLE (printed), or -1 when intr_fd became
 * readable (a signal came) before a line did. */
int ctl_read(struct ctl *c, struct cbx_admin_response *resp, int timeout_ms);
void ctl_close(struct ctl *c);

/* fmt.c: human units, tables and JSON output. */
void ctl_fmt_size(char *buf, size_t n, double bytes);
void ctl_fmt_duration(char *buf, size_t n, double us);
void ctl_print_json(const cJSON *v);           /* one compact line on stdout */
double ctl_num(const cJSON *obj, const char *name);           /* a number member, 0 when absent */
const char *ctl_str(const cJSON *obj, const char *name);      /* a string member, "" when absent */
const cJSON *ctl_get(const cJSON *obj, const char *name);

struct ctl_table;
/* align: one letter per column, 'l' or 'r'. The last column is not padded. */
struct ctl_table *ctl_table_new(const char *align, const char *const *head);
void ctl_table_add(struct ctl_table *t, const char *const *cells);
void ctl_table_print(struct ctl_table *t, FILE *out);
void ctl_table_free(struct ctl_table *t);

/* The commands (one file each). */
/* The body of `queues` and `clients`: an optional positional argument sent
 * as arg_name, --limit, the call, and --json or print() for the answer. */
int ctl_list_command(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv, const char *arg_name,
                     void (*print)(const cJSON *result, const char *arg));
int ctl_cmd_stats(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_queues(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_clients(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_kick(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_flush(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_publish(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_tail(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_ping(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_reload(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv);

#endif
