/* watchdog: completes MPI requests under a deadline, so that a rank which
 * died or hangs ends the whole job instead of leaving the others waiting in
 * a collective for ever.
 *
 * Every collective of fsnn is started non-blocking and finished here. The
 * wait polls MPI_Test (which also drives Open MPI's progress), first
 * spinning, then sleeping briefly between polls so that a rank waiting for a
 * slower one leaves the core to it. When the deadline passes, the rank prints
 * which collective it waited in, for how long, and calls MPI_Abort, which
 * ends every rank of the job. */
#ifndef FSNN_WATCHDOG_H
#define FSNN_WATCHDOG_H

#include <mpi.h>

/* Deadline of one wait in seconds; 0 waits for ever. Default 600. */
void watchdog_set_timeout(double seconds);
double watchdog_timeout(void);

/* Completes *req. `what` names the collective in messages ("int64 sum of
 * 478000 values"). Returns 0, or an fsnn status when MPI reports an error;
 * does not return when the deadline passes. */
int watchdog_wait(MPI_Request *req, const char *what);

/* watchdog_wait that also fills *status (a receive's source and count). */
int watchdog_wait_status(MPI_Request *req, MPI_Status *status, const char *what);

/* watchdog_wait for the n requests req[0..n) of one operation at once. */
int watchdog_waitall(int n, MPI_Request *req, const char *what);

/* Seconds spent inside watchdog_wait since the process started: the time
 * this rank waited for collectives to complete. */
double watchdog_seconds(void);

#endif
