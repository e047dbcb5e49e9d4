/* cpuinfo: which OpenBLAS kernels this process runs, and whether the CPU could
 * run faster ones.
 *
 * OpenBLAS 0.3.21 (Debian 12) chooses its kernels at start-up from the CPU
 * model. On some virtual machines it falls back to a pre-AVX2 core such as
 * "Prescott" although the CPU has AVX-512, and SGEMM, most of fsnn's time,
 * runs about 4x slower (33 against 147 GFLOP/s per core). Setting
 * OPENBLAS_CORETYPE before the program starts is the remedy; this module
 * detects the case and says so.
 */
#ifndef FSNN_CPUINFO_H
#define FSNN_CPUINFO_H

/* Logs (log_info) the OpenBLAS build and core, its thread count, and
 * OPENBLAS_CORETYPE if set; log_warn with the remedy when OpenBLAS picked a
 * core weaker than the CPU supports. Prints only on the printer rank. */
void cpuinfo_report_blas(void);

/* The strongest OpenBLAS core name this CPU and OS support: "SkylakeX"
 * (AVX-512 F+DQ+BW+VL), "Haswell" (AVX2+FMA), or NULL when neither applies
 * (no advice to give, also on non-x86 machines). Static storage. */
const char *cpuinfo_best_core(void);

/* The core OpenBLAS is running, as openblas_get_corename() names it
 * (e.g. "Haswell", "SkylakeX", "Prescott"). Static storage, never NULL. */
const char *cpuinfo_blas_core(void);

#endif
