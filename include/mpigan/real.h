/* The floating-point type of every tensor in mpigan.
 *
 * The library is built twice from the same sources: `mpigan` in single precision (what users
 * train with) and `mpigan_f64` with MG_REAL_DOUBLE defined, which the gradient checks link so
 * that central differences test the production code itself, not a copy of it. */
#ifndef MPIGAN_REAL_H
#define MPIGAN_REAL_H

#ifdef MG_REAL_DOUBLE
typedef double mg_real;
#define MG_REAL_NAME "double"
#define mg_sqrt sqrt
#define mg_exp exp
#else
typedef float mg_real;
#define MG_REAL_NAME "float"
#define mg_sqrt sqrtf
#define mg_exp expf

#include <stddef.h>

/* 1 if none of x(n) is NaN or +-Inf: the check before an update, of parameters before a
 * checkpoint, and of tensors a checkpoint loads. Vectorised; raises no floating-point exception. */
int mg_all_finite(const mg_real *x, size_t n);

#endif


#include <stddef.h>

/* 1 if none of x(n) is NaN or +-Inf: the check before an update, of parameters before a
 * checkpoint, and of tensors a checkpoint loads. Vectorised; raises no floating-point exception. */
int mg_all_finite(const mg_real *x, size_t n);

#endif
