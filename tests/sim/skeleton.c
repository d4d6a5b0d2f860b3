/* The communication skeleton of one mpigan training step, for SimGrid's SMPI (docs/scaling.md).
 *
 * mpigan's step (src/train.c, alternating mode) is, on every rank:
 *     k times: D compute on this rank's rows; MPI_Allreduce(sum) of D's gradient buffer; D update
 *     once:    G compute on this rank's rows; MPI_Allreduce(sum) of G's gradient buffer; G update
 * with nothing overlapped. A model whose batch norms sum their statistics over the ranks (DCGAN)
 * also does small allreduces of doubles inside the compute: --d-small per D update and --g-small
 * per G update, of --d-small-doubles and --g-small-doubles each (their mean size), between equal
 * slices of that compute. The skeleton keeps the collectives exactly (float32, in place, the real
 * element counts) and replaces computation by smpi_execute_flops(), which advances the simulated
 * clock by flops / (the host's speed in the platform file). The caller chooses the flops, e.g.
 * measured seconds times the host speed (tests/sim/simulate.sh gets them from
 * docs/scaling_model.py).
 *
 *   smpirun -np N -platform P.xml -hostfile H skeleton --d-floats 1231445 --g-floats 2503988 \
 *       --d-flops 1.2e9 --g-flops 1.6e9 --update-flops 1.1e8 [--k 1] [--steps 3] [--warmup 1]
 *
 * Rank 0 prints one line of key=value pairs, times in seconds per step (after --warmup steps),
 * the allreduce times as the maximum over ranks and, with _min, the minimum:
 *   ranks=64 steps=3 step_s=0.0157 d_allreduce_s=0.00312 g_allreduce_s=0.00633 compute_s=0.0062
 *   d_allreduce_min_s=0.00312 g_allreduce_min_s=0.00633 bn_allreduce_s=0 simulated=1
 *   (all on one line)
 *
 * The gradient buffers come from SMPI_SHARED_MALLOC: every simulated rank shares one physical
 * copy; their contents are meaningless, which does not change the simulated time of a sum.
 *
 * Built with a real MPI's mpicc instead, the same program runs the same collectives for real and
 * stands for compute by spinning flops / --host-speed seconds: with zero flops it measures the
 * allreduces alone, e.g. on this machine's shared memory (tests/sim/measure.sh allreduce). */
#include <errno.h>
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SMPI_SHARED_MALLOC
#define SIMULATED 1
#else
#define SIMULATED 0
#define SMPI_SHARED_MALLOC(size) calloc(1, (size))
#define SMPI_SHARED_FREE(p) free(p)
#endif

#define CHECK_MPI(call)                                                                            \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != MPI_SUCCESS) {                                                                  \
            fprintf(stderr, "skeleton: %s:%d: %s failed (%d)\n", __FILE__, __LINE__, #call, rc_);  \
            MPI_Abort(MPI_COMM_WORLD, 1);                                                          \
        }                                                                                          \
    } while (0)

struct options {
    long d_floats, g_floats;  // gradient buffer lengths: parameters + mpigan's 4 stats slots
    double d_flops, g_flops;  // per rank, per D step and per G step
    double update_flops;      // per rank per step, both networks (SGD is replicated, not split)
    double update_d_share;    // the D update's part of update_flops, by parameter count
    double host_speed;        // real MPI only: flop/s that a spin of flops / host_speed stands for
    int k, steps, warmup;
    int d_small, g_small;     // small allreduces (batch norm sums) per D and per G update ...
    long d_small_n, g_small_n; // ... of this many doubles
};

struct timers {
    double d_reduce, g_reduce, compute; // simulated seconds summed over timed steps
    double small;                        // the small allreduces
};

static void usage(void)
{
    fprintf(stderr, "usage: skeleton --d-floats N --g-floats N --d-flops F --g-flops F "
                    "[--update-flops F] [--k 1] [--steps 3] [--warmup 1] [--host-speed F] "
                    "[--d-small N --d-small-doubles N] [--g-small N --g-small-doubles N]\n");
}

/* Parses a positive number into *out; 0 on success, -1 with a message naming the option. */
static int parse_number(const char *opt, const char *text, double max, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(v >= 0) || v > max) {
        fprintf(stderr, "skeleton: %s: '%s' is not a number in [0, %g]\n", opt, text, max);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){.d_floats = -1, .g_floats = -1, .d_flops = -1, .g_flops = -1,
                          .k = 1, .steps = 3, .warmup = 1, .host_speed = 1e11};
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (i + 1 >= argc) {
            fprintf(stderr, "skeleton: %s needs a value\n", opt);
            return -1;
        }
        const char *val = argv[++i];
        double v;
        if (parse_number(opt, val, 1e18, &v) != 0)
            return -1;
        if (!strcmp(opt, "--d-floats") && v >= 1 && v <= INT_MAX)
            o->d_floats = (long)v;
        else if (!strcmp(opt, "--g-floats") && v >= 1 && v <= INT_MAX)
            o->g_floats = (long)v;
        else if (!strcmp(opt, "--d-flops"))
            o->d_flops = v;
        else if (!strcmp(opt, "--g-flops"))
            o->g_flops = v;
        else if (!strcmp(opt, "--update-flops"))
            o->update_flops = v;
        else if (!strcmp(opt, "--host-speed") && v > 0)
            o->host_speed = v;
        else if (!strcmp(opt, "--k") && v >= 1 && v <= 100)
            o->k = (int)v;
        else if (!strcmp(opt, "--steps") && v >= 1 && v <= 1e6)
            o->steps = (int)v;
        else if (!strcmp(opt, "--warmup") && v <= 1e6)
            o->warmup = (int)v;
        else if (!strcmp(opt, "--d-small") && v <= 1000)
            o->d_small = (int)v;
        else if (!strcmp(opt, "--g-small") && v <= 1000)
            o->g_small = (int)v;
        else if (!strcmp(opt, "--d-small-doubles") && v >= 1 && v <= INT_MAX)
            o->d_small_n = (long)v;
        else if (!strcmp(opt, "--g-small-doubles") && v >= 1 && v <= INT_MAX)
            o->g_small_n = (long)v;
        else {
            fprintf(stderr, "skeleton: %s %s: unknown option or value out of range\n", opt, val);
            return -1;
        }
    }
    if (o->d_floats < 0 || o->g_floats < 0 || o->d_flops < 0 || o->g_flops < 0 ||
        (o->d_small && !o->d_small_n) || (o->g_small && !o->g_small_n)) {
        usage();
        return -1;
    }
    o->update_d_share = (double)o->d_floats / (double)(o->d_floats + o->g_floats);
    return 0;
}

