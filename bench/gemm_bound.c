/* The GEMM bound of one training iteration: every GEMM an iteration of the configured model
 * makes, recorded from a real iteration through a wrapping mg_gemm_fn, then replayed alone with
 * cblas_sgemm on buffers of the same shapes. The same program times the real iteration, so the
 * ratio iteration / GEMM bound comes from one run on the same core. It also times the GEMMs inside
 * the real iterations (gemm_in_iteration_seconds), which splits the gap between the two into GEMMs
 * slower in place (operands cold, evicted by the rest of the step) and everything else.
 *
 * usage: gemm_bound CONFIG [ITERATIONS [REPEATS]]   (1 rank; one JSON line on stdout) */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpigan/blas.h"
#include "mpigan/comm.h"
#include "mpigan/config.h"
#include "mpigan/dataset.h"
#include "mpigan/splits.h"
#include "mpigan/train.h"

#define MAX_CALLS 256

typedef struct {
    int ta, tb, m, n, k;
} call;

static call calls[MAX_CALLS];
static int n_calls, recording;
static double in_gemm; /* seconds inside the GEMMs of the timed iterations */

static void recording_gemm(int ta, int tb, int M, int N, int K, mg_real alpha, const mg_real *A,
                           int lda, const mg_real *B, int ldb, mg_real beta, mg_real *C, int ldc)
{
    if (recording && n_calls < MAX_CALLS)
        calls[n_calls++] = (call){ta, tb, M, N, K};
    double t0 = mg_comm_wtime();
    mg_gemm_blas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    in_gemm += mg_comm_wtime() - t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    mg_comm_init(&argc, &argv);
    if (argc < 2) {
        fprintf(stderr, "usage: gemm_bound CONFIG [ITERATIONS [REPEATS]]\n");
        return 2;
    }
    const int iters = argc > 2 ? atoi(argv[2]) : 50, repeats = argc > 3 ? atoi(argv[3]) : 5;
    const mg_comm *comm = mg_comm_world();
    mg_config cfg;
    mg_error err;
    mg_dataset data;
    mg_trainer t;
    mg_gan_spec spec;
    if (mg_config_load(&cfg, argv[1], NULL, 0, &err) ||
        mg_split_load_train(&data, &cfg, comm, &err) ||
        (spec = mg_config_gan(&cfg), mg_trainer_init(&t, &spec, &data, comm, &err))) {
        fprintf(stderr, "gemm_bound: %s\n", err.msg);
        return 2;
    }
    t.g.gemm = recording_gemm;
    t.d.gemm = recording_gemm;
    mg_step_stats s;
    mg_trainer_step(&t, &s); /* warm-up */
    recording = 1;
    mg_trainer_step(&t, &s);
    recording = 0;

    double flop = 0;
    size_t a_max = 0, b_max = 0, c_max = 0;
    for (int i = 0; i < n_calls; i++) {
        const call *c = &calls[i];
        flop += 2.0 * c->m * c->n * c->k;
        size_t a = (size_t)c->m * c->k, b = (size_t)c->k * c->n, cc = (size_t)c->m * c->n;
        a_max = a > a_max ? a : a_max;
        b_max = b > b_max ? b : b_max;
        c_max = cc > c_max ? cc : c_max;
    }
    float *A = calloc(a_max, sizeof *A), *B = calloc(b_max, sizeof *B), *C = calloc(c_max, sizeof *C);
    for (size_t i = 0; i < a_max; i++)
        A[i] = (float)(i % 17) / 17;
    for (size_t i = 0; i < b_max; i++)
        B[i] = (float)(i % 13) / 13;

    /* Repeats alternate the two measurements, so drift on a shared machine hits both alike. */
    double *gemm_s = malloc(repeats * sizeof *gemm_s), *iter_s = malloc(repeats * sizeof *iter_s);
    double *situ_s = malloc(repeats * sizeof *situ_s);
    for (int r = 0; r < repeats; r++) {
        double t0 = mg_comm_wtime();
        for (int it = 0; it < iters; it++)
            for (int i = 0; i < n_calls; i++) {
                const call *c = &calls[i];
                /* Row-major as the layers call it: op(A) is m x k, op(B) is k x n. */
                cblas_sgemm(CblasRowMajor, c->ta ? CblasTrans : CblasNoTrans,
                            c->tb ? CblasTrans : CblasNoTrans, c->m, c->n, c->k, 1, A,
                            c->ta ? c->m : c->k, B, c->tb ? c->k : c->n, 0, C, c->n);
            }
        double t1 = mg_comm_wtime();
        in_gemm = 0;
        for (int it = 0; it < iters; it++)
            mg_trainer_step(&t, &s);
        double t2 = mg_comm_wtime();
        gemm_s[r] = (t1 - t0) / iters;
        iter_s[r] = (t2 - t1) / iters;
        situ_s[r] = in_gemm / iters;
    }
    qsort(gemm_s, repeats, sizeof *gemm_s, cmp_double);
    qsort(iter_s, repeats, sizeof *iter_s, cmp_double);
    qsort(situ_s, repeats, sizeof *situ_s, cmp_double);
    const double g = gemm_s[repeats / 2], it = iter_s[repeats / 2], situ = situ_s[repeats / 2];
    const double examples = (double)cfg.train.k * t.batch;
    printf("{\"gemm_calls\": %d, \"gflop_per_iteration\": %.4f, \"gemm_seconds\": %.6f, "
           "\"gemm_gflops\": %.1f, \"iteration_seconds\": %.6f, \"gemm_bound_samples_per_s\": "
           "%.1f, \"samples_per_s\": %.1f, \"iteration_over_gemm\": %.4f, "
           "\"gemm_in_iteration_seconds\": %.6f, \"threads\": %d, \"blas_kernels\": \"%s\"}\n",
           n_calls, flop / 1e9, g, flop / g / 1e9, it, examples / g, examples / it, it / g, situ,
           openblas_get_num_threads(), mg_blas_kernels());
    free(A);
    free(B);
    free(C);
    free(gemm_s);
    free(iter_s);
    free(situ_s);
    mg_trainer_free(&t);
    mg_dataset_unload(&data);
    mg_comm_finalize();
    return 0;
}
