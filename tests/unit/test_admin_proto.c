/* test_admin_proto.c - the admin socket's line protocol (common/admin_proto.c):
 * requests the daemon must accept or refuse, ids echoed exactly, answers the
 * CLI must read, and integers that never turn into exponents. */
#include "../../common/admin_proto.h"
#include "../../common/config.h"
#include "test.h"

static enum cbx_err parse(const char *line, struct cbx_admin_request *r, char *err, size_t errlen)
{
    err[0] = '\0';
    return cbx_admin_request_parse(line, strlen(line), r, err, errlen);
}

static void test_request_ok(void)
{
    struct cbx_admin_request r;
    char err[256];

    CHECK_INT(parse("{\"version\":1,\"id\":7,\"cmd\":\"stats\"}", &r, err, sizeof err), CBX_OK);
    CHECK_STR(r.cmd, "stats");
    CHECK_STR(r.id, "7");
    cbx_admin_request_free(&r);

    /* no version means 1; a string id is echoed as a JSON string; white space around is fine */
    CHECK_INT(parse("  {\"cmd\":\"ping\",\"id\":\"a\\\"b\"} \r", &r, err, sizeof err), CBX_OK);
    CHECK_STR(r.id, "\"a\\\"b\"");
    cbx_admin_request_free(&r);

    /* no id: null; a big integer id keeps every digit */
    CHECK_INT(parse("{\"cmd\":\"ping\"}", &r, err, sizeof err), CBX_OK);
    CHECK_STR(r.id, "null");
    cbx_admin_request_free(&r);
    CHECK_INT(parse("{\"cmd\":\"ping\",\"id\":1795563063594190}", &r, err, sizeof err), CBX_OK);
    CHECK_STR(r.id, "1795563063594190");
    cbx_admin_request_free(&r);
    CHECK_INT(parse("{\"cmd\":\"ping\",\"id\":1.5}", &r, err, sizeof err), CBX_OK);
    CHECK_STR(r.id, "1.5");
    cbx_admin_request_free(&r);
}

