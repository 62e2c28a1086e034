/* main.c - cometboxctl: the options every command shares, the one table of
 * commands, --help and --version, and dispatch. What each command sends and
 * prints lives in its own cmd_*.c file. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static int cmd_help(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv);

/* The one table of commands: the same names as in the socket protocol. */
static const struct ctl_command commands[] = {
    { "stats", "",
      "connections, held requests, queues, counters, rates and memory",
      "Shows the daemon's version and uptime, connections by transport, held requests,\n"
      "queues, pending messages and bytes, the counters (published, delivered,\n"
      "acknowledged, expired, dropped, flushed, publish errors, rejected connections)\n"
      "with their rates per second over the last minute, and the daemon's memory (VmRSS).\n",
      ctl_cmd_stats },
    { "queues", "[PATTERN] [--limit N]",
      "one row per queue: pending, bytes, waiting clients, ages",
      "Lists the queues whose name matches PATTERN (a shell glob such as 'room.*';\n"
      "default: every queue), sorted by name: pending and stored messages, bytes,\n"
      "waiting clients, the age of the oldest message and the time since the last publish.\n"
      "  --limit N   show at most N queues (default 1000)\n",
      ctl_cmd_queues },
    { "clients", "[QUEUE] [--limit N]",
      "one row per held request or stream",
      "Lists the held requests (long-polls, streams, SSE), or those on QUEUE, sorted by\n"
      "client id: address, transport, queues, cursor (the last id handed to it) and how\n"
      "long it has been connected. The id is what `kick --client` takes.\n"
      "  --limit N   show at most N clients (default 1000)\n",
      ctl_cmd_clients },
    { "kick", "QUEUE | --client ID [--reason TEXT]",
      "end every held request on a queue (or one client) for good",
      "Ends every held request on QUEUE, or the one client ID, with\n"
      "{\"type\":\"kick\",\"reason\":TEXT}; the JavaScript client stops reconnecting.\n"
      "Prints how many were kicked.\n"
      "  --client ID     kick that client (see `clients`) instead of a queue\n"
      "  --reason TEXT   the reason sent to the client (default: kicked by an operator)\n",
      ctl_cmd_kick },
    { "flush", "QUEUE | --all",
      "drop the messages of a queue (or of every queue)",
      "Drops every message of QUEUE (or of every queue with --all) and prints how many.\n"
      "A client that polls the queue afterwards gets a gap with reason \"flushed\".\n"
      "  --all   flush every queue\n",
      ctl_cmd_flush },
    { "publish", "QUEUE MESSAGE [--json]",
      "publish one message, print its id",
      "Publishes MESSAGE on QUEUE through the same path as POST /publish and prints\n"
      "the new message's id. MESSAGE is text; put `--` before a MESSAGE that starts with -.\n"
      "  --json   MESSAGE is one JSON value, which becomes the message's data\n"
      "           (here --json is about the message: for JSON output put --json\n"
      "           before the command: cometboxctl --json publish ...)\n",
      ctl_cmd_publish },
    { "tail", "QUEUE...",
      "print messages as they are published, until interrupted",
      "Prints every message published on the QUEUEs (at most 16) from now on, one per\n"
      "line (ID QUEUE DATA; with --json the message object), until interrupted.\n"
      "A tail only watches: it acknowledges nothing and is not counted as a client.\n",
      ctl_cmd_tail },
    { "reload", "",
      "read the config file again; print what changed",
      "Makes the daemon read its config file (-c) and options again, as SIGHUP does.\n"
      "Prints the keys that changed (new requests see them; held ones keep the values\n"
      "they started with) and those that changed in the file but need a restart\n"
      "(they keep their running value). A file with an error changes nothing: the\n"
      "error names the file and line, and the status is 1.\n",
      ctl_cmd_reload },
    { "ping", "",
      "check that the daemon answers",
      "Asks the daemon for a pong and prints its version and protocol.\n",
      ctl_cmd_ping },
    { "help", "[COMMAND]",
      "this text, or a command's help",
      "Prints the tool's help, or COMMAND's.\n",
      cmd_help },
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const char exit_codes[] =
    "Exit status: 0 success, 1 the daemon answered with an error (such as no such\n"
    "queue), 2 usage error, 3 the daemon cannot be reached.\n";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: cometboxctl [-s PATH] [--json] COMMAND [ARGS]\n"
            "       cometboxctl COMMAND --help | --help | --version\n\n"
            "Steers a running cometboxd over its admin socket.\n\n"
            "Commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\nOptions (before or after the command):\n"
            "  -s, --socket PATH   the admin socket (default: $" CBX_ADMIN_SOCKET_ENV ", else %s)\n"
            "  --json              print one JSON document instead of text (tail: one per line)\n"
            "  -h, --help          this text; after a command, that command's help\n"
            "  -V, --version       print the version\n\n%s",
            CBX_ADMIN_SOCKET_DEFAULT, exit_codes);
}

static void command_help(const struct ctl_command *cmd, FILE *out)
{
    fprintf(out, "usage: cometboxctl [-s PATH] [--json] %s%s%s\n\n%s\n%s", cmd->name, cmd->args[0] ? " " : "",
            cmd->args, cmd->help, exit_codes);
}

