/* A set of examples in memory: n images as rows of values (n, channels * height * width),
 * channel-first. The readers (idx.h, cifar10.h, tfd.h, h5data.h) fill one; splits.h loads the
 * splits a configuration names, the training split once per node in shared memory. */
#ifndef MPIGAN_DATASET_H
#define MPIGAN_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "mpigan/comm.h"
#include "mpigan/error.h"
#include "mpigan/real.h"

typedef struct {
    int n;           /* examples */
    int channels, height, width;
    size_t dim;      /* channels * height * width */
    mg_real *x;      /* (n, dim) row-major; values in [0, 1] as the readers make them, then as
                        data.range or GCN made them (splits.h); NULL when kept as bytes */
    uint8_t *bytes;  /* (n, dim): every value is mg_byte_value(byte), 4 times smaller than x
                        (a training set of pixel bytes: mg_split_load_train); else NULL */
    int ranged;      /* bytes stand for lo + (hi - lo) * mg_byte_value(byte) instead: data.range */
    double lo, hi;
    int32_t *labels; /* (n) the class of each example, in [0, classes); NULL when the data set
                        has none (or they were not asked for) */
    int classes;     /* with labels: how many classes there are (data.classes) */
    struct mg_shared *shared; /* x or bytes, and labels, live in a node's shared window
                                 (mg_dataset_unload) */
} mg_dataset;

/* What every reader of pixel bytes stores: b / 255 rounded once to mg_real. */
static inline mg_real mg_byte_value(uint8_t b)
{
    return (mg_real)b / (mg_real)255;
}

/* Allocates an empty private dataset of n examples of the given shape (x zeroed). */
int mg_dataset_alloc(mg_dataset *ds, int n, int channels, int height, int width, mg_error *err);

/* Frees a private dataset (what a reader or mg_dataset_alloc made), its labels too; NULL or
 * empty: nothing. A
 * dataset in a shared window is not this process's to free: mg_dataset_unload. */
void mg_dataset_free(mg_dataset *ds);

/* Collective over the communicator that loaded ds (mg_split_load_train): frees it, whether it
 * lives in the node's shared window (every rank of the node must call this) or privately. */
void mg_dataset_unload(mg_dataset *ds);

/* The values of ds, [0, 1] as read, become [lo, hi]: x in place, or bytes through `ranged`. */
void mg_dataset_rescale(mg_dataset *ds, double lo, double hi);

/* Example i as values, into out (dim), whichever way ds keeps them. */
void mg_dataset_row(const mg_dataset *ds, size_t i, mg_real *out);

/* A private ds kept as bytes becomes one kept as values (x); nothing to do otherwise. */
int mg_dataset_widen(mg_dataset *ds, mg_error *err);

/* 1 if every value of x (n) is mg_byte_value of a byte, so bytes keep it exactly. */
int mg_values_are_bytes(const mg_real *x, size_t n);

/* Mean of each value over the examples: (dim). */
void mg_dataset_pixel_mean(const mg_dataset *ds, double *mean);

#endif
