/* Class labels: the condition joined to a network's input, fake labels by global row (labels.h). */
#include "mpigan/labels.h"

#include <string.h>

const char *const mg_label_draw_names[] = {
    [MG_LABELS_UNIFORM] = "uniform",
    [MG_LABELS_FREQUENCY] = "frequency",
    [MG_LABELS_FREQUENCY + 1] = NULL,
};

void mg_label_planes(mg_real *out, int32_t label, int classes, size_t plane)
{
    memset(out, 0, (size_t)classes * plane * sizeof *out);
    mg_real *on = out + (size_t)label * plane; // (plane)
    for (size_t j = 0; j < plane; j++)
        on[j] = 1;
}

void mg_label_join(mg_real *out, const mg_real *x, int n, size_t dim, const int32_t *labels,
                   int classes, size_t plane)
{
    const size_t stride = dim + (size_t)classes * plane;
    for (int i = 0; i < n; i++) {
        mg_real *row = out + (size_t)i * stride; // (dim + classes plane)
        memcpy(row, x + (size_t)i * dim, dim * sizeof *row);
        mg_label_planes(row + dim, labels[i], classes, plane);
    }
}

void mg_rows_head(mg_real *out, const mg_real *in, int n, size_t dim, size_t stride)
{
    /* Row i moves from i stride to i dim <= i stride: front to back never overwrites a row not
     * yet moved. */
    for (int i = 0; i < n; i++)
        memmove(out + (size_t)i * dim, in + (size_t)i * stride, dim * sizeof *out);
}

int32_t mg_label_draw(const mg_rng_key *key, uint64_t row, int classes, const int64_t *cum)
{
    uint32_t k;
    mg_rng_u24(&k, 1, key, row);
    if (!cum)
        return (int32_t)(((uint64_t)k * (uint64_t)classes) >> 24);
    /* An example count r in [0, total): total < 2^31, so k total < 2^55. The class holding it:
     * the last c with cum[c] <= r, by bisection over cum[0 .. classes]. */
    const int64_t r = (int64_t)(((uint64_t)k * (uint64_t)cum[classes]) >> 24);
    int lo = 0, hi = classes; // cum[lo] <= r < cum[hi]
    while (hi - lo > 1) {
        const int mid = lo + (hi - lo) / 2;
        if (cum[mid] <= r)
            lo = mid;
        else
            hi = mid;
    }
    return (int32_t)lo;
}

void mg_label_cumulative(int64_t *cum, const int32_t *labels, int n, int classes)
{
    memset(cum, 0, ((size_t)classes + 1) * sizeof *cum);
    for (int i = 0; i < n; i++)
        cum[labels[i] + 1]++;
    for (int c = 0; c < classes; c++)
        cum[c + 1] += cum[c];
}

int mg_labels_check(const int32_t *labels, int n, int classes, const char *what,
                    const char *item, mg_error *err)
{
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= classes)
            return mg_fail(err, "%s: %s %d has label %ld, not in 0..%d", what, item, i,
                           (long)labels[i], classes - 1);
    return 0;
}