static const struct ctl_command *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int ctl_usage_error(const struct ctl_command *cmd, const char *fmt, ...)
{
    va_list ap;

    fputs("cometboxctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (cmd != NULL)
        fprintf(stderr, "\nusage: cometboxctl %s%s%s (see cometboxctl %s --help)\n", cmd->name,
                cmd->args[0] ? " " : "", cmd->args, cmd->name);
    else
        fputs("\nusage: cometboxctl [-s PATH] [--json] COMMAND [ARGS] (see cometboxctl --help)\n", stderr);
    return CTL_EXIT_USAGE;
}

/* Reads a common option at argv[*i]; returns 1 when taken, 0 when not, or -(exit code + 1). */
static int common_opt(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv, int *i)
{
    const char *a = argv[*i];

    if (strcmp(a, "--json") == 0) {
        c->json = true;
        return 1;
    }
    if (strcmp(a, "-s") == 0 || strcmp(a, "--socket") == 0) {
        if (*i + 1 >= argc || argv[*i + 1][0] == '\0')
            return -(ctl_usage_error(cmd, "%s needs a socket path", a) + 1);
        c->socket = argv[++*i];
        return 1;
    }
    if (strncmp(a, "--socket=", 9) == 0) {
        if (a[9] == '\0')
            return -(ctl_usage_error(cmd, "--socket needs a socket path") + 1);
        c->socket = a + 9;
        return 1;
    }
    return 0;
}

int ctl_parse(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv, const struct ctl_opt *opts,
              char **pos, int max_pos, int *npos)
{
    bool only_pos = false;

    *npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r;

        if (only_pos || a[0] != '-' || a[1] == '\0') {
            if (*npos >= max_pos)
                return ctl_usage_error(cmd, "unexpected argument \"%s\"", a);
            pos[(*npos)++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            command_help(cmd, stdout);
            return CTL_EXIT_OK;
        }
        bool taken = false;
        for (const struct ctl_opt *o = opts; o != NULL && o->name != NULL && !taken; o++) {
            size_t n = strlen(o->name);
            if (strncmp(a, o->name, n) != 0 || (a[n] != '\0' && a[n] != '='))
                continue;
            taken = true;
            if (o->flag != NULL) {
                if (a[n] == '=')
                    return ctl_usage_error(cmd, "%s takes no value", o->name);
                *o->flag = true;
            } else if (a[n] == '=') {
                *o->value = a + n + 1;
            } else if (i + 1 < argc) {
                *o->value = argv[++i];
            } else {
                return ctl_usage_error(cmd, "%s needs a value", o->name);
            }
        }
        if (taken)
            continue;
        r = common_opt(c, cmd, argc, argv, &i);
        if (r < 0)
            return -r - 1;
        if (r == 0)
            return ctl_usage_error(cmd, "unknown option \"%s\"", a);
    }
    return -1;
}

/* Reads --limit N into args; returns -1 to go on or an exit code. */
int ctl_add_limit(const struct ctl_command *cmd, const char *text, cJSON *args)
{
    char *end;
    long long n;

    if (text == NULL)
        return -1;
    n = strtoll(text, &end, 10);
    if (*text == '\0' || *end != '\0' || n < 1 || n > 1000000000)
        return ctl_usage_error(cmd, "--limit needs a whole number from 1 to 1000000000, not \"%s\"", text);
    cJSON_AddNumberToObject(args, "limit", (double)n);
    return -1;
}

static int cmd_help(struct ctl *c, const struct ctl_command *cmd, int argc, char **argv)
{
    char *pos[1];
    int npos, rc;
    const struct ctl_command *which;

    if ((rc = ctl_parse(c, cmd, argc, argv, NULL, pos, 1, &npos)) >= 0)
        return rc;
    if (npos == 0) {
        usage(stdout);
        return CTL_EXIT_OK;
    }
    if ((which = find_command(pos[0])) == NULL)
        return ctl_usage_error(NULL, "unknown command \"%s\"", pos[0]);
    command_help(which, stdout);
    return CTL_EXIT_OK;
}

/* The exit status, after making sure the output got out. */
static int finish(int r)
{
    if ((fflush(stdout) != 0 || ferror(stdout)) && r == CTL_EXIT_OK) {
        /* output lost (a full disk, a closed pipe): do not claim success */
        fprintf(stderr, "cometboxctl: cannot write the output: %s\n", strerror(errno));
        r = CTL_EXIT_DAEMON;
    }
    return r;
}

int main(int argc, char **argv)
{
    struct ctl c = { .fd = -1, .next_id = 1, .intr_fd = -1 };
    const struct ctl_command *cmd;
    const char *env = getenv(CBX_ADMIN_SOCKET_ENV);
    int i, r;

    c.socket = env != NULL && env[0] != '\0' ? env : CBX_ADMIN_SOCKET_DEFAULT;
    if (argc <= 1) { /* nothing asked: say what can be asked, as a usage error */
        usage(stderr);
        return CTL_EXIT_USAGE;
    }
    cbx_buf_init(&c.in);
    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return finish(CTL_EXIT_OK);
        }
        if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0) {
            printf("cometboxctl %s (admin protocol %d)\n", CTL_VERSION, CBX_ADMIN_PROTOCOL);
            return finish(CTL_EXIT_OK);
        }
        r = common_opt(&c, NULL, argc, argv, &i);
        if (r < 0)
            return -r - 1;
        if (r == 0)
            return ctl_usage_error(NULL, "unknown option \"%s\"", argv[i]);
    }
    if (i >= argc)
        return ctl_usage_error(NULL, "a command is missing");
    if ((cmd = find_command(argv[i])) == NULL)
        return ctl_usage_error(NULL, "unknown command \"%s\"", argv[i]);
    r = cmd->run(&c, cmd, argc - i, argv + i);
    ctl_close(&c);
    cbx_buf_free(&c.in);
    return finish(r);
}
