/* test_pub.c - the XML and JSON publish parsers, including hostile input. */
#include "../../common/msg.h"
#include "../../common/pub.h"
#include "test.h"

static const struct cbx_pub_limits lim = { 64 };
static char detail[512];

static enum cbx_err xml(const char *s, struct cbx_pub_batch *b)
{
    memset(b, 0, sizeof *b);
    detail[0] = '\0';
    return cbx_pub_parse_xml(s, strlen(s), &lim, b, detail, sizeof detail);
}

static enum cbx_err json(const char *s, struct cbx_pub_batch *b)
{
    memset(b, 0, sizeof *b);
    detail[0] = '\0';
    return cbx_pub_parse_json(s, strlen(s), &lim, b, detail, sizeof detail);
}

static void test_xml_batch(void)
{
    struct cbx_pub_batch b;

    CHECK_INT(xml("<?xml version=\"1.0\"?>\n<messages>\n <message queue=\"alice\">Hello &amp; &#233;</message>\n"
                  " <message queue=\"room.1\" type=\"json\"> {\"x\": [1, 2]} </message>\n</messages>", &b), CBX_OK);
    CHECK_INT(b.n, 2);
    CHECK_STR(b.items[0].queue, "alice");
    CHECK_STR(b.items[0].data, "Hello & \xc3\xa9");
    CHECK(!b.items[0].is_json);
    CHECK_STR(b.items[1].data, "{\"x\":[1,2]}");
    CHECK(b.items[1].is_json);
    cbx_pub_batch_free(&b);
}

static void test_xml_single_and_legacy(void)
{
    struct cbx_pub_batch b;

    CHECK_INT(xml("<message queue=\"q\"></message>", &b), CBX_OK);
    CHECK_INT(b.n, 1);
    CHECK_STR(b.items[0].data, "");
    cbx_pub_batch_free(&b);
    CHECK_INT(xml("<Request><Command>Queue</Command><User>u@x</User><Message>Hi</Message></Request>", &b), CBX_OK);
    CHECK_INT(b.n, 1);
    CHECK_STR(b.items[0].queue, "u@x");
    CHECK_STR(b.items[0].data, "Hi");
    cbx_pub_batch_free(&b);
}

static void test_xml_errors(void)
{
    struct cbx_pub_batch b;

    CHECK_INT(xml("<messages><message>x</message></messages>", &b), CBX_ERR_INVALID);
    CHECK_STR(detail, "line 1, column 11: <message> needs a queue attribute");
    CHECK_INT(b.n, 0);
    CHECK_INT(xml("<messages>text<message queue=\"a\">x</message></messages>", &b), CBX_ERR_INVALID);
    CHECK_STR(detail, "line 1, column 11: text outside <message>");
    CHECK_INT(xml("<foo/>", &b), CBX_ERR_INVALID);
    CHECK_STR(detail, "line 1, column 1: unknown root element <foo>: expected <messages>, <message> or <Request>");
    CHECK_INT(xml("<message queue=\"a\">", &b), CBX_ERR_INVALID);
    CHECK_STR(detail, "line 1, column 20: no element found");
    CHECK_INT(xml("", &b), CBX_ERR_INVALID);
    CHECK_INT(xml("<message queue=\"a\" type=\"json\">{</message>", &b), CBX_ERR_INVALID);
    CHECK_INT(xml("<message queue=\"a\">0123456789012345678901234567890123456789012345678901234567890123456789"
                  "</message>", &b), CBX_ERR_TOO_LARGE);
    CHECK_INT(xml("<Request><Command>Queue</Command><User>a</User></Request>", &b), CBX_ERR_INVALID);
    CHECK_STR(detail, "line 1, column 48: <Request> needs <Message>");
    CHECK_INT(xml("<messages><message queue=\"a\">1</message><message queue=\"\">2</message></messages>", &b),
              CBX_ERR_INVALID);
    CHECK_INT(b.n, 0); /* atomic: the good first message is gone too */
}

static void test_xml_hostile(void)
{
    struct cbx_pub_batch b;
    static char deep[16384];

    deep[0] = '\0';

    CHECK_INT(xml("<!DOCTYPE m [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]>"
                  "<message queue=\"q\">&b;</message>", &b), CBX_ERR_INVALID);
    CHECK(strstr(detail, "DOCTYPE declarations are not allowed") != NULL);
    CHECK_INT(xml("<!DOCTYPE m SYSTEM \"http://127.0.0.1:1/x.dtd\"><message queue=\"q\">x</message>", &b),
              CBX_ERR_INVALID);
    CHECK_INT(xml("<message queue=\"q\">&undefined;</message>", &b), CBX_ERR_INVALID);
    for (int i = 0; i < 500; i++)
        strcat(deep, "<m>");
    CHECK_INT(xml(deep, &b), CBX_ERR_INVALID);
    CHECK(strstr(detail, "unknown root element <m>") != NULL);
    strcpy(deep, "<messages>");
    for (int i = 0; i < 500; i++)
        strcat(deep, "<message queue=\"q\">");
    CHECK_INT(xml(deep, &b), CBX_ERR_INVALID);
    CHECK_STR(detail, "line 1, column 30: <message> inside a message: a message holds text only");
    CHECK_INT(xml("<message queue=\"q\">\xc3\x28</message>", &b), CBX_ERR_INVALID);
    CHECK_INT(xml("<message queue=\"q\">&#0;</message>", &b), CBX_ERR_INVALID);
    CHECK_INT(xml("<message queue=\"q\" queue=\"r\">x</message>", &b), CBX_ERR_INVALID);
}

