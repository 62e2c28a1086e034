/* test_config.c - config keys: defaults, values, errors with line numbers,
 * and what a reload changes (config_reload.c). */
#include <unistd.h>

#include "../../common/config.h"
#include "test.h"

static void test_defaults(void)
{
    struct cbx_config c;

    cbx_config_defaults(&c);
    CHECK_STR(c.listen, "*:1800");
    CHECK_STR(c.publish_listen, "127.0.0.1:1802");
    CHECK_INT(c.threads, CBX_THREADS_POOL);
    CHECK_INT(c.hold_timeout, 25);
    CHECK_INT(c.heartbeat, 15);
    CHECK_INT(c.stream_max_bytes, 128 * 1024);
    CHECK_INT(c.stream_max_age, 300);
    CHECK_INT(c.retain_acked, 60);
    CHECK_INT(c.message_ttl, 3600);
    CHECK_INT(c.queue_max_messages, 1000);
    CHECK_INT(c.queue_max_bytes, 1 << 20);
    CHECK_INT(c.max_publish_bytes, 1 << 20);
    CHECK_INT(c.max_message_bytes, 64 * 1024);
    CHECK_INT(c.thread_stack, 64 * 1024);
    CHECK_INT(c.admin_socket_mode, 0600);
    CHECK(!c.demo);
}

