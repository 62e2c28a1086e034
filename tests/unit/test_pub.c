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

/* Raw control characters inside JSON strings and invalid UTF-8 anywhere in
 * JSON text are refused with their position (issue 16): they used to pass
 * through into the answers and break long-poll JSON, SSE lines and tails. */
static void test_json_raw_text(void)
{
    struct cbx_pub_batch b;

    CHECK_INT(json("{\"queue\":\"q\",\"data\":{\"k\":\"a\nb\"}}", &b), CBX_ERR_INVALID);
    CHECK_STR(detail, "line 1, column 28: control character U+000A inside a string (write it as \\n)");
    CHECK_INT(b.n, 0);
    CHECK_INT(json("{\"queue\":\"q\",\"data\":\"a\tb\"}", &b), CBX_ERR_INVALID);
    CHECK_STR(detail, "line 1, column 23: control character U+0009 inside a string (write it as \\t)");
    CHECK_INT(json("{\"queue\":\"q\",\"data\":[\"\x01\"]}", &b), CBX_ERR_INVALID);
    CHECK_STR(detail, "line 1, column 23: control character U+0001 inside a string (write it as \\u0001)");
    CHECK_INT(json("{\"queue\":\"q\",\"data\":{\"a\rb\":1}}", &b), CBX_ERR_INVALID);
    CHECK_STR(detail, "line 1, column 24: control character U+000D inside a string (write it as \\r)");
    CHECK_INT(json("[\n{\"queue\":\"q\",\"data\":\"x\"},\n{\"queue\":\"q\",\"data\":\"\x1f\"}]", &b), CBX_ERR_INVALID);
    CHECK_STR(detail, "line 3, column 22: control character U+001F inside a string (write it as \\u001f)");
    /* invalid UTF-8, inside strings or not; columns count characters, as expat's do */
    CHECK_INT(json("{\"queue\":\"q\",\"data\":\"\xff\"}", &b), CBX_ERR_INVALID);
    CHECK_STR(detail, "line 1, column 22: invalid UTF-8");
    CHECK_INT(json("{\"queue\":\"q\",\"data\":{\"k\":\"\xc0\xaf\"}}", &b), CBX_ERR_INVALID); /* overlong */
    CHECK_STR(detail, "line 1, column 27: invalid UTF-8");
    CHECK_INT(json("{\"queue\":\"q\",\"data\":\"\xed\xa0\x80\"}", &b), CBX_ERR_INVALID); /* a surrogate */
    CHECK_STR(detail, "line 1, column 22: invalid UTF-8");
    CHECK_INT(json("{\"queue\":\"q\",\"data\":{\"\xc3\xa9\":\"\xe2\x82\"}}", &b), CBX_ERR_INVALID); /* cut short */
    CHECK_STR(detail, "line 1, column 27: invalid UTF-8");
    CHECK_INT(json("{\"queue\":\"q\",\n\"data\":1}\xff", &b), CBX_ERR_INVALID); /* outside a string */
    CHECK_STR(detail, "line 2, column 10: invalid UTF-8");
    /* white space between tokens is not inside a string; escapes and UTF-8 pass */
    CHECK_INT(json("{\"queue\":\"q\",\n\t\"data\":{\"k\\n\":\"\xc3\xa9\\t\xf0\x9f\x98\x80\"}}", &b), CBX_OK);
    CHECK_STR(b.items[0].data, "{\"k\\n\":\"\xc3\xa9\\t\xf0\x9f\x98\x80\"}");
    cbx_pub_batch_free(&b);
    /* the same rules for <message type="json"> (character references make raw control characters) */
    CHECK_INT(xml("<message queue=\"q\" type=\"json\">{\"k\":\"a&#10;b\"}</message>", &b), CBX_ERR_INVALID);
    CHECK_STR(detail, "line 1, column 47: type=\"json\" message: line 1, column 8: control character U+000A inside a "
                      "string (write it as \\n)");
    CHECK_INT(xml("<message queue=\"q\" type=\"json\">[\"\t\"]</message>", &b), CBX_ERR_INVALID);
    CHECK_STR(detail, "line 1, column 37: type=\"json\" message: line 1, column 3: control character U+0009 inside a "
                      "string (write it as \\t)");
    /* and for whoever adds JSON data directly (the admin socket's publish) */
    {
        size_t n;
        CHECK(cbx_json_compact("\"a\tb\"", 5, &n, detail, sizeof detail) == NULL);
        CHECK_STR(detail, "line 1, column 3: control character U+0009 inside a string (write it as \\t)");
        memset(&b, 0, sizeof b);
        CHECK_INT(cbx_pub_batch_add(&b, "q", 1, "[\"\xff\"]", 5, true, &lim, detail, sizeof detail), CBX_ERR_INVALID);
        CHECK_STR(detail, "data for \"q\" is not valid JSON text: line 1, column 3: invalid UTF-8");
        CHECK_INT(cbx_pub_batch_add(&b, "q", 1, "[\"\n\"]", 5, true, &lim, detail, sizeof detail), CBX_ERR_INVALID);
        CHECK_STR(detail, "data for \"q\" is not valid JSON text: line 1, column 3: control character U+000A inside "
                          "a string (write it as \\n)");
        CHECK_INT(b.n, 0);
    }
}

