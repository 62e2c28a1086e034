/* test.h - a tiny test framework: CHECK prints what it expected and what it
 * got, and the runner counts failures. One test binary per module. */
#ifndef CBX_TEST_H
#define CBX_TEST_H

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Atomic int test_failures;
static _Atomic int test_checks;

#define CHECK(cond)                                                                                      \
    do {                                                                                                 \
        test_checks++;                                                                                   \
        if (!(cond)) {                                                                                   \
            fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond);                           \
            test_failures++;                                                                             \
        }                                                                                                \
    } while (0)

#define CHECK_INT(got, want)                                                                             \
    do {                                                                                                 \
        long long g_ = (long long)(got), w_ = (long long)(want);                                         \
        test_checks++;                                                                                   \
        if (g_ != w_) {                                                                                  \
            fprintf(stderr, "%s:%d: FAILED: %s: expected %lld, got %lld\n", __FILE__, __LINE__, #got, w_, g_); \
            test_failures++;                                                                             \
        }                                                                                                \
    } while (0)

#define CHECK_STR(got, want)                                                                             \
    do {                                                                                                 \
        const char *g_ = (got), *w_ = (want);                                                            \
        test_checks++;                                                                                   \
        if (g_ == NULL || strcmp(g_, w_) != 0) {                                                         \
            fprintf(stderr, "%s:%d: FAILED: %s:\n  expected \"%s\"\n  got      \"%s\"\n", __FILE__, __LINE__, \
                    #got, w_, g_ ? g_ : "(null)");                                                       \
            test_failures++;                                                                             \
        }                                                                                                \
    } while (0)

#define RUN(fn)                                                                                          \
    do {                                                                                                 \
        int before_ = test_failures;                                                                     \
        fn();                                                                                            \
        printf("%s %s\n", test_failures == before_ ? "ok  " : "FAIL", #fn);                              \
    } while (0)

#define TEST_DONE()                                                                                      \
    do {                                                                                                 \
        printf("%d checks, %d failed\n", test_checks, test_failures);                                    \
        return test_failures ? 1 : 0;                                                                    \
    } while (0)

#endif
