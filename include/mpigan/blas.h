/* The BLAS under mpigan: the GEMM every layer runs (OpenBLAS, and a plain-C twin the tests hold it
 * to), the kernels OpenBLAS picked, and its thread count per rank. */
#ifndef MPIGAN_BLAS_H
#define MPIGAN_BLAS_H

#include "mpigan/real.h"

/* C(M,N) = alpha * op(A) op(B) + beta * C, row-major, op = transpose when trans_x is non-zero:
 * the cblas_?gemm contract restricted to what the layers need. */
typedef void (*mg_gemm_fn)(int trans_a, int trans_b, int M, int N, int K, mg_real alpha,
                           const mg_real *A, int lda, const mg_real *B, int ldb, mg_real beta,
                           mg_real *C, int ldc);

/* cblas_sgemm (cblas_dgemm in the double build). */
void mg_gemm_blas(int trans_a, int trans_b, int M, int N, int K, mg_real alpha,
                  const mg_real *A, int lda, const mg_real *B, int ldb, mg_real beta, mg_real *C,
                  int ldc);
/* The reference: one dot product per element, accumulated in double and rounded once. */
void mg_gemm_ref(int trans_a, int trans_b, int M, int N, int K, mg_real alpha, const mg_real *A,
                 int lda, const mg_real *B, int ldb, mg_real beta, mg_real *C, int ldc);

/* OpenBLAS's kernel family, e.g. "Haswell" or "Cooperlake": OpenBLAS picks it by CPU when it
 * loads, unless OPENBLAS_CORETYPE names one (on this project's AMD EPYC, Cooperlake's sgemm runs
 * the paper's MNIST GEMMs at 207 GFLOP/s, Haswell's at 116). Run records keep it, since speeds
 * and the last bits of results depend on it. */
const char *mg_blas_kernels(void);

/* Sets OpenBLAS's threads for this process unless OPENBLAS_NUM_THREADS (or OMP_NUM_THREADS) says:
 * the cores this process may run on, shared among the `node_ranks` ranks of its node. Returns the
 * count in force. */
int mg_blas_threads_choose(int node_ranks);

/* OpenBLAS's thread count, and a new one (returns the old): mg_generate runs one thread so that
 * every GEMM has the same shape, hence the same rounding, on any number of ranks. */
int mg_blas_threads(void);
int mg_blas_set_threads(int threads);

#endif
