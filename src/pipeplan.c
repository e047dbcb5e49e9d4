/* pipeplan: balanced contiguous cuts by dynamic programming over (stages,
 * layers); L is at most NETSPEC_LAYERS_MAX, so O(M L^2) is nothing. */
#include "pipeplan.h"

#include "netspec.h" // defines: NETSPEC_LAYERS_MAX
#include "status.h"  // defines: FAIL, FSNN_OK

int pipeplan_assign(const double *cost, int L, int M, int *first) {
    if (M < 1) return FAIL("pipeline: %d stages (parallel.model_ranks must be >= 1)", M);
    if (L < 1 || L > NETSPEC_LAYERS_MAX) return FAIL("pipeline: %d layers out of range", L);
    if (M > L)
        return FAIL("parallel.model_ranks = %d exceeds the net's %d layers: every pipeline stage "
                    "needs one layer at least (use parallel.model_ranks <= %d)",
                    M, L, L);
    enum { N = NETSPEC_LAYERS_MAX + 1 };
    double pre[N] = {0}, best[N][N];
    int cut[N][N];
    for (int l = 0; l < L; l++)
        pre[l + 1] = pre[l] + cost[l];
    /* best[s][l]: the least largest stage cost of layers [0, l) in s stages. */
    for (int l = 1; l <= L; l++) {
        best[1][l] = pre[l];
        cut[1][l] = 0;
    }
    for (int s = 2; s <= M; s++)
        for (int l = s; l <= L; l++) {
            best[s][l] = -1.0;
            for (int c = s - 1; c < l; c++) {
                const double last = pre[l] - pre[c];
                const double v = best[s - 1][c] > last ? best[s - 1][c] : last;
                if (best[s][l] < 0.0 || v < best[s][l]) {
                    best[s][l] = v;
                    cut[s][l] = c;
                }
            }
        }
    first[M] = L;
    for (int s = M, l = L; s >= 1; s--) {
        first[s - 1] = cut[s][l];
        l = cut[s][l];
    }
    return FSNN_OK;
}

int pipeplan_stage(const int *first, int M, int l) {
    int s = 0;
    while (s + 1 < M && l >= first[s + 1])
        s++;
    return s;
}
