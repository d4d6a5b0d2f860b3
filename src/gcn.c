/* Global contrast normalisation, as pylearn2's global_contrast_normalize(X, scale, subtract_mean=
 * True, use_std=False, sqrt_bias=0, min_divisor=1e-8), which the paper's CIFAR-10 and TFD runs
 * applied (scale 55):
 *
 *     X = X - X.mean(axis=1)
 *     normalizers = sqrt((X ** 2).sum(axis=1)) / scale
 *     normalizers[normalizers < min_divisor] = 1.
 *     X /= normalizers
 *
 * So an example whose norm / scale is below 1e-8 (a constant image, centred to zeros) is divided
 * by 1: only centred, never blown up from rounding noise. Sums are in double: 3072 floats summed
 * in float would lose 3 to 4 digits of the mean. */
#include "mpigan/datasets.h"

#include <math.h>

#define GCN_MIN_DIVISOR 1e-8

void mg_gcn(mg_dataset *ds, double scale)
{
    size_t dim = ds->dim;
    if (dim == 0)
        return;
    for (int i = 0; i < ds->n; i++) {
        mg_real *x = ds->x + (size_t)i * dim; /* (dim) */
        double sum = 0.0;
        for (size_t j = 0; j < dim; j++)
            sum += x[j];
        double mean = sum / (double)dim;
        /* The norm of the centred values as computed in double, before they are rounded. */
        double ss = 0.0;
        for (size_t j = 0; j < dim; j++) {
            double c = x[j] - mean;
            ss += c * c;
        }
        double divisor = sqrt(ss) / scale;
        if (divisor < GCN_MIN_DIVISOR)
            divisor = 1.0;
        for (size_t j = 0; j < dim; j++)
            x[j] = (mg_real)((x[j] - mean) / divisor);
    }
}
