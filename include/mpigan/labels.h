/* Class labels beside the examples: the condition of a conditional G and D (Mirza and Osindero,
 * 2014), and the labels of the fake rows a conditional trainer draws.
 *
 * The condition is the one-hot label joined to a network's input after the input's own values:
 *   - flat (plane 1): the C one-hot values concatenated to the row, for G's noise (noise_dim + C)
 *     and for a D whose first layer is dense (dim + C), as in Mirza and Osindero's MLPs;
 *   - as constant feature maps (plane H W): C channels after the image's, channel label all 1
 *     and the others 0, for a D whose first layer is a convolution ((C_img + C, H, W)), the
 *     layout conditional DCGANs use, so the first convolution sees the label at every position.
 * The label part is never dropped out (mg_net.keep_in): it is the condition, not a feature.
 *
 * Fake labels are a pure function of (seed, step, phase, global fake row), like the noise, so a
 * run on 1, 2 or 4 ranks draws the same labels for the same rows. */
#ifndef MPIGAN_LABELS_H
#define MPIGAN_LABELS_H

#include <stddef.h>
#include <stdint.h>

#include "mpigan/error.h"
#include "mpigan/real.h"
#include "mpigan/rng.h"

/* The most classes a data set may have: labels are int32, one-hot rows must stay small. */
#define MG_MAX_CLASSES 65536

/* How a conditional trainer draws the labels of its fake rows. */
enum mg_label_draw {
    MG_LABELS_UNIFORM,   /* every class alike */
    MG_LABELS_FREQUENCY, /* the training split's class frequencies */
};
/* "uniform", "frequency", indexed by enum mg_label_draw and ended by NULL. */
extern const char *const mg_label_draw_names[];

/* The label part of one row: `classes` planes of `plane` values, plane `label` all 1, the others
 * 0 (classes * plane values). */
void mg_label_planes(mg_real *out, int32_t label, int classes, size_t plane);

/* out (n, dim + classes * plane): row i is x_i (dim values, row i of x (n, dim)) followed by
 * mg_label_planes of labels[i]. */
void mg_label_join(mg_real *out, const mg_real *x, int n, size_t dim, const int32_t *labels,
                   int classes, size_t plane);

/* out (n, dim): the first dim values of each of n rows of `stride` values (in (n, stride)); out
 * may be in (the rows move towards the front): the image part of a joined input's gradient. */
void mg_rows_head(mg_real *out, const mg_real *in, int n, size_t dim, size_t stride);

/* The label of global row `row` of (key, row): with cum NULL uniform over classes, else drawn
 * with probability (cum[c + 1] - cum[c]) / cum[classes] for class c (cum: classes + 1 running
 * counts from 0, cum[classes] >= 1). One 24-bit number k per row: class floor(k classes / 2^24),
 * or the class of count floor(k cum[classes] / 2^24); integer arithmetic, exact on every
 * machine, each class off its probability by under classes / 2^24. */
int32_t mg_label_draw(const mg_rng_key *key, uint64_t row, int classes, const int64_t *cum);

/* cum (classes + 1): cum[0] = 0, cum[c + 1] = cum[c] + the examples of class c among labels (n),
 * each in [0, classes). */
void mg_label_cumulative(int64_t *cum, const int32_t *labels, int n, int classes);

/* 0 if every label (n) is in [0, classes); else -1 and "<what>: <item> <i> has label <v>, not in
 * 0..<classes - 1>" (item: "example", or what the caller calls a row). */
int mg_labels_check(const int32_t *labels, int n, int classes, const char *what,
                    const char *item, mg_error *err);

#endif
