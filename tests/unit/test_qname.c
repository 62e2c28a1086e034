/* test_qname.c - queue names, queue lists, ids from URLs. */
#include "../../common/qname.h"
#include "test.h"

static void test_names(void)
{
    CHECK(cbx_qname_valid("alice", 5));
    CHECK(cbx_qname_valid("room.1:a@b_c-d", 14));
    CHECK(!cbx_qname_valid("", 0));
    CHECK(!cbx_qname_valid("a/b", 3));
    CHECK(!cbx_qname_valid("..", 2)); /* proxies normalize dot segments away */
    CHECK(!cbx_qname_valid(".", 1));
    CHECK(cbx_qname_valid("...", 3));
    CHECK(cbx_qname_valid("a..b", 4));
    CHECK(!cbx_qname_valid("a b", 3));
    CHECK(!cbx_qname_valid("a\0b", 3));
    CHECK(!cbx_qname_valid("\xc3\xa9", 2));
    char long_name[130];
    memset(long_name, 'x', sizeof long_name);
    CHECK(cbx_qname_valid(long_name, 128));
    CHECK(!cbx_qname_valid(long_name, 129));
}

static void test_lists(void)
{
    struct cbx_qlist l;
    char err[256];

    CHECK_INT(cbx_qlist_parse("a,b,c", &l, err, sizeof err), CBX_OK);
    CHECK_INT(l.n, 3);
    CHECK_STR(l.names[2], "c");
    cbx_qlist_free(&l);
    CHECK_INT(cbx_qlist_parse("a,,b", &l, err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "bad queue name \"\": use 1-128 letters, digits or ._:@-");
    CHECK_INT(cbx_qlist_parse("a,b,a", &l, err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "queue \"a\" named twice");
    CHECK_INT(cbx_qlist_parse("1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16", &l, err, sizeof err), CBX_OK);
    CHECK_STR(l.names[15], "16");
    cbx_qlist_free(&l);
    CHECK_INT(cbx_qlist_parse("1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", &l, err, sizeof err), CBX_ERR_INVALID);
    CHECK_STR(err, "more than 16 queues");
}

static void test_ids(void)
{
    uint64_t v;

    CHECK(cbx_id_parse("0", &v) && v == 0);
    CHECK(cbx_id_parse("9007199254740991", &v) && v == 9007199254740991ull);
    CHECK(!cbx_id_parse("9007199254740992", &v));
    CHECK(!cbx_id_parse("", &v));
    CHECK(!cbx_id_parse("+1", &v));
    CHECK(!cbx_id_parse("1 ", &v));
    CHECK(!cbx_id_parse("99999999999999999999", &v));
    CHECK(!cbx_id_parse(NULL, &v));
}

static void test_unescape(void)
{
    char a[] = "a%2Cb%2fc", b[] = "a%00b%0", c[] = "%zz%4", d[] = "%41%42%";

    CHECK_INT(cbx_url_unescape(a), 5);
    CHECK_STR(a, "a,b/c");
    CHECK_INT(cbx_url_unescape(b), 7);
    CHECK_STR(b, "a%00b%0");
    cbx_url_unescape(c);
    CHECK_STR(c, "%zz%4");
    cbx_url_unescape(d);
    CHECK_STR(d, "AB%");
}

int main(void)
{
    RUN(test_names);
    RUN(test_lists);
    RUN(test_ids);
    RUN(test_unescape);
    TEST_DONE();
}