static void test_json(void)
{
    struct cbx_pub_batch b;

    CHECK_INT(json("{\"queue\":\"a\",\"data\":\"x\\ny\"}", &b), CBX_OK);
    CHECK_INT(b.n, 1);
    CHECK_STR(b.items[0].data, "x\ny");
    CHECK(!b.items[0].is_json);
    cbx_pub_batch_free(&b);
    CHECK_INT(json("[{\"queue\":\"a\",\"data\":{\"k\": [true, null]}}, {\"data\": 5, \"queue\": \"b\"}]", &b), CBX_OK);
    CHECK_INT(b.n, 2);
    CHECK_STR(b.items[0].data, "{\"k\":[true,null]}");
    CHECK(b.items[0].is_json);
    CHECK_STR(b.items[1].data, "5");
    cbx_pub_batch_free(&b);
    /* numbers keep every digit: cJSON would print 1.79556306359419e+15 */
    CHECK_INT(json("[{\"queue\":\"a\",\"data\":1795563063594191}, {\"data\" : { \"n\" : [ 12345678901234567890 , -0.1e-7 ],"
                   " \"s\":\"a \\\" b\" } ,\"queue\":\"b\"}]", &b), CBX_OK);
    CHECK_INT(b.n, 2);
    CHECK_STR(b.items[0].data, "1795563063594191");
    CHECK_STR(b.items[1].data, "{\"n\":[12345678901234567890,-0.1e-7],\"s\":\"a \\\" b\"}");
    cbx_pub_batch_free(&b);
    CHECK_INT(xml("<message queue=\"q\" type=\"json\"> [ 9007199254740993 , \"x y\" ] </message>", &b), CBX_OK);
    CHECK_STR(b.items[0].data, "[9007199254740993,\"x y\"]");
    cbx_pub_batch_free(&b);
    CHECK_INT(json("[]", &b), CBX_ERR_INVALID);
    CHECK_STR(detail, "empty batch: no messages");
    CHECK_INT(json("{\"queue\":\"a\"}", &b), CBX_ERR_INVALID);
    CHECK_STR(detail, "message 1: \"data\" is missing");
    CHECK_INT(json("{\"queue\":1,\"data\":1}", &b), CBX_ERR_INVALID);
    CHECK_STR(detail, "message 1: \"queue\" must be a string");
    CHECK_INT(json("{\"queue\":\"a\",\"data\":1} x", &b), CBX_ERR_INVALID);
    CHECK_STR(detail, "line 1, column 24: text after the JSON value");
    CHECK_INT(json("{\"queue\":\n\"a\",,}", &b), CBX_ERR_INVALID);
    CHECK_STR(detail, "line 2, column 6: invalid JSON");
    CHECK_INT(json("[1]", &b), CBX_ERR_INVALID);
    CHECK_INT(json("{\"queue\":\"a\",\"data\":\"a\\u0000b\"}", &b), CBX_ERR_INVALID);
    CHECK_STR(detail, "line 1, column 23: \\u0000 is not allowed in a string");
    CHECK_INT(json("{\"queue\":\"a\",\"data\":{\"k\":\"\\\\u0000\"}}", &b), CBX_OK); /* an escaped backslash */
    CHECK_STR(b.items[0].data, "{\"k\":\"\\\\u0000\"}");
    cbx_pub_batch_free(&b);
    CHECK_INT(json("{\"queue\":\"a b\",\"data\":1}", &b), CBX_ERR_INVALID);
    CHECK_INT(json("{\"queue\":\"a\",\"data\":\"\\ud800\"}", &b), CBX_ERR_INVALID);
    /* deep nesting is bounded by cJSON's nesting limit, not the stack */
    {
        static char deep[20000];
        memset(deep, '[', sizeof deep - 1);
        CHECK_INT(json(deep, &b), CBX_ERR_INVALID);
    }
}

static void test_msg_encoding(void)
{
    struct cbx_msg *m = cbx_msg_create("q", 1, "a\"b\\c\x01\xc3\xa9", 8, 0);
    char out[256];

    CHECK(m != NULL);
    cbx_msg_set_id(m, 9007199254740991ull);
    snprintf(out, sizeof out, "%.*s", (int)m->len, m->json);
    CHECK_STR(out, "{\"id\":9007199254740991,\"queue\":\"q\",\"data\":\"a\\\"b\\\\c\\u0001\xc3\xa9\"}");
    cbx_msg_unref(m);
    m = cbx_msg_create("q", 1, "[1]", 3, 1);
    cbx_msg_set_id(m, 7);
    snprintf(out, sizeof out, "%.*s", (int)m->len, m->json);
    CHECK_STR(out, "{\"id\":7,\"queue\":\"q\",\"data\":[1]}");
    cbx_msg_unref(m);
    CHECK(cbx_utf8_valid("\xf0\x9f\x98\x80", 4));
    CHECK(!cbx_utf8_valid("\xf0\x9f\x98", 3));
    CHECK(!cbx_utf8_valid("\xed\xa0\x80", 3)); /* a surrogate */
    CHECK(!cbx_utf8_valid("\xc0\xaf", 2));     /* overlong */
    CHECK(!cbx_utf8_valid("a\0b", 3));
}

int main(void)
{
    RUN(test_xml_batch);
    RUN(test_xml_single_and_legacy);
    RUN(test_xml_errors);
    RUN(test_xml_hostile);
    RUN(test_json);
    RUN(test_msg_encoding);
    TEST_DONE();
}
