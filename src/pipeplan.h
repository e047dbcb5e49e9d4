/* pipeplan: which rank of a model group runs which layers of a
 * multi-layer net (the layer pipeline, docs/architecture.md).
 *
 * Stage s of M runs the contiguous layers [first[s], first[s + 1]) (0-based
 * layer indices, first[0] = 0, first[M] = L), every stage at least one, so
 * stage 0 holds layer 1 with the input branch and the feedback map. The cut
 * minimises the largest stage's cost (ties: the earliest cuts). */
#ifndef FSNN_PIPEPLAN_H
#define FSNN_PIPEPLAN_H

/* first [M + 1] from cost [L] (>= 0). Fails with a message when M < 1 or
 * M > L (a stage without a layer). */
int pipeplan_assign(const double *cost, int L, int M, int *first);

/* The stage whose range holds layer l. */
int pipeplan_stage(const int *first, int M, int l);

#endif
