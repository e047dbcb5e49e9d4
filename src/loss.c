/* loss: numerically stable log-softmax. */
#include "loss.h"

#include <math.h>

double loss_softmax_xent(const float *logits, const uint8_t *labels, int B, int K, float *dlogits,
                         double scale, long *correct) {
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        const float *z = logits + (long)b * K;
        int arg = 0;
        for (int k = 1; k < K; k++)
            if (z[k] > z[arg]) arg = k;
        double zmax = z[arg], sum = 0.0;
        for (int k = 0; k < K; k++)
            sum += exp((double)z[k] - zmax);
        double lse = zmax + log(sum);
        total += lse - z[labels[b]];
        if (arg == labels[b]) (*correct)++;
        if (dlogits)
            for (int k = 0; k < K; k++) {
                double p = exp((double)z[k] - lse);
                dlogits[(long)b * K + k] = (float)((p - (k == labels[b])) / scale);
            }
    }
    return total;
}