static void test_values_and_errors(void)
{
    struct cbx_config c;
    char err[256];

    cbx_config_defaults(&c);
    CHECK_INT(cbx_config_set(&c, "hold-timeout", "2m", err, sizeof err), CBX_OK);
    CHECK_INT(c.hold_timeout, 120);
    CHECK_INT(cbx_config_set(&c, "queue-max-bytes", "2M", err, sizeof err), CBX_OK);
    CHECK_INT(c.queue_max_bytes, 2 << 20);
    CHECK_INT(cbx_config_set(&c, "threads", "per-connection", err, sizeof err), CBX_OK);
    CHECK_INT(c.threads, CBX_THREADS_PER_CONNECTION);
    CHECK_INT(cbx_config_set(&c, "demo", "on", err, sizeof err), CBX_OK);
    CHECK(c.demo);
    CHECK_INT(cbx_config_set(&c, "admin-socket-mode", "0660", err, sizeof err), CBX_OK);
    CHECK_INT(c.admin_socket_mode, 0660);
    CHECK_INT(cbx_config_set(&c, "listn", "x", err, sizeof err), CBX_ERR_NOT_FOUND);
    CHECK_STR(err, "unknown key \"listn\" (did you mean \"listen\"?)");
    CHECK_INT(cbx_config_set(&c, "threads", "many", err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "\"threads\" must be pool or per-connection, not \"many\"");
    CHECK_INT(cbx_config_set(&c, "log-level", "loud", err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "\"log-level\" must be error, warn, info or debug, not \"loud\"");
    CHECK_INT(cbx_config_set(&c, "hold-timeout", "-1", err, sizeof err), CBX_ERR_INVALID);
    CHECK_INT(cbx_config_set(&c, "hold-timeout", "99999", err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "\"hold-timeout\" must be from 0 to 3600, not 99999");
    CHECK_INT(cbx_config_set(&c, "max-batch", "10x", err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "\"max-batch\" wants a whole number, not \"10x\"");
    CHECK_INT(cbx_config_set(&c, "queue-max-bytes", "99999999999999999999", err, sizeof err), CBX_ERR_INVALID);
    CHECK_INT(cbx_config_set(&c, "demo", "maybe", err, sizeof err), CBX_ERR_INVALID);
}

/* The nearest known key, for "did you mean": close typos only. */
static void test_nearest_key(void)
{
    struct cbx_config c;
    char err[256];

    CHECK_STR(cbx_config_nearest_key("listn"), "listen");
    CHECK_STR(cbx_config_nearest_key("hold-timout"), "hold-timeout");
    CHECK_STR(cbx_config_nearest_key("publish_listen"), "publish-listen");
    CHECK_STR(cbx_config_nearest_key("thread"), "threads");
    CHECK_STR(cbx_config_nearest_key("heartbaet"), "heartbeat"); /* a swap counts as one edit */
    CHECK_STR(cbx_config_nearest_key("Demo"), "demo");
    CHECK(cbx_config_nearest_key("nope") == NULL);
    CHECK(cbx_config_nearest_key("x") == NULL);
    CHECK(cbx_config_nearest_key("") == NULL);
    CHECK(cbx_config_nearest_key("frobnicate-everything") == NULL);
    cbx_config_defaults(&c);
    CHECK_INT(cbx_config_set(&c, "frobnicate", "1", err, sizeof err), CBX_ERR_NOT_FOUND);
    CHECK_STR(err, "unknown key \"frobnicate\"");
}

/* listen and publish-listen are checked when read, not when bound. */
static void test_addresses(void)
{
    static const char *const good[][2] = {
        { "127.0.0.1:1800", "127.0.0.1:1800" }, { "*:0", "*:0" }, { "0.0.0.0:65535", "0.0.0.0:65535" },
        { "[::1]:1800", "[::1]:1800" }, { "[::]:1", "[::]:1" }, { "localhost:1800", "localhost:1800" },
        { "[fe80::1%lo]:1800", "[fe80::1%lo]:1800" }, { ":1800", "*:1800" }, { "1800", "*:1800" },
        { "0", "*:0" }, { "01800", "*:01800" },
    };
    static const char *const bad[][2] = {
        { "127.0.0.1:70000", "\"listen\" port must be a number from 0 to 65535, not \"70000\"" },
        { "70000", "\"listen\" port must be a number from 0 to 65535, not \"70000\"" },
        { "127.0.0.1:", "\"listen\" port must be a number from 0 to 65535, not \"\"" },
        { "127.0.0.1:http", "\"listen\" port must be a number from 0 to 65535, not \"http\"" },
        { "127.0.0.1:-1", "\"listen\" port must be a number from 0 to 65535, not \"-1\"" },
        { "127.0.0.1:99999999999999999999", "\"listen\" port must be a number from 0 to 65535, not "
                                            "\"99999999999999999999\"" },
        { "example.com:1800", "\"listen\" host must be a numeric IPv4 address, [IPv6], * or localhost, not "
                              "\"example.com\"" },
        { "1.2.3:1800", "\"listen\" host must be a numeric IPv4 address, [IPv6], * or localhost, not \"1.2.3\"" },
        { "[127.0.0.1]:1800", "\"listen\" host must be a numeric IPv4 address, [IPv6], * or localhost, not "
                              "\"[127.0.0.1]\"" },
        { "::1:1800", "\"listen\" wants an IPv6 address in brackets, such as [::1]:1800, not \"::1:1800\"" },
        { "[::1]1800", "\"listen\" wants PORT, HOST:PORT or [IPV6]:PORT, not \"[::1]1800\"" },
        { "[::1", "\"listen\" wants PORT, HOST:PORT or [IPV6]:PORT, not \"[::1\"" },
        { "", "\"listen\" wants PORT, HOST:PORT or [IPV6]:PORT, not \"\"" },
        { "localhost", "\"listen\" wants PORT, HOST:PORT or [IPV6]:PORT, not \"localhost\"" },
    };
    struct cbx_config c;
    char err[256];

    cbx_config_defaults(&c);
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        CHECK_INT(cbx_config_set(&c, "listen", good[i][0], err, sizeof err), CBX_OK);
        CHECK_STR(c.listen, good[i][1]);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        strcpy(c.listen, "unchanged");
        CHECK_INT(cbx_config_set(&c, "listen", bad[i][0], err, sizeof err), CBX_ERR_INVALID);
        CHECK_STR(err, bad[i][1]);
        CHECK_STR(c.listen, "unchanged");
    }
    /* a bare port keeps the key's default host: the publish port stays on loopback */
    CHECK_INT(cbx_config_set(&c, "publish-listen", "1802", err, sizeof err), CBX_OK);
    CHECK_STR(c.publish_listen, "127.0.0.1:1802");
    CHECK_INT(cbx_config_set(&c, "publish-listen", "127.0.0.1:65536", err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "\"publish-listen\" port must be a number from 0 to 65535, not \"65536\"");
}

/* Rules between keys, checked once every key is read. */
static void test_cross_key_rules(void)
{
    struct cbx_config c;
    char err[256];

    cbx_config_defaults(&c);
    CHECK_INT(cbx_config_check(&c, err, sizeof err), CBX_OK);
    c.hold_timeout = 120;
    CHECK_INT(cbx_config_check(&c, err, sizeof err), CBX_OK);
    c.hold_timeout = 121;
    CHECK_INT(cbx_config_check(&c, err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "hold-timeout (121) must not be more than hold-timeout-max (120)");
    cbx_config_defaults(&c);
    c.heartbeat = 30;
    CHECK_INT(cbx_config_check(&c, err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "idle-timeout (30) must be longer than heartbeat (30)");
    cbx_config_defaults(&c);
    c.subscribe_auth = CBX_AUTH_TOKEN;
    strcpy(c.subscribe_secret, "fifteen bytes..");
    CHECK_INT(cbx_config_check(&c, err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "subscribe-auth = token needs a subscribe-secret of at least 16 bytes");
    strcpy(c.subscribe_secret, "sixteen bytes...");
    CHECK_INT(cbx_config_check(&c, err, sizeof err), CBX_OK);
}

static void test_file(void)
{
    struct cbx_config c;
    char path[] = "/tmp/cbx-config-XXXXXX", err[512];
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");

    fprintf(f, "# comment\n\nlisten = 127.0.0.1:9\n  heartbeat=5  \ncors-origins = \"\"\nlistn = 1\n");
    fclose(f);
    cbx_config_defaults(&c);
    CHECK_INT(cbx_config_load(&c, path, err, sizeof err), CBX_ERR_NOT_FOUND);
    CHECK(strstr(err, "line 6: unknown key \"listn\" (did you mean \"listen\"?)") != NULL);
    CHECK_STR(c.listen, "127.0.0.1:9");
    CHECK_INT(c.heartbeat, 5);
    CHECK_INT(cbx_config_parse_line(&c, "no equals sign", 3, err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "line 3: expected \"key = value\"");
    CHECK_INT(cbx_config_parse_line(&c, "listen = 127.0.0.1:70000", 4, err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "line 4: \"listen\" port must be a number from 0 to 65535, not \"70000\"");
    CHECK_INT(cbx_config_parse_line(&c, "threads = poool", 5, err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "line 5: \"threads\" must be pool or per-connection, not \"poool\"");
    unlink(path);
    CHECK_INT(cbx_config_load(&c, "/nonexistent/cbx.conf", err, sizeof err), CBX_ERR_IO);
}

static void test_write_round_trips(void)
{
    struct cbx_config a, b;
    char path[] = "/tmp/cbx-config-XXXXXX", err[512];
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");

    cbx_config_defaults(&a);
    a.hold_timeout = 7;
    a.queue_max_bytes = 3 << 20;
    cbx_config_write(&a, f);
    fclose(f);
    memset(&b, 0x55, sizeof b);
    cbx_config_defaults(&b);
    CHECK_INT(cbx_config_load(&b, path, err, sizeof err), CBX_OK);
    CHECK(memcmp(&a, &b, sizeof a) == 0);
    unlink(path);
}

/* Each change a merge reports, as "key old -> new[ restart][ max M]|". */
static void note(void *arg, const struct cbx_config_change *ch)
{
    char *out = arg;
    size_t n = strlen(out);

    snprintf(out + n, 2048 - n, "%s %s -> %s%s%s%s|", ch->key, ch->old_text, ch->new_text,
             ch->restart ? " restart" : "", ch->max_text ? " max " : "", ch->max_text ? ch->max_text : "");
}

static void test_reload_merge(void)
{
    struct cbx_config start, cur, next, other;
    char seen[2048] = "", err[256];

    cbx_config_defaults(&start);
    start.max_connections = 100;
    cur = start;
    next = start;
    CHECK_INT(cbx_config_merge(&next, &cur, &start, note, seen), 0);
    CHECK_STR(seen, "");
    CHECK(cbx_config_equal(&next, &cur));

    CHECK_INT(cbx_config_set(&next, "listen", "127.0.0.1:9", err, sizeof err), CBX_OK);
    CHECK_INT(cbx_config_set(&next, "max-connections", "200", err, sizeof err), CBX_OK);
    CHECK_INT(cbx_config_set(&next, "heartbeat", "5", err, sizeof err), CBX_OK);
    CHECK_INT(cbx_config_set(&next, "cors-origins", "http://x", err, sizeof err), CBX_OK);
    CHECK_INT(cbx_config_set(&next, "publish-secret", "abc", err, sizeof err), CBX_OK);
    CHECK_INT(cbx_config_set(&next, "idle-timeout", "40", err, sizeof err), CBX_OK);
    CHECK(!cbx_config_equal(&next, &cur));
    CHECK_INT(cbx_config_merge(&next, &cur, &start, note, seen), 3);
    CHECK_STR(seen, "listen *:1800 -> 127.0.0.1:9 restart|max-connections 100 -> 200 restart max 100|"
                    "heartbeat 15 -> 5|cors-origins  -> http://x|publish-secret  -> (hidden)|"
                    "idle-timeout 30 -> 40 restart|");
    /* the restart-only keys kept their running values, the others took the new ones */
    CHECK_STR(next.listen, "*:1800");
    CHECK_INT(next.max_connections, 100);
    CHECK_INT(next.idle_timeout, 30);
    CHECK_INT(next.heartbeat, 5);
    CHECK_STR(next.cors_origins, "http://x");
    CHECK_STR(next.publish_secret, "abc");

    /* max-connections may go down, and back up to its value at start */
    cur = next;
    next.max_connections = 50;
    seen[0] = '\0';
    CHECK_INT(cbx_config_merge(&next, &cur, &start, note, seen), 1);
    CHECK_STR(seen, "max-connections 100 -> 50|");
    cur = next;
    next.max_connections = 100;
    seen[0] = '\0';
    CHECK_INT(cbx_config_merge(&next, &cur, &start, note, seen), 1);
    CHECK_STR(seen, "max-connections 50 -> 100|");
    /* a secret changed is hidden both ways */
    cur = next;
    CHECK_INT(cbx_config_set(&next, "publish-secret", "def", err, sizeof err), CBX_OK);
    seen[0] = '\0';
    CHECK_INT(cbx_config_merge(&next, &cur, &start, NULL, NULL), 1);
    CHECK_INT(cbx_config_merge(&next, &cur, &start, note, seen), 1);
    CHECK_STR(seen, "publish-secret (hidden) -> (hidden)|");

    /* values compare as values: not the bytes after a string's end, nor 1m against 1024k */
    cbx_config_defaults(&cur);
    cbx_config_defaults(&other);
    CHECK_INT(cbx_config_set(&cur, "cors-origins", "http://longer.example", err, sizeof err), CBX_OK);
    CHECK_INT(cbx_config_set(&cur, "cors-origins", "http://a", err, sizeof err), CBX_OK);
    CHECK_INT(cbx_config_set(&other, "cors-origins", "http://a", err, sizeof err), CBX_OK);
    CHECK_INT(cbx_config_set(&other, "queue-max-bytes", "1024k", err, sizeof err), CBX_OK);
    CHECK(cbx_config_equal(&cur, &other));
}

int main(void)
{
    RUN(test_defaults);
    RUN(test_values_and_errors);
    RUN(test_nearest_key);
    RUN(test_addresses);
    RUN(test_cross_key_rules);
    RUN(test_file);
    RUN(test_write_round_trips);
    RUN(test_reload_merge);
    TEST_DONE();
}
