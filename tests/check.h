/* check: the assertions of fsnn's test programs.
 *
 * Each failed expectation prints file:line and the values; check_finish()
 * prints "N passed, N failed" and returns the exit status (non-zero when
 * anything failed), so ctest sees every failure. */
#ifndef FSNN_CHECK_H
#define FSNN_CHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "status.h"

static int check_passed_, check_failed_;

#define EXPECT(cond, ...)                                                                          \
    do {                                                                                           \
        if (cond) {                                                                                \
            check_passed_++;                                                                       \
        } else {                                                                                   \
            check_failed_++;                                                                       \
            fprintf(stderr, "%s:%d: FAILED: %s: ", __FILE__, __LINE__, #cond);                     \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

/* |got - want| <= tol_abs + tol_rel * |want| */
#define EXPECT_NEAR(got, want, tol_abs, tol_rel, what)                                             \
    do {                                                                                           \
        double g_ = (double)(got), w_ = (double)(want);                                            \
        EXPECT(fabs(g_ - w_) <= (tol_abs) + (tol_rel)*fabs(w_), "%s: got %.9g want %.9g", (what),  \
               g_, w_);                                                                            \
    } while (0)

/* A call returning an fsnn status that must succeed. */
#define EXPECT_OK(call)                                                                            \
    do {                                                                                           \
        int ok_rc_ = (call);                                                                       \
        EXPECT(ok_rc_ == 0, "%s returned %d: %s", #call, ok_rc_, status_message());                \
        status_clear();                                                                            \
    } while (0)

/* A call returning an fsnn status that must fail, with a message containing
 * every listed string (e.g. the file name and what was wrong). */
#define EXPECT_FAILS(call, ...)                                                                    \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        const char *needles_[] = {__VA_ARGS__, NULL};                                              \
        EXPECT(rc_ != 0, "%s succeeded", #call);                                                   \
        for (int k_ = 0; needles_[k_]; k_++)                                                       \
            EXPECT(strstr(status_message(), needles_[k_]) != NULL, "message \"%s\" lacks \"%s\"",  \
                   status_message(), needles_[k_]);                                                \
        status_clear();                                                                            \
    } while (0)

static inline int check_finish(const char *name) {
    printf("%s: %d passed, %d failed\n", name, check_passed_, check_failed_);
    return (check_failed_ == 0 && check_passed_ > 0) ? 0 : 1;
}

#endif
