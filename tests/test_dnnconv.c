/* dnnconv: oneDNN's convolutions against conv.h's im2col + sgemm.
 *
 * - On random shapes (non-square and odd sizes, stride 1 and 2, k 1, 3, 5,
 *   batches 1, 3 and 32) the forward (with and without bias), the input-VJP
 *   and the weight-VJP (dW and db added to what the arrays held) agree with
 *   conv_forward and conv_vjp within 2 (K + 1) 2^-23 sum |terms| per entry:
 *   both add the same K terms per output in some order, each within the
 *   recursive-summation bound of the exact sum (sum |terms| from the same
 *   map on |x|, |W|, |dy|).
 * - A second call on the same arrays gives the same bits (run-to-run
 *   reproducibility of the cached primitive), on one thread and on two.
 * - Two threads against one: the same bits for the forward and the
 *   input-VJP (deterministic mode runs the primitives with either count).
 * - The blocked layout: dnnconv_block puts channel c of sample b at the
 *   index dnnconv.h gives, dnnconv_unblock inverts it, and the blocked
 *   forward and input-VJP (blocked or NCHW result) give the NCHW calls'
 *   bits, at batches that run as one chunk and as several. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "conv.h"
#include "dnnconv.h"
#include "rng.h"
#include "testutil.h"

static uint32_t fill_id;

static void uniform(float *x, long n) {
    rng_uniform_fill(7, RNG_TEST, fill_id++, 0, x, n);
    for (long i = 0; i < n; i++)
        x[i] = 2.0f * x[i] - 1.0f;
}

static void absolute(const float *x, float *a, long n) {
    for (long i = 0; i < n; i++)
        a[i] = fabsf(x[i]);
}

typedef struct {
    conv_shape s;
    int B;
    long nx, nw, ny;
    float *x, *w, *b, *dy, *ax, *aw, *ady, *ws;
    float *y0, *y1, *y2, *bound, *dx0, *dx1, *dx2, *dw0, *dw1, *db0, *db1;
} case_t;

static void case_free(case_t *c) {
    float **all[] = {&c->x,   &c->w,   &c->b,   &c->dy,  &c->ax,    &c->aw,  &c->ady,
                     &c->ws,  &c->y0,  &c->y1,  &c->y2,  &c->bound, &c->dx0, &c->dx1,
                     &c->dx2, &c->dw0, &c->dw1, &c->db0, &c->db1};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        free(*all[i]);
        *all[i] = NULL;
    }
}

static void case_make(case_t *c, int B, int C, int H, int W, int O, int k, int stride, int pad) {
    memset(c, 0, sizeof *c);
    EXPECT_OK(conv_shape_init(&c->s, C, H, W, O, k, stride, pad));
    c->B = B;
    c->nx = (long)B * C * H * W;
    c->nw = (long)O * C * k * k;
    c->ny = (long)B * O * c->s.Ho * c->s.Wo;
    long big = c->nx > c->ny ? c->nx : c->ny;
    float **arrs[] = {&c->x, &c->ax, &c->dx0, &c->dx1, &c->dx2};
    for (size_t i = 0; i < 5; i++)
        *arrs[i] = calloc((size_t)c->nx, sizeof(float));
    float **warr[] = {&c->w, &c->aw, &c->dw0, &c->dw1};
    for (size_t i = 0; i < 4; i++)
        *warr[i] = calloc((size_t)c->nw, sizeof(float));
    float **yarr[] = {&c->dy, &c->ady, &c->y0, &c->y1, &c->y2};
    for (size_t i = 0; i < 5; i++)
        *yarr[i] = calloc((size_t)c->ny, sizeof(float));
    c->bound = calloc((size_t)(big > c->nw ? big : c->nw), sizeof(float));
    c->b = calloc((size_t)O, sizeof(float));
    c->db0 = calloc((size_t)O, sizeof(float));
    c->db1 = calloc((size_t)O, sizeof(float));
    c->ws = calloc(conv_workspace_size(&c->s), sizeof(float));
    uniform(c->x, c->nx);
    uniform(c->w, c->nw);
    uniform(c->b, O);
    uniform(c->dy, c->ny);
    absolute(c->x, c->ax, c->nx);
    absolute(c->w, c->aw, c->nw);
    absolute(c->dy, c->ady, c->ny);
}

static void test_case(int B, int C, int H, int W, int O, int k, int stride, int pad) {
    case_t c;
    case_make(&c, B, C, H, W, O, k, stride, pad);
    const conv_shape *s = &c.s;
    char what[128];
    snprintf(what, sizeof what, "B %d, %dx%dx%d -> %d, k %d, stride %d, pad %d", B, C, H, W, O, k,
             stride, pad);
    /* forward, with bias */
    conv_forward(s, c.x, c.w, c.b, c.y0, B, c.ws);
    conv_forward(s, c.ax, c.aw, NULL, c.bound, B, c.ws);
    for (long i = 0; i < c.ny; i++)
        c.bound[i] += fabsf(c.b[i / (s->Ho * s->Wo) % s->O]);
    EXPECT_OK(dnnconv_forward(s, c.x, c.w, c.b, c.y1, B));
    EXPECT_SUM_BOUND(c.y1, c.y0, c.bound, c.ny, (long)C * k * k + 1, what);
    EXPECT_OK(dnnconv_forward(s, c.x, c.w, c.b, c.y2, B));
    EXPECT_SAME_BITS(c.y1, c.y2, c.ny, "forward, called twice");
    /* without bias */
    conv_forward(s, c.x, c.w, NULL, c.y0, B, c.ws);
    EXPECT_OK(dnnconv_forward(s, c.x, c.w, NULL, c.y1, B));
    conv_forward(s, c.ax, c.aw, NULL, c.bound, B, c.ws);
    EXPECT_SUM_BOUND(c.y1, c.y0, c.bound, c.ny, (long)C * k * k, "forward without bias");
    /* input-VJP */
    conv_vjp(s, c.x, c.w, c.dy, NULL, NULL, c.dx0, B, c.ws);
    conv_vjp(s, c.x, c.aw, c.ady, NULL, NULL, c.bound, B, c.ws);
    EXPECT_OK(dnnconv_backward_data(s, c.w, c.dy, c.dx1, B));
    EXPECT_SUM_BOUND(c.dx1, c.dx0, c.bound, c.nx, (long)O * k * k, "input-VJP");
    EXPECT_OK(dnnconv_backward_data(s, c.w, c.dy, c.dx2, B));
    EXPECT_SAME_BITS(c.dx1, c.dx2, c.nx, "input-VJP, called twice");
    /* weight-VJP, added to what dW and db held (the same start in both) */
    for (long i = 0; i < c.nw; i++)
        c.dw0[i] = c.dw1[i] = 0.25f;
    conv_vjp(s, c.x, c.w, c.dy, c.dw0, c.db0, NULL, B, c.ws);
    EXPECT_OK(dnnconv_backward_weights(s, c.x, c.dy, c.dw1, c.db1, B));
    memset(c.bound, 0, sizeof(float) * (size_t)c.nw);
    conv_vjp(s, c.ax, c.w, c.ady, c.bound, NULL, NULL, B, c.ws);
    for (long i = 0; i < c.nw; i++)
        c.bound[i] += 0.25f;
    EXPECT_SUM_BOUND(c.dw1, c.dw0, c.bound, c.nw, (long)B * s->Ho * s->Wo + 1, "weight-VJP");
    float dbb[64];
    for (int o = 0; o < O && o < 64; o++) {
        double a = 0.0;
        for (int b = 0; b < B; b++)
            for (int j = 0; j < s->Ho * s->Wo; j++)
                a += c.ady[((long)b * O + o) * s->Ho * s->Wo + j];
        dbb[o] = (float)a;
    }
    EXPECT_SUM_BOUND(c.db1, c.db0, dbb, O < 64 ? O : 64, (long)B * s->Ho * s->Wo, "bias VJP");
    case_free(&c);
}

