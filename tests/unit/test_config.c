/* test_config.c - config keys: defaults, values, errors with line numbers. */
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
    CHECK_STR(err, "unknown key \"listn\"");
    CHECK_INT(cbx_config_set(&c, "threads", "many", err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "\"threads\" has no value \"many\"");
    CHECK_INT(cbx_config_set(&c, "hold-timeout", "-1", err, sizeof err), CBX_ERR_INVALID);
    CHECK_INT(cbx_config_set(&c, "hold-timeout", "99999", err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "\"hold-timeout\" must be from 0 to 3600, not 99999");
    CHECK_INT(cbx_config_set(&c, "max-batch", "10x", err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "\"max-batch\" wants a whole number, not \"10x\"");
    CHECK_INT(cbx_config_set(&c, "queue-max-bytes", "99999999999999999999", err, sizeof err), CBX_ERR_INVALID);
    CHECK_INT(cbx_config_set(&c, "demo", "maybe", err, sizeof err), CBX_ERR_INVALID);
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
    CHECK(strstr(err, "line 6: unknown key \"listn\"") != NULL);
    CHECK_STR(c.listen, "127.0.0.1:9");
    CHECK_INT(c.heartbeat, 5);
    CHECK_INT(cbx_config_parse_line(&c, "no equals sign", 3, err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "line 3: expected \"key = value\"");
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

int main(void)
{
    RUN(test_defaults);
    RUN(test_values_and_errors);
    RUN(test_file);
    RUN(test_write_round_trips);
    TEST_DONE();
}
