/* main.c - cometboxd start-up and shutdown: options and config, limits,
 * listeners, the ready line, a config reload on SIGHUP and a graceful stop
 * on SIGTERM/SIGINT.
 * Signals are blocked in every thread and taken here with sigwait(), so no
 * signal handler runs at all. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../common/journal.h"
#include "broker.h"
#include "../common/log.h"
#include "../common/token.h"
#include "admin.h"
#include "browser.h"
#include "hold.h"
#include "limits.h"
#include "listen.h"
#include "pool.h"
#include "publish.h"
#include "reaper.h"
#include "serve.h"
#include "server.h"
#include "settings.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: cometboxd [-c FILE] [--KEY VALUE]...\n"
            "       cometboxd --help | --version | --print-config\n\n"
            "A comet server: browsers hold requests on the browser port, the web\n"
            "application publishes on the publish port. Options:\n"
            "  -c, --config FILE          read `key = value` settings from FILE first\n"
            "  --print-config             print the effective settings and exit\n"
            "  --make-token QUEUES [TTL]  print a subscriber token for QUEUES (a,b,c), valid TTL\n"
            "                             seconds (default 3600), signed with subscribe-secret\n"
            "  -h, --help                 this text\n"
            "  -V, --version              print the version\n\n"
            "Every config key is also an option (--KEY VALUE or --KEY=VALUE). SIGHUP or\n"
            "`cometboxctl reload` reads the files and options again; a key marked \"needs\n"
            "a restart\" keeps its value until a restart:\n");
    cbx_config_print_help(out);
}

/* --make-token: prints a token, for shells and for backends not in PHP. */
static int make_token(const struct cbx_config *cfg, const char *queues, const char *ttl)
{
    struct cbx_qlist l;
    char why[256], token[4096];
    uint64_t secs;

    if (strlen(cfg->subscribe_secret) < 16) {
        fprintf(stderr, "cometboxd: --make-token needs a subscribe-secret of at least 16 bytes\n");
        return 2;
    }
    if (cbx_qlist_parse(queues, &l, why, sizeof why) != CBX_OK) {
        fprintf(stderr, "cometboxd: --make-token: %s\n", why);
        return 2;
    }
    cbx_qlist_free(&l);
    if (!cbx_id_parse(ttl, &secs) || secs == 0 || secs > 366u * 86400) {
        fprintf(stderr, "cometboxd: --make-token: TTL must be 1 to 31622400 seconds\n");
        return 2;
    }
    if (!cbx_token_make(cfg->subscribe_secret, queues, cbx_now_real_us() / 1000000 + (int64_t)secs, token,
                        sizeof token)) {
        fprintf(stderr, "cometboxd: --make-token: queue list too long\n");
        return 2;
    }
    printf("%s\n", token);
    return 0;
}

/* Reads the options into src (the -c files and the --KEY VALUE options,
 * which a reload reads again) and the config they make into cfg; returns
 * -1 to go on, or an exit code. */
static int parse_args(int argc, char **argv, struct cbx_settings_source *src, struct cbx_config *cfg)
{
    char err[800];
    bool print = false;
    const char *token_queues = NULL, *token_ttl = "3600";

    src->files = calloc((size_t)argc, sizeof *src->files);
    src->opts = calloc((size_t)argc, sizeof *src->opts);
    if (src->files == NULL || src->opts == NULL) {
        fprintf(stderr, "cometboxd: out of memory\n");
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char key[64];
        const char *value;

        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "cometboxd: %s needs a file name\n", a);
                return 2;
            }
            src->files[src->nfiles++] = argv[++i];
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf("cometboxd %s (libmicrohttpd %s)\n", CBX_VERSION, MHD_get_version());
            return 0;
        }
        if (strcmp(a, "--print-config") == 0) {
            print = true;
            continue;
        }
        if (strcmp(a, "--make-token") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "cometboxd: --make-token needs a queue list\n");
                return 2;
            }
            token_queues = argv[++i];
            if (i + 1 < argc && argv[i + 1][0] != '-')
                token_ttl = argv[++i];
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            fprintf(stderr, "cometboxd: unexpected argument \"%s\" (see --help)\n", a);
            return 2;
        }
        const char *eq = strchr(a, '=');
        size_t klen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (klen >= sizeof key) {
            fprintf(stderr, "cometboxd: unknown option \"%s\" (see --help)\n", a);
            return 2;
        }
        memcpy(key, a + 2, klen);
        key[klen] = '\0';
        if (!cbx_config_has_key(key)) {
            const char *near = cbx_config_nearest_key(key);
            if (near != NULL)
                fprintf(stderr, "cometboxd: unknown option \"--%s\" (did you mean \"--%s\"?)\n", key, near);
            else
                fprintf(stderr, "cometboxd: unknown option \"--%s\" (see --help)\n", key);
            return 2;
        }
        if (eq != NULL) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            fprintf(stderr, "cometboxd: --%s needs a value\n", key);
            return 2;
        }
        src->opts[src->nopts++] = (struct cbx_settings_opt){ a, value };
    }
    /* the files first, then the options over them: what a reload does again */
    if (cbx_settings_read(src, cfg, err, sizeof err) != CBX_OK) {
        fprintf(stderr, "cometboxd: %s\n", err);
        return 2;
    }
    if (print) {
        cbx_config_write(cfg, stdout);
        return 0;
    }
    if (cbx_config_check(cfg, err, sizeof err) != CBX_OK) {
        fprintf(stderr, "cometboxd: %s\n", err);
        return 2;
    }
    if (token_queues != NULL)
        return make_token(cfg, token_queues, token_ttl);
    return -1;
}

