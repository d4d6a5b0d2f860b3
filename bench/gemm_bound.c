/* The GEMM bound of one training iteration: every GEMM an iteration of the configured model
 * makes, recorded from a real iteration through a wrapping mg_gemm_fn, then replayed alone with
 * cblas_sgemm on buffers of the same shapes; a Winograd layer's products by its transformed
 * weights, which run in mg_wino_gemm rather than the BLAS, likewise (through the plan's
 * `products`), replayed alone with mg_wino_gemm. The same program times the real iteration, so the
 * ratio iteration / GEMM bound comes from one run on the same core. It also times the GEMMs inside
 * the real iterations (gemm_in_iteration_seconds), which splits the gap between the two into GEMMs
 * slower in place (operands cold, evicted by the rest of the step) and everything else.
 *
 * It also counts the allocations of the timed iterations (the steady state): every malloc,
 * calloc, realloc, aligned allocation and mmap made by anything in the process (mpigan, OpenBLAS,
 * MPI) while they run, summed over ranks, and apart those called from the executable itself,
 * that is from mpigan's code (its libraries are static), which should be 0. (Not in a sanitized
 * build, whose allocator cannot be wrapped: -1 there.)
 *
 * usage: gemm_bound CONFIG [ITERATIONS [REPEATS]] [--set KEY=VALUE ...]
 * On any number of ranks (each replays its own GEMMs, timed alone, while the others do the
 * same); rank 0 prints one JSON line: its own GEMMs and iteration times, the sum of allocations
 * over ranks, and the distinct GEMM shapes of one iteration with their counts and GFLOP. */
#define _GNU_SOURCE /* syscall */
#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mpigan/blas.h"
#include "mpigan/comm.h"
#include "mpigan/winograd.h"
#include "mpigan/config.h"
#include "mpigan/dataset.h"
#include "mpigan/splits.h"
#include "mpigan/train.h"

/* ---- allocations counted while `counting` is set ---- */

static volatile int counting;
static volatile long n_allocs, n_own; /* all, and those called from the executable's code */

#if defined(__SANITIZE_ADDRESS__)
#define COUNTS_ALLOCATIONS 0
#else
#define COUNTS_ALLOCATIONS 1
/* glibc's own entry points: the definitions below interpose malloc and friends for every library
 * of the process (ELF symbol interposition by the executable) and forward to these. */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

extern char __executable_start, etext; /* the executable's code: the linker's symbols */

/* caller: the return address of the allocating call. */
static void count(const void *caller)
{
    if (counting) {
        n_allocs++;
        n_own += (const char *)caller >= &__executable_start && (const char *)caller < &etext;
    }
}
#define COUNT() count(__builtin_return_address(0))

void *malloc(size_t n)
{
    COUNT();
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    COUNT();
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    COUNT();
    return __libc_realloc(p, n);
}

void *memalign(size_t align, size_t n)
{
    COUNT();
    return __libc_memalign(align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    COUNT();
    return __libc_memalign(align, n);
}

int posix_memalign(void **p, size_t align, size_t n)
{
    COUNT();
    void *q = __libc_memalign(align, n);
    if (!q)
        return ENOMEM;
    *p = q;
    return 0;
}

/* mmap from outside libc (malloc's own mappings do not come through here): the raw system call. */
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    COUNT();
    return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}
#endif

/* ---- GEMMs of one iteration ---- */

#define MAX_CALLS 8192
#define MAX_OVERRIDES 32

typedef struct {
    int ta, tb, m, n, k;
    int wino; /* 1: a product by U (mg_wino_gemm), ta its transpose; 0: a BLAS GEMM */
} call;

static call calls[MAX_CALLS];
static int n_calls, recording, overflow;
static double in_gemm; /* seconds inside the GEMMs of the timed iterations */

static void recording_gemm(int ta, int tb, int M, int N, int K, mg_real alpha, const mg_real *A,
                           int lda, const mg_real *B, int ldb, mg_real beta, mg_real *C, int ldc)
{
    if (recording) {
        if (n_calls < MAX_CALLS)
            calls[n_calls++] = (call){ta, tb, M, N, K, 0};
        else
            overflow = 1;
    }
    double t0 = mg_comm_wtime();
    mg_gemm_blas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    in_gemm += mg_comm_wtime() - t0;
}

static void recording_products(int M, int N, int K, const mg_real *a, size_t ars, size_t acs,
                               const mg_real *b, size_t ldb, mg_real *c, size_t ldc,
                               mg_real *pack, int blocks)
{
    if (recording) {
        if (n_calls < MAX_CALLS)
            calls[n_calls++] = (call){acs != 1, 0, M, N, K, 1};
        else
            overflow = 1;
    }
    double t0 = mg_comm_wtime();
    mg_wino_gemm(M, N, K, a, ars, acs, b, ldb, c, ldc, pack, blocks);
    in_gemm += mg_comm_wtime() - t0;
}

/* Every Winograd layer of net records its products by U, where they run in mg_wino_gemm (else
 * they go through the BLAS hook above). */