static void test_request_refused(void)
{
    struct cbx_admin_request r;
    char err[256], big[CBX_ADMIN_LINE_MAX + 64];

    CHECK_INT(parse("nope", &r, err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "invalid JSON: a request is one JSON object on one line");
    CHECK_STR(r.id, "null");
    cbx_admin_request_free(&r);

    CHECK_INT(parse("{\"cmd\":\"ping\"} {}", &r, err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "invalid JSON: a request is one JSON object on one line");
    cbx_admin_request_free(&r);

    /* a raw newline inside a string, and bytes that are not UTF-8 */
    CHECK_INT(parse("{\"cmd\":\"publish\",\"args\":{\"queue\":\"q\",\"data\":\"a\nb\"}}", &r, err, sizeof err),
              CBX_ERR_INVALID);
    CHECK_STR(err, "invalid JSON: line 1, column 47: control character U+000A inside a string (write it as \\n)");
    cbx_admin_request_free(&r);
    CHECK_INT(parse("{\"cmd\":\"ping\",\"x\":\"\xff\"}", &r, err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "invalid JSON: line 1, column 20: invalid UTF-8");
    cbx_admin_request_free(&r);

    CHECK_INT(parse("[1,2]", &r, err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "a request must be a JSON object");
    cbx_admin_request_free(&r);

    /* errors after the id was read echo it */
    CHECK_INT(parse("{\"id\":3}", &r, err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "\"cmd\" is missing");
    CHECK_STR(r.id, "3");
    cbx_admin_request_free(&r);

    CHECK_INT(parse("{\"id\":4,\"cmd\":5}", &r, err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "\"cmd\" must be a string");
    CHECK_STR(r.id, "4");
    cbx_admin_request_free(&r);

    CHECK_INT(parse("{\"id\":5,\"version\":2,\"cmd\":\"ping\"}", &r, err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "unsupported protocol version 2 (cometboxd speaks 1)");
    CHECK_STR(r.id, "5");
    cbx_admin_request_free(&r);

    CHECK_INT(parse("{\"id\":[1],\"cmd\":\"ping\"}", &r, err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "\"id\" must be a number, a string of at most 64 bytes, or null");
    CHECK_STR(r.id, "null");
    cbx_admin_request_free(&r);

    memset(big, ' ', sizeof big);
    CHECK_INT(cbx_admin_request_parse(big, sizeof big, &r, err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "request line over 65536 bytes");
    cbx_admin_request_free(&r);
}

static void test_args(void)
{
    static const char *const allowed[] = { "queue", "reason", NULL };
    struct cbx_admin_request r;
    char err[256];

    CHECK_INT(parse("{\"id\":1,\"cmd\":\"kick\",\"queue\":\"a\",\"reason\":\"x\"}", &r, err, sizeof err), CBX_OK);
    CHECK_INT(cbx_admin_args_check(&r, allowed, err, sizeof err), CBX_OK);
    CHECK_STR(cbx_admin_arg(&r, "queue")->valuestring, "a");
    CHECK(cbx_admin_arg(&r, "client") == NULL);
    cbx_admin_request_free(&r);

    CHECK_INT(parse("{\"id\":1,\"cmd\":\"kick\",\"queeu\":\"a\"}", &r, err, sizeof err), CBX_OK);
    CHECK_INT(cbx_admin_args_check(&r, allowed, err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "kick: unknown argument \"queeu\"");
    cbx_admin_request_free(&r);
}

static void test_replies(void)
{
    struct cbx_buf b;
    cJSON *res = cJSON_CreateObject();

    cJSON_AddNumberToObject(res, "id", 1795563063594190.0); /* cJSON itself would print 1.79556306359419e+15 */
    cJSON_AddNumberToObject(res, "rate", 2.5);
    cJSON_AddNumberToObject(res, "tenth", 0.1);
    cJSON_AddNumberToObject(res, "third", 1.0 / 3);
    cJSON_AddNullToObject(res, "never");
    cJSON_AddStringToObject(res, "s", "a\"\n");
    cbx_buf_init(&b);
    cbx_admin_reply_ok(&b, "7", res);
    cbx_admin_reply_error(&b, "\"x\"", "no such queue: alice");
    const char *m = "{\"id\":1,\"queue\":\"q\",\"data\":\"hi\"}";
    cbx_admin_reply_message(&b, "9", m, strlen(m));
    cbx_admin_reply_end(&b, "9", "stopping");
    CHECK_STR(b.s, "{\"id\":7,\"ok\":true,\"result\":{\"id\":1795563063594190,\"rate\":2.5,\"tenth\":0.1,"
                   "\"third\":0.33333333333333331,\"never\":null,"
                   "\"s\":\"a\\\"\\n\"}}\n"
                   "{\"id\":\"x\",\"ok\":false,\"error\":\"no such queue: alice\"}\n"
                   "{\"id\":9,\"message\":{\"id\":1,\"queue\":\"q\",\"data\":\"hi\"}}\n"
                   "{\"id\":9,\"end\":\"stopping\"}\n");
    cbx_buf_free(&b);
    cJSON_Delete(res);
}

static void test_request_encode_and_responses(void)
{
    cJSON *args = cJSON_CreateObject();
    struct cbx_admin_response resp;
    char err[256], *line;
    size_t len;

    cJSON_AddStringToObject(args, "queue", "alice");
    cJSON_AddNumberToObject(args, "n", 1795563063594190.0);
    line = cbx_admin_request_encode(12, "publish", args, &len);
    CHECK_STR(line, "{\"version\":1,\"id\":12,\"cmd\":\"publish\",\"queue\":\"alice\",\"n\":1795563063594190}\n");
    CHECK_INT(len, strlen(line));
    free(line);
    cJSON_Delete(args);

    const char *ok = "{\"id\":12,\"ok\":true,\"result\":{\"id\":5}}";
    CHECK_INT(cbx_admin_response_parse(ok, strlen(ok), &resp, err, sizeof err), CBX_OK);
    CHECK_INT(resp.kind, CBX_ADMIN_OK);
    CHECK_INT(resp.id, 12);
    CHECK_INT(cJSON_GetObjectItem(resp.result, "id")->valuedouble, 5);
    cbx_admin_response_free(&resp);

    const char *bad = "{\"id\":null,\"ok\":false,\"error\":\"invalid JSON\"}";
    CHECK_INT(cbx_admin_response_parse(bad, strlen(bad), &resp, err, sizeof err), CBX_OK);
    CHECK_INT(resp.kind, CBX_ADMIN_ERROR);
    CHECK_INT(resp.id, -1);
    CHECK_STR(resp.error, "invalid JSON");
    cbx_admin_response_free(&resp);

    const char *msg = "{\"id\":3,\"message\":{\"id\":1,\"queue\":\"q\",\"data\":\"hi\"}}";
    CHECK_INT(cbx_admin_response_parse(msg, strlen(msg), &resp, err, sizeof err), CBX_OK);
    CHECK_INT(resp.kind, CBX_ADMIN_MESSAGE);
    CHECK_STR(cJSON_GetObjectItem(resp.message, "queue")->valuestring, "q");
    cbx_admin_response_free(&resp);

    const char *end = "{\"id\":3,\"end\":\"overflow\"}";
    CHECK_INT(cbx_admin_response_parse(end, strlen(end), &resp, err, sizeof err), CBX_OK);
    CHECK_INT(resp.kind, CBX_ADMIN_END);
    CHECK_STR(resp.end, "overflow");
    cbx_admin_response_free(&resp);

    const char *junk = "{\"id\":3,\"whatever\":1}";
    CHECK_INT(cbx_admin_response_parse(junk, strlen(junk), &resp, err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "the daemon's answer is not one of this protocol (version 1)");
    cbx_admin_response_free(&resp);
    CHECK_INT(cbx_admin_response_parse("HTTP/1.1 400", 12, &resp, err, sizeof err), CBX_ERR_INVALID);
    cbx_admin_response_free(&resp);
}

static void test_default_socket_matches_config(void)
{
    struct cbx_config cfg;

    cbx_config_defaults(&cfg);
    CHECK_STR(cfg.admin_socket, CBX_ADMIN_SOCKET_DEFAULT);
    CHECK_INT(cfg.admin_socket_mode, 0600);
}

int main(void)
{
    RUN(test_request_ok);
    RUN(test_request_refused);
    RUN(test_args);
    RUN(test_replies);
    RUN(test_request_encode_and_responses);
    RUN(test_default_socket_matches_config);
    TEST_DONE();
}