static void raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            cbx_log(CBX_LOG_WARN, "cannot raise the open-file limit: %s", strerror(errno));
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        cbx_log(CBX_LOG_DEBUG, "open-file limit %llu", (unsigned long long)rl.rlim_cur);
}

static int start(struct cbx_server *s, char *err, size_t errlen)
{
    struct cbx_qmap_limits lim;

    cbx_settings_qmap_limits(cbx_settings_get(s), &lim);
    s->qmap = cbx_qmap_create(&lim);
    s->ips = cbx_ips_create();
    if (s->qmap != NULL && s->cfg.state_dir[0] != '\0') {
        struct cbx_journal_opts jo = { s->cfg.state_dir, (enum cbx_journal_sync)s->cfg.journal_sync,
                                       s->cfg.journal_compact_size, cbx_pool_defer_begin, cbx_pool_defer_end };
        if (cbx_journal_open(&jo, s->qmap, &s->journal, err, errlen) != CBX_OK)
            return -1;
    }
    if (s->qmap != NULL && cbx_broker_start(s, err, errlen) != 0)
        return -1;
    s->reg_nbuckets = 1024;
    s->reg_buckets = calloc(s->reg_nbuckets, sizeof *s->reg_buckets);
    if (s->qmap == NULL || s->ips == NULL || s->reg_buckets == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (cbx_hold_registry_init(s) != 0) {
        snprintf(err, errlen, "cannot make the registry's locks");
        return -1;
    }
    if (cbx_reaper_start(s) != 0) {
        snprintf(err, errlen, "cannot start the reaper thread: %s", strerror(errno));
        return -1;
    }
    s->browser_fd = cbx_listen_tcp(s->cfg.listen, s->browser_url, sizeof s->browser_url, err, errlen);
    if (s->browser_fd < 0)
        return -1;
    s->publish_fd = cbx_listen_tcp(s->cfg.publish_listen, s->publish_url, sizeof s->publish_url, err, errlen);
    if (s->publish_fd < 0)
        return -1;
    if (cbx_admin_start(s, err, errlen) != 0)
        return -1;
    if (cbx_browser_demo_prepare(s) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (cbx_serve_start(s, cbx_browser_handler, cbx_publish_handler, err, errlen) != 0)
        return -1;
    return 0;
}

/* Stops everything; logs "SIG: stopping" once new work is refused, when a
 * signal is the reason. */
static void stop(struct cbx_server *s, const char *sig)
{
    atomic_store(&s->stopping, true);
    /* No MHD_quiesce_daemon(): on an epoll daemon with its own threads it
     * races with them over the listening socket, and libmicrohttpd 0.9.75
     * aborts the process when it loses (docs/THREADS.md, "Shutdown"). The
     * daemons keep accepting until MHD_stop_daemon; whatever comes in
     * meanwhile is answered 503, as the map is stopped. */
    if (s->qmap != NULL)
        cbx_qmap_stop(s->qmap);
    if (sig != NULL)
        cbx_log(CBX_LOG_INFO, "%s: stopping", sig);
    cbx_admin_stop(s);
    if (s->reg_buckets != NULL) {
        cbx_hold_signal_all(s, CBX_W_STOP);
        /* every parked request runs again and answers, however long that
         * takes; then the writers get a bounded time to finish */
        cbx_hold_wait_unparked(s);
        if (!cbx_hold_wait_empty(s, cbx_now_mono_us() + 1500000))
            cbx_log(CBX_LOG_WARN, "some held requests did not finish in time (browsers that read nothing)");
    }
    cbx_serve_stop(s); /* nothing is parked now: libmicrohttpd may stop */
    cbx_reaper_stop(s);
    cbx_broker_stop(s->broker); /* after the last acknowledgement and sweep */
    cbx_journal_close(s->journal); /* after the last acknowledgement a held request made */
    cbx_qmap_destroy(s->qmap);
    cbx_ips_destroy(s->ips);
    free(s->reg_buckets);
    free((char *)s->demo_page.data);
    cbx_settings_destroy(s); /* no thread reads the config any more */
}

int main(int argc, char **argv)
{
    static struct cbx_server srv;
    struct cbx_server *s = &srv;
    struct cbx_settings_source src = { 0 };
    struct cbx_reload_report report;
    char err[700];
    sigset_t sigs;
    int sig, rc;

    rc = parse_args(argc, argv, &src, &s->cfg);
    if (rc < 0 && cbx_settings_init(s, &src) != 0) {
        fprintf(stderr, "cometboxd: out of memory\n");
        rc = 1;
    }
    if (rc >= 0) {
        free(src.files);
        free(src.opts);
        return rc;
    }
    s->browser_fd = s->publish_fd = -1;
    s->started_real_us = cbx_now_real_us();

    /* block the stop and reload signals in every thread; this one takes them with sigwait */
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP); /* reload */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    raise_nofile();

    if (start(s, err, sizeof err) != 0) {
        cbx_log(CBX_LOG_ERROR, "%s", err);
        stop(s, NULL);
        return 1;
    }
    cbx_log(CBX_LOG_INFO, "cometboxd %s started: threads=%s", CBX_VERSION,
            s->cfg.threads == CBX_THREADS_POOL ? "pool" : "per-connection");
    fprintf(stderr, "cometboxd: ready browser=%s publish=%s admin=%s\n", s->browser_url, s->publish_url,
            s->cfg.admin_socket);
    fflush(stderr);

    for (;;) {
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig != SIGHUP)
            break;
        cbx_settings_reload(s, "SIGHUP", &report); /* logs what it did, or why it refused */
        cbx_reload_report_free(&report);
    }
    stop(s, sig == SIGTERM ? "SIGTERM" : "SIGINT");
    cbx_log(CBX_LOG_INFO, "stopped");
    return 0;
}