static void record_products(mg_net *net)
{
    for (int l = 0; l < net->n_layers && mg_wino_products_fast(); l++)
        if (net->layer[l].conv.wino.m)
            net->layer[l].conv.wino.products = recording_products;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_call(const void *a, const void *b)
{
    const call *x = a, *y = b;
    const int kx[] = {x->wino, x->ta, x->tb, x->m, x->n, x->k},
              ky[] = {y->wino, y->ta, y->tb, y->m, y->n, y->k};
    for (int i = 0; i < 6; i++)
        if (kx[i] != ky[i])
            return (kx[i] > ky[i]) - (kx[i] < ky[i]);
    return 0;
}

/* The distinct shapes of the recorded calls, with counts, as a JSON list on f. */
static void print_shapes(FILE *f)
{
    static call sorted[MAX_CALLS];
    memcpy(sorted, calls, (size_t)n_calls * sizeof *calls);
    qsort(sorted, (size_t)n_calls, sizeof *sorted, cmp_call);
    fprintf(f, "[");
    for (int i = 0, first = 1; i < n_calls;) {
        int j = i;
        while (j < n_calls && cmp_call(&sorted[i], &sorted[j]) == 0)
            j++;
        const call *c = &sorted[i];
        fprintf(f, "%s{\"ta\": %d, \"tb\": %d, \"m\": %d, \"n\": %d, \"k\": %d, \"count\": %d, "
                "\"gflop\": %.4f, \"winograd\": %d}", first ? "" : ", ", c->ta, c->tb, c->m, c->n,
                c->k, j - i, 2.0 * c->m * c->n * c->k * (j - i) / 1e9, c->wino);
        first = 0;
        i = j;
    }
    fprintf(f, "]");
}

int main(int argc, char **argv)
{
    mg_comm_init(&argc, &argv);
    const char *pos[3] = {NULL, NULL, NULL}, *overrides[MAX_OVERRIDES];
    int n_pos = 0, n_over = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--set") && i + 1 < argc && n_over < MAX_OVERRIDES)
            overrides[n_over++] = argv[++i];
        else if (strcmp(argv[i], "--set") && n_pos < 3)
            pos[n_pos++] = argv[i];
        else
            n_pos = -1000; /* a bad command line */
    }
    if (n_pos < 1) {
        fprintf(stderr, "usage: gemm_bound CONFIG [ITERATIONS [REPEATS]] [--set KEY=VALUE ...]\n");
        return 2;
    }
    const int iters = pos[1] ? atoi(pos[1]) : 50, repeats = pos[2] ? atoi(pos[2]) : 5;
    if (iters < 1 || repeats < 1) {
        fprintf(stderr, "gemm_bound: ITERATIONS and REPEATS must be positive\n");
        return 2;
    }
    const mg_comm *comm = mg_comm_world();
    const int rank = mg_comm_rank(comm);
    mg_config cfg;
    mg_error err;
    mg_dataset data;
    mg_trainer t;
    mg_gan_spec spec;
    if (mg_config_load(&cfg, pos[0], overrides, n_over, &err) ||
        mg_split_load_train(&data, &cfg, comm, &err) ||
        (spec = mg_config_gan(&cfg), mg_trainer_init(&t, &spec, &data, comm, &err))) {
        fprintf(stderr, "gemm_bound: %s\n", err.msg);
        return 2;
    }
    t.g.gemm = recording_gemm;
    t.d.gemm = recording_gemm;
    record_products(&t.g);
    record_products(&t.d);
    mg_step_stats s;
    mg_trainer_step(&t, &s); /* warm-up */
    recording = 1;
    mg_trainer_step(&t, &s);
    recording = 0;
    if (overflow) {
        fprintf(stderr, "gemm_bound: more than %d GEMMs in one iteration\n", MAX_CALLS);
        return 1;
    }

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
    size_t k_max = 0; /* mg_wino_gemm's scratch: 12 values per k */
    for (int i = 0; i < n_calls; i++)
        k_max = (size_t)calls[i].k > k_max ? (size_t)calls[i].k : k_max;
    float *A = calloc(a_max, sizeof *A), *B = calloc(b_max, sizeof *B);
    float *C = calloc(c_max, sizeof *C), *P = calloc(12 * k_max + 1, sizeof *P);
    double *gemm_s = malloc(repeats * sizeof *gemm_s), *iter_s = malloc(repeats * sizeof *iter_s);
    double *situ_s = malloc(repeats * sizeof *situ_s);
    if (!A || !B || !C || !P || !gemm_s || !iter_s || !situ_s) {
        fprintf(stderr, "gemm_bound: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < a_max; i++)
        A[i] = (float)(i % 17) / 17;
    for (size_t i = 0; i < b_max; i++)
        B[i] = (float)(i % 13) / 13;

    /* Repeats alternate the two measurements, so drift on a shared machine hits both alike. */
    long faults = 0; /* minor page faults of the timed iterations: memory touched anew */
    double *cpu_s = malloc(repeats * sizeof *cpu_s); /* CPU seconds per iteration */
    if (!cpu_s) {
        fprintf(stderr, "gemm_bound: out of memory\n");
        return 1;
    }
    for (int r = 0; r < repeats; r++) {
        double t0 = mg_comm_wtime();
        for (int it = 0; it < iters; it++)
            for (int i = 0; i < n_calls; i++) {
                const call *c = &calls[i];
                if (c->wino) { // U (m x k) or U^T as the passes lie: rows k or m apart
                    mg_wino_gemm(c->m, c->n, c->k, A, c->ta ? 1 : (size_t)c->k,
                                 c->ta ? (size_t)c->m : 1, B, (size_t)c->n, C, (size_t)c->n, P, 0);
                    continue;
                }
                /* Row-major as the layers call it: op(A) is m x k, op(B) is k x n. */
                cblas_sgemm(CblasRowMajor, c->ta ? CblasTrans : CblasNoTrans,
                            c->tb ? CblasTrans : CblasNoTrans, c->m, c->n, c->k, 1, A,
                            c->ta ? c->m : c->k, B, c->tb ? c->k : c->n, 0, C, c->n);
            }
        double t1 = mg_comm_wtime();
        in_gemm = 0;
        struct rusage u0, u1;
        getrusage(RUSAGE_SELF, &u0);
        counting = 1;
        for (int it = 0; it < iters; it++)
            mg_trainer_step(&t, &s);
        counting = 0;
        getrusage(RUSAGE_SELF, &u1);
        faults += u1.ru_minflt - u0.ru_minflt;
        cpu_s[r] = (u1.ru_utime.tv_sec - u0.ru_utime.tv_sec + u1.ru_stime.tv_sec -
                    u0.ru_stime.tv_sec + 1e-6 * (u1.ru_utime.tv_usec - u0.ru_utime.tv_usec +
                                                 u1.ru_stime.tv_usec - u0.ru_stime.tv_usec)) /
                   iters;
        double t2 = mg_comm_wtime();
        gemm_s[r] = (t1 - t0) / iters;
        iter_s[r] = (t2 - t1) / iters;
        situ_s[r] = in_gemm / iters;
    }
    double allocs, own, pf, lo, hi;
    mg_comm_minmaxsum(comm, (double)n_allocs, &lo, &hi, &allocs);
    mg_comm_minmaxsum(comm, (double)n_own, &lo, &hi, &own);
    mg_comm_minmaxsum(comm, (double)faults, &lo, &hi, &pf);
    qsort(gemm_s, repeats, sizeof *gemm_s, cmp_double);
    qsort(iter_s, repeats, sizeof *iter_s, cmp_double);
    qsort(situ_s, repeats, sizeof *situ_s, cmp_double);
    const double g = gemm_s[repeats / 2], it = iter_s[repeats / 2], situ = situ_s[repeats / 2];
    /* The fastest repeat of each too: on a machine shared with other jobs, which only ever slow a
     * repeat down, the best of several alternations is the steadier estimate of each. */
    const double g_min = gemm_s[0], it_min = iter_s[0];
    /* CPU time, which time slices given to other jobs do not inflate (cache sharing still does). */
    qsort(cpu_s, repeats, sizeof *cpu_s, cmp_double);
    const double cpu_min = cpu_s[0];
    const double examples = (double)cfg.train.k * t.batch; /* the global batch: ranks run at once */
    if (rank == 0) {
        printf("{\"ranks\": %d, \"gemm_calls\": %d, \"gflop_per_iteration\": %.4f, "
               "\"gemm_seconds\": %.6f, \"gemm_gflops\": %.1f, \"iteration_seconds\": %.6f, "
               "\"gemm_bound_samples_per_s\": %.1f, \"samples_per_s\": %.1f, "
               "\"iteration_over_gemm\": %.4f, \"gemm_in_iteration_seconds\": %.6f, "
               "\"gemm_seconds_min\": %.6f, \"iteration_seconds_min\": %.6f, "
               "\"iteration_over_gemm_min\": %.4f, \"repeats\": %d, "
               "\"cpu_seconds_per_iteration_min\": %.6f, "
               "\"threads\": %d, \"blas_kernels\": \"%s\", \"steady_state_allocations\": %.0f, "
               "\"steady_state_allocations_mpigan\": %.0f, "
               "\"steady_state_page_faults\": %.0f, \"steady_state_steps\": %d, \"gemm_shapes\": ",
               t.nranks, n_calls, flop / 1e9, g, flop / g / 1e9, it, examples / g, examples / it,
               it / g, situ, g_min, it_min, it_min / g_min, repeats, cpu_min,
               openblas_get_num_threads(), mg_blas_kernels(),
               COUNTS_ALLOCATIONS ? allocs : -1.0, COUNTS_ALLOCATIONS ? own : -1.0, pf,
               iters * repeats);
        print_shapes(stdout);
        printf("}\n");
    }
    free(A);
    free(B);
    free(C);
    free(P);
    free(gemm_s);
    free(iter_s);
    free(situ_s);
    free(cpu_s);
    mg_trainer_free(&t);
    mg_dataset_unload(&data);
    mg_comm_finalize();
    return 0;
}