/* Errors name batch items counting from 1, and a size error needs no line
 * and column (it is about a message, not a spot in the text). */
static void test_error_positions(void)
{
    struct cbx_pub_batch b;

    CHECK_INT(xml("<messages><message queue=\"a\">x</message>\n<message queue=\"b\">"
                  "0123456789012345678901234567890123456789012345678901234567890123456789</message></messages>", &b),
              CBX_ERR_TOO_LARGE);
    CHECK_STR(detail, "message 2: data for \"b\" has more than max-message-bytes (64)");
    CHECK_INT(xml("<Request><Command>Queue</Command><User>u</User><Message>"
                  "0123456789012345678901234567890123456789012345678901234567890123456789</Message></Request>", &b),
              CBX_ERR_TOO_LARGE);
    CHECK_STR(detail, "message 1: <Message> has more than max-message-bytes (64)");
    CHECK_INT(json("[{\"queue\":\"a\",\"data\":\"x\"},{\"queue\":\"b\",\"data\":"
                   "\"01234567890123456789012345678901234567890123456789012345678901234\"}]", &b), CBX_ERR_TOO_LARGE);
    CHECK_STR(detail, "message 2: data for \"b\" has 65 bytes, more than max-message-bytes (64)");
    CHECK_INT(json("[{\"queue\":\"a\",\"data\":1},{\"queue\":\"no/slash\",\"data\":1}]", &b), CBX_ERR_INVALID);
    CHECK_STR(detail, "message 2: bad queue name \"no/slash\": use 1-128 letters, digits or ._:@-");
    CHECK_INT(json("[{\"queue\":\"a\",\"data\":1},{\"queue\":\"a\",\"data\":2,\"x\":3}]", &b), CBX_ERR_INVALID);
    CHECK_STR(detail, "message 2: unexpected member \"x\"");
    /* a raw & in XML: expat says "invalid token" just after it; point at the & and say how to write it */
    CHECK_INT(xml("<message queue=\"q\">a & b</message>", &b), CBX_ERR_INVALID);
    CHECK_STR(detail, "line 1, column 22: not well-formed (invalid token) (a literal & must be written &amp;)");
    CHECK_INT(xml("<message queue=\"q\">\xc3\xa9 &amp b</message>", &b), CBX_ERR_INVALID);
    CHECK_STR(detail, "line 1, column 22: not well-formed (invalid token) (a literal & must be written &amp;)");
    CHECK_INT(xml("<message queue=\"a&b\">x</message>", &b), CBX_ERR_INVALID);
    CHECK_STR(detail, "line 1, column 18: not well-formed (invalid token) (a literal & must be written &amp;)");
    CHECK_INT(xml("<message queue=\"q\">Tom&Jerry;</message>", &b), CBX_ERR_INVALID);
    CHECK_STR(detail, "line 1, column 23: undefined entity (a literal & must be written &amp;)");
    CHECK_INT(xml("<message queue=\"q\">a < b</message>", &b), CBX_ERR_INVALID);
    CHECK_STR(detail, "line 1, column 23: not well-formed (invalid token)");
    CHECK_INT(xml("<message queue=\"q\">&#1;</message>", &b), CBX_ERR_INVALID);
    CHECK_STR(detail, "line 1, column 20: reference to invalid character number");
}

/* Text data is always re-encoded as a JSON string: every control character
 * escaped (\n, \r, \t, others and DEL as \u00XX); U+2028 and U+2029 stay as
 * they are (valid JSON, and no line break for SSE or the admin tail). */
static void test_text_reencoding(void)
{
    struct cbx_msg *m = cbx_msg_create("q", 1, "a\nb\r\t\x01\x1f\x7f\xe2\x80\xa8.", 12, 0);
    char out[256];

    CHECK(m != NULL);
    cbx_msg_set_id(m, 1);
    snprintf(out, sizeof out, "%.*s", (int)m->len, m->json);
    CHECK_STR(out, "{\"id\":1,\"queue\":\"q\",\"data\":\"a\\nb\\r\\t\\u0001\\u001f\\u007f\xe2\x80\xa8.\"}");
    cbx_msg_unref(m);
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
    RUN(test_json_raw_text);
    RUN(test_error_positions);
    RUN(test_text_reencoding);
    RUN(test_msg_encoding);
    TEST_DONE();
}