/* The forward and the input-VJP on one thread and on two: the same bits. */
static void test_threads(int B, int C, int H, int W, int O, int k, int stride, int pad) {
    case_t c;
    case_make(&c, B, C, H, W, O, k, stride, pad);
    const int was = omp_get_max_threads();
    omp_set_num_threads(1);
    EXPECT_OK(dnnconv_forward(&c.s, c.x, c.w, c.b, c.y1, B));
    EXPECT_OK(dnnconv_backward_data(&c.s, c.w, c.dy, c.dx1, B));
    omp_set_num_threads(2);
    EXPECT_OK(dnnconv_forward(&c.s, c.x, c.w, c.b, c.y2, B));
    EXPECT_OK(dnnconv_backward_data(&c.s, c.w, c.dy, c.dx2, B));
    omp_set_num_threads(was);
    EXPECT_SAME_BITS(c.y1, c.y2, c.ny, "forward on 1 and 2 threads");
    EXPECT_SAME_BITS(c.dx1, c.dx2, c.nx, "input-VJP on 1 and 2 threads");
    case_free(&c);
}

/* The blocked layout against its index formula, and the blocked maps
 * against the NCHW ones, bit for bit. */
static void test_blocked(int B, int C, int H, int W, int O, int k, int stride, int pad) {
    case_t c;
    case_make(&c, B, C, H, W, O, k, stride, pad);
    const conv_shape *s = &c.s;
    const int hw = H * W, ohw = s->Ho * s->Wo;
    EXPECT(dnnconv_blocks(C) && dnnconv_blocks(O) && !dnnconv_blocks(C + 1),
           "dnnconv_blocks(%d), (%d), (%d)", C, O, C + 1);
    float *xb = malloc(sizeof(float) * (size_t)c.nx), *yb = malloc(sizeof(float) * (size_t)c.ny);
    float *back = malloc(sizeof(float) * (size_t)c.nx);
    if (!xb || !yb || !back) {
        EXPECT(0, "out of memory");
        free(xb), free(yb), free(back), case_free(&c);
        return;
    }
    dnnconv_block(c.x, xb, B, C, hw);
    long wrong = 0;
    for (int b = 0; b < B; b++)
        for (int ch = 0; ch < C; ch++)
            for (int p = 0; p < hw; p++) {
                const long at = (((long)b * C / 16 + ch / 16) * hw + p) * 16 + ch % 16;
                wrong += xb[at] != c.x[((long)b * C + ch) * hw + p];
            }
    EXPECT(wrong == 0, "dnnconv_block: %ld values away from their blocked index", wrong);
    dnnconv_unblock(xb, back, B, C, hw);
    EXPECT_SAME_BITS(back, c.x, c.nx, "dnnconv_unblock of dnnconv_block");
    /* Forward: x blocked, y blocked and NCHW. */
    EXPECT_OK(dnnconv_forward(s, c.x, c.w, NULL, c.y0, B));
    EXPECT_OK(dnnconv_forward_blocked(s, xb, c.w, c.y1, B, 0));
    EXPECT_SAME_BITS(c.y1, c.y0, c.ny, "blocked forward into NCHW");
    EXPECT_OK(dnnconv_forward_blocked(s, xb, c.w, yb, B, 1));
    dnnconv_unblock(yb, c.y2, B, O, ohw);
    EXPECT_SAME_BITS(c.y2, c.y0, c.ny, "blocked forward into blocked");
    /* Input-VJP: dy blocked, dx blocked and NCHW. */
    dnnconv_block(c.dy, yb, B, O, ohw);
    EXPECT_OK(dnnconv_backward_data(s, c.w, c.dy, c.dx0, B));
    EXPECT_OK(dnnconv_backward_data_blocked(s, c.w, yb, c.dx1, B, 0));
    EXPECT_SAME_BITS(c.dx1, c.dx0, c.nx, "blocked input-VJP into NCHW");
    EXPECT_OK(dnnconv_backward_data_blocked(s, c.w, yb, xb, B, 1));
    dnnconv_unblock(xb, c.dx2, B, C, hw);
    EXPECT_SAME_BITS(c.dx2, c.dx0, c.nx, "blocked input-VJP into blocked");
    free(xb), free(yb), free(back);
    case_free(&c);
}

int main(void) {
    test_case(1, 1, 5, 5, 1, 1, 1, 0);
    test_case(3, 3, 7, 9, 5, 3, 1, 1);
    test_case(3, 4, 9, 7, 6, 3, 2, 1);
    test_case(2, 2, 28, 28, 8, 5, 2, 2);
    test_case(3, 16, 11, 13, 16, 5, 1, 2);
    test_case(32, 32, 8, 8, 48, 3, 1, 1);
    test_case(5, 24, 16, 16, 40, 3, 2, 1);
    test_threads(32, 64, 14, 14, 64, 5, 1, 2);
    test_threads(16, 96, 16, 16, 128, 3, 2, 1);
    test_blocked(8, 32, 12, 10, 48, 3, 1, 1);
    test_blocked(11, 16, 16, 16, 32, 3, 2, 1); /* chunks of 8, 2 and 1 */
    test_blocked(4, 64, 14, 14, 64, 5, 1, 2);
    dnnconv_release();
    return check_finish("dnnconv");
}
