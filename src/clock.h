/* clock: monotonic wall time for phase timers and throughput. */
#ifndef FSNN_CLOCK_H
#define FSNN_CLOCK_H

/* Seconds since an arbitrary fixed point. */
double clock_seconds(void);

/* Peak resident set size of this process in MiB (getrusage). */
double clock_peak_rss_mb(void);

#endif
