/* watchdog: deadline-bounded completion of MPI requests. */
#include "watchdog.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"
#include "status.h"

/* Spin this long before sleeping between polls: most collectives of a step
 * complete within microseconds once all ranks have arrived. */
#define WATCHDOG_SPIN_SECONDS 2e-3
#define WATCHDOG_SLEEP_NS 50000L

static double watchdog_deadline = 600.0;
static double watchdog_waited;

void watchdog_set_timeout(double seconds) {
    watchdog_deadline = seconds > 0.0 ? seconds : 0.0;
}

double watchdog_timeout(void) {
    return watchdog_deadline;
}

double watchdog_seconds(void) {
    return watchdog_waited;
}

_Noreturn static void watchdog_fire(const char *what, double waited) {
    int rank = -1, size = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    fprintf(stderr,
            "fsnn: rank %d of %d waited %.0f s in collective '%s' (parallel.collective_timeout "
            "= %g s): another rank died or hangs; aborting the job\n",
            rank, size, waited, what, watchdog_deadline);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

/* The wait of watchdog_wait, _wait_status and _waitall: polls req[0..n) (statuses into st, or
 * MPI_STATUSES_IGNORE) until done, the deadline or an error. */
static int watchdog_poll(int n, MPI_Request *req, MPI_Status *st, const char *what) {
    double t0 = clock_seconds(), now = t0;
    int done = 0;
    for (long polls = 0;; polls++) {
        int rc = MPI_Testall(n, req, &done, st);
        if (rc != MPI_SUCCESS) {
            char msg[MPI_MAX_ERROR_STRING];
            int len = 0;
            MPI_Error_string(rc, msg, &len);
            watchdog_waited += clock_seconds() - t0;
            return FAIL("collective '%s' failed: %s", what, msg);
        }
        if (done) break;
        /* Reading the clock costs about as much as a poll: every 64th. */
        if (polls % 64 == 0) now = clock_seconds();
        if (now - t0 < WATCHDOG_SPIN_SECONDS) {
            sched_yield();
            continue;
        }
        if (watchdog_deadline > 0.0 && now - t0 > watchdog_deadline) watchdog_fire(what, now - t0);
        struct timespec ts = {0, WATCHDOG_SLEEP_NS};
        nanosleep(&ts, NULL);
        now = clock_seconds();
    }
    watchdog_waited += clock_seconds() - t0;
    return FSNN_OK;
}

int watchdog_wait(MPI_Request *req, const char *what) {
    return watchdog_poll(1, req, MPI_STATUSES_IGNORE, what);
}

int watchdog_wait_status(MPI_Request *req, MPI_Status *status, const char *what) {
    return watchdog_poll(1, req, status, what);
}

int watchdog_waitall(int n, MPI_Request *req, const char *what) {
    return watchdog_poll(n, req, MPI_STATUSES_IGNORE, what);
}
