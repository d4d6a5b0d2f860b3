/* The BLAS under mpigan (blas.h). */
#define _GNU_SOURCE /* sched_getaffinity */
#include "mpigan/blas.h"

#include <cblas.h>
#include <sched.h>
#include <stdlib.h>

void mg_gemm_blas(int trans_a, int trans_b, int M, int N, int K, mg_real alpha,
                  const mg_real *A, int lda, const mg_real *B, int ldb, mg_real beta, mg_real *C,
                  int ldc)
{
    if (M <= 0 || N <= 0)
        return;
#ifdef MG_REAL_DOUBLE
    cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#else
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

/* The reference: one dot product per element, accumulated in double and rounded once, so it is
 * at least as accurate as any BLAS it is compared with. beta == 0 never reads C (BLAS rule). */
void mg_gemm_ref(int trans_a, int trans_b, int M, int N, int K, mg_real alpha, const mg_real *A,
                 int lda, const mg_real *B, int ldb, mg_real beta, mg_real *C, int ldc)
{
    const size_t sa_i = trans_a ? 1 : (size_t)lda, sa_k = trans_a ? (size_t)lda : 1;
    const size_t sb_k = trans_b ? 1 : (size_t)ldb, sb_j = trans_b ? (size_t)ldb : 1;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double acc = 0;
            const mg_real *a = A + i * sa_i; // row i of op(A)
            const mg_real *b = B + j * sb_j; // column j of op(B)
            for (int k = 0; k < K; k++)
                acc += (double)a[k * sa_k] * (double)b[k * sb_k];
            mg_real *c = C + (size_t)i * ldc + j;
            double v = (double)alpha * acc;
            if (beta != 0)
                v += (double)beta * (double)*c;
            *c = (mg_real)v;
        }
    }
}

const char *mg_blas_kernels(void)
{
    const char *name = openblas_get_corename();
    return name ? name : "unknown";
}

int mg_blas_threads_choose(int node_ranks)
{
    if (!getenv("OPENBLAS_NUM_THREADS") && !getenv("OMP_NUM_THREADS")) {
        /* The cores this rank may run on (mpirun binds each rank to one by default), shared
         * with the other ranks of the node when they are not bound. */
        cpu_set_t set;
        int cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
        int per_rank = node_ranks > 0 && cpus >= node_ranks ? cpus / node_ranks : 1;
        openblas_set_num_threads(per_rank > 0 ? per_rank : 1);
    }
    return openblas_get_num_threads();
}

int mg_blas_threads(void)
{
    return openblas_get_num_threads();
}

int mg_blas_set_threads(int threads)
{
    int old = openblas_get_num_threads();
    openblas_set_num_threads(threads);
    return old;
}