/* One allreduce of a network's gradients, in place as mpigan does; adds its duration. */
static void reduce(float *grads, long n, double *seconds)
{
    double t0 = MPI_Wtime();
    CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, grads, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
    *seconds += MPI_Wtime() - t0;
}

static void compute(const struct options *o, double flops, double *seconds)
{
    double t0 = MPI_Wtime();
#if SIMULATED
    (void)o;
    smpi_execute_flops(flops);
#else
    while (MPI_Wtime() - t0 < flops / o->host_speed)
        ;
#endif
    *seconds += MPI_Wtime() - t0;
}

/* A network's compute in small + 1 equal slices with a small allreduce of n doubles between
 * each, as batch norms sum their statistics between layers. */
static void compute_with_sums(const struct options *o, double flops, int small, long n,
                              double *sums, struct timers *t)
{
    compute(o, flops / (small + 1), &t->compute);
    for (int i = 0; i < small; i++) {
        double t0 = MPI_Wtime();
        CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, sums, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
        t->small += MPI_Wtime() - t0;
        compute(o, flops / (small + 1), &t->compute);
    }
}

/* Algorithm 1's step: k discriminator updates, then one generator update. */
static void step(const struct options *o, float *d_grads, float *g_grads, double *sums,
                 struct timers *t)
{
    for (int j = 0; j < o->k; j++) {
        compute_with_sums(o, o->d_flops, o->d_small, o->d_small_n, sums, t);
        reduce(d_grads, o->d_floats, &t->d_reduce);
        compute(o, o->update_flops * o->update_d_share, &t->compute);
    }
    compute_with_sums(o, o->g_flops, o->g_small, o->g_small_n, sums, t);
    reduce(g_grads, o->g_floats, &t->g_reduce);
    compute(o, o->update_flops * (1 - o->update_d_share), &t->compute);
}

int main(int argc, char **argv)
{
    CHECK_MPI(MPI_Init(&argc, &argv));
    int rank, ranks;
    CHECK_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    CHECK_MPI(MPI_Comm_size(MPI_COMM_WORLD, &ranks));
    struct options o;
    if (parse_options(argc, argv, &o) != 0) {
        MPI_Finalize();
        return 2;
    }
    float *d_grads = SMPI_SHARED_MALLOC((size_t)o.d_floats * sizeof(float)); // (d_floats)
    float *g_grads = SMPI_SHARED_MALLOC((size_t)o.g_floats * sizeof(float)); // (g_floats)
    const long small_n = o.d_small_n > o.g_small_n ? o.d_small_n : o.g_small_n;
    double *sums = calloc((size_t)(small_n > 0 ? small_n : 1), sizeof *sums); // (small_n)
    if (!d_grads || !g_grads || !sums) {
        fprintf(stderr, "skeleton: rank %d: out of memory for the gradient buffers\n", rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }

    struct timers warm = {0}, t = {0};
    for (int s = 0; s < o.warmup; s++)
        step(&o, d_grads, g_grads, sums, &warm);
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    double t0 = MPI_Wtime();
    for (int s = 0; s < o.steps; s++)
        step(&o, d_grads, g_grads, sums, &t);
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    double elapsed = MPI_Wtime() - t0;

    // Times per step; the allreduces' as the slowest rank saw them, like run.json's "max", and
    // as the fastest did: on a real machine that is the one that waited least for the others.
    double mine[4] = {t.d_reduce / o.steps, t.g_reduce / o.steps, t.compute / o.steps,
                      t.small / o.steps};
    double max[4], min[2];
    CHECK_MPI(MPI_Reduce(mine, max, 4, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD));
    CHECK_MPI(MPI_Reduce(mine, min, 2, MPI_DOUBLE, MPI_MIN, 0, MPI_COMM_WORLD));
    if (rank == 0)
        printf("ranks=%d steps=%d step_s=%.6g d_allreduce_s=%.6g g_allreduce_s=%.6g "
               "compute_s=%.6g d_allreduce_min_s=%.6g g_allreduce_min_s=%.6g bn_allreduce_s=%.6g "
               "simulated=%d\n",
               ranks, o.steps, elapsed / o.steps, max[0], max[1], max[2], min[0], min[1], max[3],
               SIMULATED);

    SMPI_SHARED_FREE(d_grads);
    SMPI_SHARED_FREE(g_grads);
    free(sums);
    CHECK_MPI(MPI_Finalize());
    return 0;
}
