/* pool: 2x2 average pooling with stride 2 (torch.nn.AvgPool2d(2)).
 * Shapes: x [N x H x W] with N = B C (every map pooled alike),
 * y [N x H/2 x W/2]; an odd last row or column is dropped (the floor, as
 * torch). Borrowed arrays only; nothing allocates. */
#ifndef FSNN_POOL_H
#define FSNN_POOL_H

/* y = the mean of each 2x2 block of x. Needs H >= 2 and W >= 2. */
void pool_avg2_forward(const float *x, float *y, long N, int H, int W);

/* dx [N x H x W] = dy / 4 spread over each block (overwritten; 0 in a
 * dropped row or column). */
void pool_avg2_vjp(const float *dy, float *dx, long N, int H, int W);

#endif
