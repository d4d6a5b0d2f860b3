/* The shared CUnit runner: every test file ends with a table of its tests and calls
 * mg_test_main, which runs them all, or only those named on the command line, and exits non-zero
 * on any failure. */
#ifndef MPIGAN_TESTLIB_H
#define MPIGAN_TESTLIB_H

#include <CUnit/CUnit.h>

typedef struct {
    const char *name;
    void (*fn)(void);
} mg_test;

int mg_test_main(const char *suite, const mg_test *tests, int argc, char **argv);

/* A fresh directory for this test run's files, removed at exit unless MG_TEST_KEEP is set. */
const char *mg_test_tmpdir(void);
/* <tmpdir>/<name> (static storage, 16 call slots, so a few may be held at once). */
const char *mg_test_path(const char *name);
/* Writes bytes to <tmpdir>/<name> and returns the path (static storage, one per call slot). */
const char *mg_test_write_file(const char *name, const void *bytes, size_t n);

/* What this process writes to stderr (fd 2) between the two calls, into buf (at most n - 1
 * bytes and a NUL): messages such as stall reports, checked as the text a user sees. */
void mg_test_stderr_begin(void);
const char *mg_test_stderr_end(char *buf, size_t n);

/* Non-zero iff text is exactly one stall report of comm.h's inspector, by `rank`, waiting in
 * `what`, naming `late` among the ranks that have not reached it ("mpigan: stall: rank 0 has
 * waited 2 s in the test barrier; ranks 2, 3 have not reached it"); with exact, naming `late`
 * alone. Prints what it got when not. */
int mg_test_stall_report(const char *text, int rank, const char *what, int late, int exact);
void mg_test_sleep(double seconds);

/* Asserts |a - b| <= tol and prints both and the error when it is not. */
#define MG_ASSERT_CLOSE(a, b, tol)                                                             \
    do {                                                                                       \
        double a_ = (a), b_ = (b), t_ = (tol);                                                 \
        if (!(fabs(a_ - b_) <= t_))                                                            \
            fprintf(stderr, "\n  %s:%d: %s = %.10g, %s = %.10g, |diff| %.3g > %.3g\n",         \
                    __FILE__, __LINE__, #a, a_, #b, b_, fabs(a_ - b_), t_);                    \
        CU_ASSERT(fabs(a_ - b_) <= t_);                                                        \
    } while (0)

/* Asserts that rc is -1 and err.msg is exactly "<path>: <what>", what formatted from the rest. */
#define MG_ASSERT_FAILS(rc, err, path, ...)                                                    \
    do {                                                                                       \
        char want_[8192], what_[sizeof((err).msg)];                                            \
        snprintf(what_, sizeof what_, __VA_ARGS__);                                            \
        snprintf(want_, sizeof want_, "%s: %s", (path), what_);                                \
        CU_ASSERT_EQUAL((rc), -1);                                                             \
        if (strcmp((err).msg, want_) != 0)                                                     \
            fprintf(stderr, "\n  %s:%d:\n    got:  %s\n    want: %s\n", __FILE__, __LINE__,    \
                    (err).msg, want_);                                                         \
        CU_ASSERT_STRING_EQUAL((err).msg, want_);                                              \
    } while (0)

#endif
