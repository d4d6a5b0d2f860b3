/* The central-difference checker of the double-precision gradient checks (test_gradcheck.c,
 * test_conv_gradcheck.c), header-only since it needs the double build's mg_real.
 *
 * A check evaluates a scalar objective f at the current values and compares the analytic
 * gradient with (f(x + h) - f(x - h)) / 2h, coordinate by coordinate and (as kann does) along one
 * random direction over all tensors at once. h = 1e-6; the tolerance 100 (h^2 + eps / h) F, with
 * F the objective's scale (sum of |terms|), covers the Taylor remainder (h^2 f''' / 6) and the
 * rounding of f (eps F / h), with a factor 100 for the length of the computations. A wrong
 * gradient (a missing mask, a transposed index, a lost factor) is off by the size of a term. */
#ifndef MPIGAN_TEST_GRADCHECK_H
#define MPIGAN_TEST_GRADCHECK_H

#include <CUnit/CUnit.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "helpers.h"
#include "mpigan/nn.h"

#ifndef MG_REAL_DOUBLE
#error "gradcheck.h is for the double build (mpigan_core_f64): compile with -DMG_REAL_DOUBLE"
#endif

static const double GC_H = 1e-6;

static inline double gc_tolerance(double F)
{
    return 100 * (GC_H * GC_H + DBL_EPSILON / GC_H) * fmax(1, F);
}

/* The objective at the current values; *F receives its scale (sum of |terms|). */
typedef double (*gc_objective)(void *ctx, double *F);

typedef struct {
    char name[32];
    mg_real *x;       /* (n) values, perturbed in place */
    const mg_real *g; /* (n) analytic gradient of f */
    size_t n;
} gc_tensor;

typedef struct {
    gc_tensor t[2 * MG_MAX_LAYERS * 2 + 2];
    int n;
} gc_tensors;

static inline void gc_add(gc_tensors *L, const char *name, mg_real *x, const mg_real *g,
                          size_t n)
{
    gc_tensor *t = &L->t[L->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->x = x;
    t->g = g;
    t->n = n;
}

static inline double gc_central(gc_objective f, void *ctx, mg_real *x)
{
    const mg_real v = *x;
    double F;
    *x = v + GC_H;
    const double fp = f(ctx, &F);
    *x = v - GC_H;
    const double fm = f(ctx, &F);
    *x = v;
    return (fp - fm) / (2 * GC_H);
}

/* Every coordinate of every tensor (the first 5 failures of each printed). Returns the largest
 * error relative to the tolerance. */
static inline double gc_check_coordinates(const char *what, gc_objective f, void *ctx,
                                          const gc_tensors *L)
{
    double F;
    f(ctx, &F);
    const double tol = gc_tolerance(F);
    double worst = 0;
    size_t count = 0;
    for (int k = 0; k < L->n; k++) {
        const gc_tensor *t = &L->t[k];
        size_t bad = 0;
        for (size_t i = 0; i < t->n; i++) {
            const double num = gc_central(f, ctx, t->x + i);
            const double e = fabs(num - t->g[i]);
            if (!(e <= tol) && bad++ < 5)
                fprintf(stderr, "\n  %s %s[%zu]: numeric %.10g, analytic %.10g, |diff| %.3g > "
                        "%.3g", what, t->name, i, num, t->g[i], e, tol);
            worst = fmax(worst, e);
        }
        CU_ASSERT_EQUAL(bad, 0);
        count += t->n;
    }
    printf("\n    %s: %zu coordinates, F %.3g, max |num - ana| %.3g, tol %.3g (ratio %.3g)", what,
           count, F, worst, tol, worst / tol);
    return worst / tol;
}

/* One random direction v (unit 2-norm) over all tensors at once. */
static inline void gc_check_direction(const char *what, gc_objective f, void *ctx,
                                      const gc_tensors *L)
{
    size_t total = 0;
    for (int k = 0; k < L->n; k++)
        total += L->t[k].n;
    mg_real *v = malloc((total ? total : 1) * sizeof *v);
    mg_real *saved = malloc((total ? total : 1) * sizeof *saved);
    if (!v || !saved) {
        perror("malloc");
        exit(2);
    }
    mg_test_fill(v, total, -1, 1, 1406, 2661, 999);
    double norm = 0, ana = 0;
    for (size_t i = 0; i < total; i++)
        norm += v[i] * v[i];
    norm = sqrt(norm);
    size_t o = 0;
    for (int k = 0; k < L->n; k++)
        for (size_t i = 0; i < L->t[k].n; i++, o++) {
            v[o] /= norm;
            saved[o] = L->t[k].x[i];
            ana += v[o] * L->t[k].g[i];
        }
    double F, fpm[2];
    for (int s = 0; s < 2; s++) {
        o = 0;
        for (int k = 0; k < L->n; k++)
            for (size_t i = 0; i < L->t[k].n; i++, o++)
                L->t[k].x[i] = saved[o] + (s ? -GC_H : GC_H) * v[o];
        fpm[s] = f(ctx, &F);
    }
    o = 0;
    for (int k = 0; k < L->n; k++)
        for (size_t i = 0; i < L->t[k].n; i++, o++)
            L->t[k].x[i] = saved[o];
    const double num = (fpm[0] - fpm[1]) / (2 * GC_H);
    f(ctx, &F);
    const double tol = gc_tolerance(F);
    CU_ASSERT(fabs(num - ana) <= tol);
    printf("\n    %s: random direction over %zu values, d/dv %.6g, |num - ana| %.3g, tol %.3g",
           what, total, ana, fabs(num - ana), tol);
    free(v);
    free(saved);
}

#endif
