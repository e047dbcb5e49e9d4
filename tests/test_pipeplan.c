/* pipeplan: the layer pipeline's stage assignment.
 *
 * - Against brute force over all cuts for every M <= L <= 7 on random
 *   costs: the largest stage cost is the least possible, every stage has a
 *   layer, first[0] = 0 and first[M] = L.
 * - Known cases: equal costs split evenly; one dominant layer gets a stage
 *   of its own; M = 1 is one stage; pipeplan_stage finds each layer.
 * - M > L and M < 1 are refused with a message naming the values. */
#include "check.h"
#include "pipeplan.h"
#include "rng.h"

/* The least largest cost of any cut of [0, L) into M non-empty ranges. */
static double brute(const double *cost, int L, int M, int from) {
    if (M == 1) {
        double s = 0;
        for (int l = from; l < L; l++)
            s += cost[l];
        return s;
    }
    double best = -1, head = 0;
    for (int e = from + 1; e <= L - (M - 1); e++) {
        head += cost[e - 1];
        double rest = brute(cost, L, M - 1, e), v = head > rest ? head : rest;
        if (best < 0 || v < best) best = v;
    }
    return best;
}

static double largest(const double *cost, const int *first, int M) {
    double mx = 0;
    for (int s = 0; s < M; s++) {
        double c = 0;
        for (int l = first[s]; l < first[s + 1]; l++)
            c += cost[l];
        mx = c > mx ? c : mx;
    }
    return mx;
}

int main(void) {
    int bad = 0, cases = 0;
    for (int L = 1; L <= 7; L++)
        for (int M = 1; M <= L; M++)
            for (uint32_t trial = 0; trial < 20; trial++) {
                double cost[8];
                int first[9];
                for (int l = 0; l < L; l++)
                    cost[l] = 1.0 + 100.0 * rng_uniform(3, trial, (uint32_t)L, (uint32_t)M, l);
                cases++;
                if (pipeplan_assign(cost, L, M, first) != 0) {
                    bad++;
                    continue;
                }
                int ok = first[0] == 0 && first[M] == L;
                for (int s = 0; s < M; s++)
                    ok &= first[s + 1] > first[s];
                ok &= largest(cost, first, M) == brute(cost, L, M, 0);
                bad += !ok;
            }
    EXPECT(bad == 0, "%d of %d assignments not optimal or not valid", bad, cases);

    const double even[6] = {1, 1, 1, 1, 1, 1};
    int f[7];
    EXPECT_OK(pipeplan_assign(even, 6, 3, f));
    EXPECT(f[0] == 0 && f[1] == 2 && f[2] == 4 && f[3] == 6, "6 equal layers in 3: %d %d %d %d",
           f[0], f[1], f[2], f[3]);
    const double big[5] = {1, 50, 1, 1, 1};
    EXPECT_OK(pipeplan_assign(big, 5, 2, f));
    EXPECT(f[1] == 2, "the dominant layer 2 shares a stage: cut at %d", f[1]);
    EXPECT_OK(pipeplan_assign(big, 5, 3, f));
    EXPECT(f[1] == 1 && f[2] == 2, "3 stages around a dominant layer: cuts %d %d", f[1], f[2]);
    EXPECT(pipeplan_stage(f, 3, 0) == 0 && pipeplan_stage(f, 3, 1) == 1 &&
               pipeplan_stage(f, 3, 4) == 2,
           "pipeplan_stage");
    EXPECT_OK(pipeplan_assign(big, 5, 1, f));
    EXPECT(f[0] == 0 && f[1] == 5, "one stage: %d %d", f[0], f[1]);
    EXPECT_FAILS(pipeplan_assign(big, 5, 6, f), "model_ranks = 6", "5 layers");
    EXPECT_FAILS(pipeplan_assign(big, 5, 0, f), "0 stages");
    return check_finish("pipeplan");
}
