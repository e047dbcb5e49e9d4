/* cpuinfo: compare the OpenBLAS core in use with what the CPU supports and
 * tell the user how to get the faster kernels (see cpuinfo.h for why). */
#include "cpuinfo.h"

#include <cblas.h> /* openblas_get_corename, openblas_get_config, openblas_get_num_threads */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h> /* strcasecmp */

#include "log.h"

#if defined(__x86_64__) || defined(__i386__)
#define CPUINFO_X86 1
#include <cpuid.h>
#else
#define CPUINFO_X86 0
#endif

/* Kernel families that matter for SGEMM speed, weakest first. */
enum { LEVEL_UNKNOWN = -1, LEVEL_PRE_AVX2 = 0, LEVEL_AVX2 = 1, LEVEL_AVX512 = 2 };

/* OpenBLAS 0.3.21 core names (driver/others/dynamic.c) by kernel family.
 * Names not listed (future cores, Excavator) are left unjudged, so that no
 * advice is given about a core this table does not know. */
static const struct {
    const char *name;
    int level;
} cpuinfo_cores[] = {
    {"Katmai", LEVEL_PRE_AVX2},
    {"Coppermine", LEVEL_PRE_AVX2},
    {"Northwood", LEVEL_PRE_AVX2},
    {"Prescott", LEVEL_PRE_AVX2},
    {"Banias", LEVEL_PRE_AVX2},
    {"Atom", LEVEL_PRE_AVX2},
    {"Core2", LEVEL_PRE_AVX2},
    {"Penryn", LEVEL_PRE_AVX2},
    {"Dunnington", LEVEL_PRE_AVX2},
    {"Nehalem", LEVEL_PRE_AVX2},
    {"Athlon", LEVEL_PRE_AVX2},
    {"Opteron", LEVEL_PRE_AVX2},
    {"Opteron_SSE3", LEVEL_PRE_AVX2},
    {"Barcelona", LEVEL_PRE_AVX2},
    {"Nano", LEVEL_PRE_AVX2},
    {"Sandybridge", LEVEL_PRE_AVX2},
    {"Bulldozer", LEVEL_PRE_AVX2},
    {"Piledriver", LEVEL_PRE_AVX2},
    {"Steamroller", LEVEL_PRE_AVX2},
    {"Haswell", LEVEL_AVX2},
    {"Zen", LEVEL_AVX2},
    {"SkylakeX", LEVEL_AVX512},
    {"Cooperlake", LEVEL_AVX512},
    {"SapphireRapids", LEVEL_AVX512},
};

static int cpuinfo_level(const char *core) {
    if (!core) return LEVEL_UNKNOWN;
    for (size_t i = 0; i < sizeof cpuinfo_cores / sizeof cpuinfo_cores[0]; i++)
        if (strcasecmp(core, cpuinfo_cores[i].name) == 0) return cpuinfo_cores[i].level;
    return LEVEL_UNKNOWN;
}

#if CPUINFO_X86
/* XCR0: which register states the OS saves on a context switch. A CPU flag
 * alone is not enough; a hypervisor or kernel may leave AVX state off. */
static unsigned long long cpuinfo_xcr0(void) {
    unsigned int lo, hi;
    __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static int cpuinfo_x86_level(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return LEVEL_PRE_AVX2;
    const int osxsave = (ecx >> 27) & 1, avx = (ecx >> 28) & 1, fma = (ecx >> 12) & 1;
    if (!osxsave || !avx || !fma) return LEVEL_PRE_AVX2;

    const unsigned long long xcr0 = cpuinfo_xcr0();
    const int os_ymm = (xcr0 & 0x6) == 0x6;   /* SSE + AVX state */
    const int os_zmm = (xcr0 & 0xe6) == 0xe6; /* + opmask, ZMM_Hi256, Hi16_ZMM */
    if (!os_ymm) return LEVEL_PRE_AVX2;

    /* __get_cpuid_count returns 0 when leaf 7 is beyond the CPU's maximum. */
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return LEVEL_PRE_AVX2;
    const int avx2 = (ebx >> 5) & 1;
    const int avx512 = ((ebx >> 16) & 1) && ((ebx >> 17) & 1)     /* F, DQ */
                       && ((ebx >> 30) & 1) && ((ebx >> 31) & 1); /* BW, VL */
    if (!avx2) return LEVEL_PRE_AVX2;
    if (avx512 && os_zmm) return LEVEL_AVX512;
    return LEVEL_AVX2;
}

/* The 48-byte brand string, e.g. "Intel(R) Xeon(R) ...", without padding blanks. */
static const char *cpuinfo_brand(char buf[49]) {
    unsigned int regs[12];
    buf[0] = '\0';
    /* gcc and clang disagree on the signedness of the result. */
    if ((unsigned int)__get_cpuid_max(0x80000000u, NULL) < 0x80000004u) return buf;
    for (unsigned int i = 0; i < 3; i++)
        __get_cpuid(0x80000002u + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2],
                    &regs[4 * i + 3]);
    memcpy(buf, regs, 48);
    buf[48] = '\0';
    for (size_t n = strlen(buf); n > 0 && buf[n - 1] == ' '; n--)
        buf[n - 1] = '\0';
    const char *s = buf;
    while (*s == ' ')
        s++;
    return s;
}
#endif

const char *cpuinfo_best_core(void) {
#if CPUINFO_X86
    switch (cpuinfo_x86_level()) {
    case LEVEL_AVX512:
        return "SkylakeX";
    case LEVEL_AVX2:
        return "Haswell";
    default:
        return NULL;
    }
#else
    return NULL;
#endif
}

const char *cpuinfo_blas_core(void) {
    const char *core = openblas_get_corename();
    return core ? core : "Unknown";
}

void cpuinfo_report_blas(void) {
    const char *core = cpuinfo_blas_core();
    const char *best = cpuinfo_best_core();
    const char *forced = getenv("OPENBLAS_CORETYPE");
    const char *config = openblas_get_config();

    log_info("blas: %s; core %s, %d threads", config ? config : "OpenBLAS", core,
             openblas_get_num_threads());
    if (forced && *forced) log_info("blas: OPENBLAS_CORETYPE=%s (set in the environment)", forced);
#if CPUINFO_X86
    char brand[49];
    log_info("cpu: %s; best OpenBLAS core for it: %s", cpuinfo_brand(brand),
             best ? best : "none known");
#endif

    const int have = cpuinfo_level(core), could = cpuinfo_level(best);
    if (have == LEVEL_UNKNOWN || could == LEVEL_UNKNOWN || have >= could) return;
    if (forced && *forced) {
        /* A deliberate choice (e.g. to work around a kernel problem): mention
         * the alternative, do not nag. */
        log_info("blas: core %s was chosen through OPENBLAS_CORETYPE; this CPU also supports %s",
                 core, best);
        return;
    }
    /* 33 against 147 GFLOP/s per core for Prescott against SkylakeX kernels. */
    log_warn("blas: OpenBLAS picked core %s but this CPU supports %s; GEMM runs %s. Before "
             "running, do: export OPENBLAS_CORETYPE=%s",
             core, best, have == LEVEL_PRE_AVX2 ? "about 4x slower" : "slower", best);
}
