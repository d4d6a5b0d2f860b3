/* A set of examples in memory (dataset.h): allocation, rows as values, the pixel means. */
#include "mpigan/dataset.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mg_dataset_alloc(mg_dataset *ds, int n, int channels, int height, int width, mg_error *err)
{
    memset(ds, 0, sizeof *ds);
    if (n < 0 || channels < 1 || height < 1 || width < 1)
        return mg_fail(err, "mg_dataset_alloc: bad shape (%d, %d, %d, %d)", n, channels, height,
                       width);
    /* Each factor is below 2^31, so each product is checked against SIZE_MAX before it is
     * formed. */
    size_t dim = (size_t)channels;
    if ((size_t)height > SIZE_MAX / dim || (size_t)width > SIZE_MAX / (dim * (size_t)height))
        return mg_fail(err, "mg_dataset_alloc: shape (%d, %d, %d) too large", channels, height,
                       width);
    dim *= (size_t)height * (size_t)width;
    size_t rows = n ? (size_t)n : 1;
    if (dim > SIZE_MAX / sizeof(mg_real) / rows)
        return mg_fail(err, "mg_dataset_alloc: %d examples of %zu values too large", n, dim);
    ds->x = calloc(rows * dim, sizeof(mg_real));
    if (!ds->x)
        return mg_fail(err, "mg_dataset_alloc: out of memory (%d examples of %zu values)", n,
                       dim);
    ds->n = n;
    ds->channels = channels;
    ds->height = height;
    ds->width = width;
    ds->dim = dim;
    return 0;
}

void mg_dataset_free(mg_dataset *ds)
{
    if (!ds)
        return;
    if (ds->shared) {
        fprintf(stderr, "mpigan: internal error: mg_dataset_free of a shared dataset "
                        "(mg_dataset_unload frees it, collectively)\n");
        abort();
    }
    free(ds->x);
    free(ds->bytes);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

void mg_dataset_unload(mg_dataset *ds)
{
    if (ds && ds->shared) {
        mg_comm_shared_free(ds->shared); /* collective over the loader's communicator */
        memset(ds, 0, sizeof *ds);
    }
    mg_dataset_free(ds);
}

void mg_dataset_rescale(mg_dataset *ds, double lo, double hi)
{
    if (ds->bytes) {
        ds->ranged = 1;
        ds->lo = lo;
        ds->hi = hi;
        return;
    }
    const size_t n = (size_t)ds->n * ds->dim;
    for (size_t i = 0; i < n; i++)
        ds->x[i] = (mg_real)(lo + (hi - lo) * (double)ds->x[i]);
}

/* Bytes b (n) as the values they stand for in ds. */
static void widen(mg_real *out, const uint8_t *b, size_t n, const mg_dataset *ds)
{
    if (!ds->ranged) {
        for (size_t j = 0; j < n; j++)
            out[j] = mg_byte_value(b[j]);
        return;
    }
    const double lo = ds->lo, span = ds->hi - ds->lo;
    for (size_t j = 0; j < n; j++)
        out[j] = (mg_real)(lo + span * (double)mg_byte_value(b[j]));
}

void mg_dataset_row(const mg_dataset *ds, size_t i, mg_real *out)
{
    if (ds->bytes)
        widen(out, ds->bytes + i * ds->dim, ds->dim, ds);
    else
        memcpy(out, ds->x + i * ds->dim, ds->dim * sizeof *out);
}

int mg_dataset_widen(mg_dataset *ds, mg_error *err)
{
    if (!ds->bytes)
        return 0;
    const size_t n = (size_t)ds->n * ds->dim;
    mg_real *x = malloc((n ? n : 1) * sizeof *x);
    if (!x)
        return mg_fail(err, "out of memory for %zu values", n);
    widen(x, ds->bytes, n, ds);
    free(ds->bytes);
    ds->bytes = NULL;
    ds->ranged = 0;
    ds->x = x;
    return 0;
}

int mg_values_are_bytes(const mg_real *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        /* x in [0, 1] (else the byte is out of range), then exactly the byte's value. */
        if (!(x[i] >= 0 && x[i] <= 1) || x[i] != mg_byte_value((uint8_t)lrint(x[i] * 255.0)))
            return 0;
    }
    return 1;
}

void mg_dataset_pixel_mean(const mg_dataset *ds, double *mean)
{
    /* Sums in double: 60000 floats of ~0.3 summed in float would lose ~4 digits. With no
     * examples the mean is taken as 0. */
    for (size_t j = 0; j < ds->dim; j++)
        mean[j] = 0.0;
    if (ds->n <= 0)
        return;
    mg_real *row = ds->bytes ? mg_xmalloc(ds->dim * sizeof *row) : NULL;
    for (int i = 0; i < ds->n; i++) {
        if (ds->bytes)
            mg_dataset_row(ds, (size_t)i, row);
        const mg_real *x = ds->bytes ? row : ds->x + (size_t)i * ds->dim; /* (dim) */
        for (size_t j = 0; j < ds->dim; j++)
            mean[j] += x[j];
    }
    free(row);
    for (size_t j = 0; j < ds->dim; j++)
        mean[j] /= ds->n;
}
