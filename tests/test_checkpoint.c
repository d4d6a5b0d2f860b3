/* Checkpoints, run under mpiexec with 1 and 2 ranks: rank 0 writes and reads files, every rank
 * builds trainers.
 *
 * The central property: a run stopped at step n and resumed from its checkpoint computes, bit for
 * bit, what the run that never stopped computes. Then: a bad file gives one exact line and leaves
 * the trainer untouched; a failed write leaves the old checkpoint in place. */
#define _GNU_SOURCE /* open_memstream */
#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "mpigan/checkpoint.h"
#include "mpigan/comm.h"
#include "mpigan/config.h"
#include "mpigan/dataset.h"
#include "mpigan/generate.h"
#include "mpigan/splits.h"
#include "mpigan/rng.h"
#include "mpigan/train.h"
#include "fixtures.h"
#include "helpers.h"
#include "testlib.h"

#define N_STEPS 10 /* the resume tests: 2n steps straight against n, checkpoint, n */

static mg_comm *self; /* rank 0 alone (NULL on the other ranks) */


static const char *const *const sgd = mg_fixture_sgd;
static const char *const *const adam = mg_fixture_adam;

/* The test model: G 8 -> 24 -> 36, D 36 -> maxout 12x3 -> 10 -> 1, with dropout in D. 64
 * examples in batches of 8 make an epoch 8 minibatches, so 2 x 10 steps of k = 2 cross the
 * momentum ramp (epochs 1 to 3) and the resume falls mid-epoch. */
static mg_config make_config_with(const char *const optim[2], const char *g_layers,
                                  const char *const *set, int n_set)
{
    return mg_fixture_config(optim, g_layers, 100, set, n_set);
}

static mg_config make_config(const char *const optim[2])
{
    return make_config_with(optim, MG_FIXTURE_G_LAYERS, NULL, 0);
}

/* Sizes of the test networks: G 8*24+24 + 24*36+36, D 36*36+36 + 12*10+10 + 10+1. */
enum { NG = 8 * 24 + 24 + 24 * 36 + 36, ND = 36 * 36 + 36 + 12 * 10 + 10 + 10 + 1 };

/* Rank 0 writes t to path (the optimizers' whole state gathered there first, with a sharded
 * update); every rank learns whether that worked. */
static void write_on_rank0(mg_trainer *t, const mg_config *cfg, const char *path)
{
    int rc = 0;
    mg_optim *g, *d;
    mg_trainer_whole_optims(t, 0, &g, &d);
    if (t->rank == 0) {
        char *yaml = mg_fixture_yaml(cfg);
        mg_error err;
        rc = mg_fixture_write(t, yaml, path, &err);
        if (rc)
            fprintf(stderr, "write: %s\n", err.msg);
        free(yaml);
    }
    mg_trainer_whole_optims_end(t);
    mg_comm_bcast(t->comm, &rc, sizeof rc, 0);
    CU_ASSERT_FATAL(rc == 0);
}

/* Rank 0 loads path into t, then broadcasts: how a resumed run starts. */
static void load_on_rank0(mg_trainer *t, const char *path)
{
    int rc = 0;
    mg_optim *g, *d;
    mg_trainer_whole_optims(t, 1, &g, &d);
    if (t->rank == 0) {
        mg_error err;
        rc = mg_fixture_load(t, path, &err);
        if (rc)
            fprintf(stderr, "load: %s\n", err.msg);
    }
    mg_comm_bcast(t->comm, &rc, sizeof rc, 0);
    CU_ASSERT_FATAL(rc == 0);
    mg_trainer_broadcast_state(t);
    mg_trainer_whole_optims_end(t);
}

/* A copy of everything a checkpoint holds. */
typedef struct {
    mg_real *g, *d, *gm, *gv, *dm, *dv;
    mg_real *gs, *ds; /* batch norms' running averages (NULL without batch norm) */
    int64_t gt, dt, step, minibatch;
} state;

static mg_real *dup_reals(const mg_real *x, size_t n)
{
    if (!x)
        return NULL;
    mg_real *c = malloc(n * sizeof *c);
    CU_ASSERT_FATAL(c != NULL);
    memcpy(c, x, n * sizeof *c);
    return c;
}

static state take_state(const mg_trainer *t)
{
    return (state){.g = dup_reals(t->g.params, t->g.n_params),
                   .d = dup_reals(t->d.params, t->d.n_params),
                   .gm = dup_reals(t->g_opt.m, t->g_opt.n),
                   .gv = dup_reals(t->g_opt.v, t->g_opt.n),
                   .dm = dup_reals(t->d_opt.m, t->d_opt.n),
                   .dv = dup_reals(t->d_opt.v, t->d_opt.n),
                   .gs = dup_reals(t->g.state, t->g.n_state),
                   .ds = dup_reals(t->d.state, t->d.n_state),
                   .gt = t->g_opt.t,
                   .dt = t->d_opt.t,
                   .step = t->step,
                   .minibatch = t->minibatch};
}

static void free_state(state *s)
{
    free(s->g);
    free(s->d);
    free(s->gm);
    free(s->gv);
    free(s->dm);
    free(s->dv);
    free(s->gs);
    free(s->ds);
}

static int same_reals(const mg_real *a, const mg_real *b, size_t n)
{
    if (!a || !b)
        return a == b;
    return memcmp(a, b, n * sizeof *a) == 0;
}

/* Bit for bit. */
static int same_state(const mg_trainer *t, const state *s)
{
    return same_reals(t->g.params, s->g, t->g.n_params) &&
           same_reals(t->d.params, s->d, t->d.n_params) &&
           same_reals(t->g_opt.m, s->gm, t->g_opt.n) && same_reals(t->g_opt.v, s->gv, t->g_opt.n) &&
           same_reals(t->d_opt.m, s->dm, t->d_opt.n) && same_reals(t->d_opt.v, s->dv, t->d_opt.n) &&
           same_reals(t->g.state, s->gs, t->g.n_state) &&
           same_reals(t->d.state, s->ds, t->d.n_state) && t->g_opt.t == s->gt && t->d_opt.t == s->dt && t->step == s->step &&
           t->minibatch == s->minibatch;
}

/* Every file and object a test opened is closed again. */
static void assert_no_open_hdf5(void)
{
    ssize_t open = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (open != 0)
        fprintf(stderr, "\n  %zd HDF5 objects left open\n", open);
    CU_ASSERT_EQUAL(open, 0);
}

static int file_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void copy_file(const char *to, const char *from, long bytes)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    CU_ASSERT_FATAL(in && out);
    char buf[65536];
    size_t n;
    long left = bytes < 0 ? -1 : bytes; /* -1: all of it */
    while (left != 0 &&
           (n = fread(buf, 1, left < 0 || left > (long)sizeof buf ? sizeof buf : (size_t)left,
                      in)) > 0) {
        CU_ASSERT_FATAL(fwrite(buf, 1, n, out) == n);
        if (left > 0)
            left -= (long)n;
    }
    CU_ASSERT_FATAL(fclose(in) == 0 && fclose(out) == 0);
}

static long file_size(const char *path)
{
    struct stat st;
    CU_ASSERT_FATAL(stat(path, &st) == 0);
    return (long)st.st_size;
}

/* ---- the state survives a round trip ---- */

static void check_round_trip(const mg_config cfg, int adam_moments, const char *name)
{
    const mg_comm *world = mg_comm_world();
    mg_dataset ds = mg_fixture_blobs(64);
    const char *path = mg_test_path(name);
    mg_trainer a, b;
    mg_fixture_trainer_ok(&a, &cfg, &ds, world);
    mg_fixture_train(&a, 3);
    write_on_rank0(&a, &cfg, path);

    mg_fixture_trainer_ok(&b, &cfg, &ds, world);
    state before = take_state(&b);
    CU_ASSERT(!same_state(&a, &before)); /* else the test could not fail */
    load_on_rank0(&b, path);
    state sa = take_state(&a);
    /* On every rank: rank 0 read the file, the others got it by broadcast. */
    CU_ASSERT(mg_comm_all_ok(world, same_state(&b, &sa)));
    const int k = cfg.train.k;
    CU_ASSERT_EQUAL(b.step, 3);
    CU_ASSERT_EQUAL(b.minibatch, 3 * k);
    CU_ASSERT_EQUAL(b.g_opt.t, 3);
    CU_ASSERT_EQUAL(b.d_opt.t, 3 * k);
    CU_ASSERT((b.g_opt.v != NULL) == adam_moments);
    free_state(&before);
    free_state(&sa);
    mg_trainer_free(&a);
    mg_trainer_free(&b);
    mg_dataset_free(&ds);
    assert_no_open_hdf5();
}

static void test_round_trip_sgd(void)
{
    check_round_trip(make_config(sgd), 0, "rt-sgd.h5");
}

static void test_round_trip_adam(void)
{
    check_round_trip(make_config(adam), 1, "rt-adam.h5");
}

/* Convolutions and batch norm: every layer's tensors and the running averages come back. */
static void test_round_trip_dcgan(void)
{
    mg_config cfg = mg_fixture_dcgan_config(100, NULL, 0);
    mg_trainer t;
    mg_dataset ds = mg_fixture_blobs(64);
    mg_fixture_trainer_ok(&t, &cfg, &ds, mg_comm_world());
    CU_ASSERT(t.g.n_state == 2 * 8 && t.d.n_state == 2 * 8); /* mean and variance per channel */
    mg_trainer_free(&t);
    mg_dataset_free(&ds);
    check_round_trip(cfg, 1, "rt-dcgan.h5");
}

/* ---- resuming continues the run exactly ---- */

static void check_resume_exact(const mg_config cfg, const char *what, const char *name)
{
    const mg_comm *world = mg_comm_world();
    mg_dataset ds = mg_fixture_labeled_blobs(64); /* labels: for a conditional cfg only */
    const char *path = mg_test_path(name);

    mg_trainer a, b, c;
    mg_fixture_trainer_ok(&a, &cfg, &ds, world); /* run A: 2n steps straight */
    mg_fixture_train(&a, 2 * N_STEPS);

    mg_fixture_trainer_ok(&b, &cfg, &ds, world); /* run B: n steps, checkpoint, stop */
    mg_fixture_train(&b, N_STEPS);
    write_on_rank0(&b, &cfg, path);
    mg_trainer_free(&b);

    mg_fixture_trainer_ok(&c, &cfg, &ds, world); /* run B resumed: n more */
    load_on_rank0(&c, path);
    CU_ASSERT_EQUAL(c.step, N_STEPS);
    mg_fixture_train(&c, N_STEPS);

    state sa = take_state(&a);
    const int same = same_state(&c, &sa);
    free_state(&sa);
    double dg = mg_test_max_diff(a.g.params, c.g.params, a.g.n_params);
    double dd = mg_test_max_diff(a.d.params, c.d.params, a.d.n_params);
    if (mg_comm_rank(world) == 0)
        printf("\n  %s on %d rank%s: 2 x %d steps straight vs %d, checkpoint, %d: max difference "
               "G %g, D %g",
               what, mg_comm_size(world), mg_comm_size(world) == 1 ? "" : "s", N_STEPS, N_STEPS,
               N_STEPS, dg, dd);
    CU_ASSERT(mg_comm_all_ok(world, same));
    CU_ASSERT_EQUAL(c.step, 2 * N_STEPS);
    CU_ASSERT_EQUAL(c.minibatch, a.minibatch);
    mg_trainer_free(&a);
    mg_trainer_free(&c);
    mg_dataset_free(&ds);
    assert_no_open_hdf5();
}

static void test_resume_exact_sgd(void)
{
    check_resume_exact(make_config(sgd), "sgd with momentum ramp", "resume-sgd.h5");
}

static void test_resume_exact_adam(void)
{
    check_resume_exact(make_config(adam), "adam", "resume-adam.h5");
}

/* Batch norm's running averages resume too, and its synchronised statistics on 2 ranks. */
static void test_resume_exact_dcgan(void)
{
    check_resume_exact(mg_fixture_dcgan_config(100, NULL, 0), "DCGAN with batch norm",
                       "resume-dcgan.h5");
}

/* A conditional GAN resumes bit for bit too: its fake labels are a function of the step. */
static void test_resume_exact_conditional(void)
{
    check_resume_exact(make_config_with(sgd, MG_FIXTURE_G_LAYERS, mg_fixture_conditional("uniform"),
                                        MG_FIXTURE_CONDITIONAL_N),
                       "conditional GAN", "resume-conditional.h5");
}

/* A conditional G's samples: sample i of class i mod classes, and a draw of one class the rows of
 * that class of the same noise set (the noise and labels bit for bit; the images up to the
 * rounding of GEMMs of other row counts: OpenBLAS's edge kernels round a row by the row count,
 * a few float ulps of values in [0, 1]). On 1 and 2 ranks. */
static void test_sample_class(void)
{
    const mg_comm *world = mg_comm_world();
    mg_config cfg = make_config_with(sgd, MG_FIXTURE_G_LAYERS, mg_fixture_conditional("uniform"),
                                     MG_FIXTURE_CONDITIONAL_N);
    mg_dataset ds = mg_fixture_labeled_blobs(64);
    const char *path = mg_test_path("sample-class.h5");
    mg_trainer t;
    mg_fixture_trainer_ok(&t, &cfg, &ds, world);
    mg_fixture_train(&t, 5);
    write_on_rank0(&t, &cfg, path);
    enum { N = MG_GENERATE_CHUNK + 44, K = 4, CLS = 2, M = N / K };
    const size_t dim = (size_t)t.g.out_dim, nz = (size_t)cfg.generator.noise_dim;
    mg_net g;
    mg_error err;
    CU_ASSERT_FATAL(mg_generator_load(&g, &cfg, MG_GENERATE_CHUNK, path, world, &err) == 0);
    CU_ASSERT_EQUAL(g.in_dim, (int)nz + K);
    mg_real *x = malloc(N * dim * sizeof *x), *z = malloc(N * nz * sizeof *z);
    mg_real *xk = malloc(M * dim * sizeof *xk), *zk = malloc(M * nz * sizeof *zk);
    int32_t labels[N], lk[M];
    mg_generate_labeled(x, z, labels, &g, &cfg, N, 1, MG_ALL_CLASSES, world, 0);
    mg_generate_labeled(xk, zk, lk, &g, &cfg, M, 1, CLS, world, 0);
    if (t.rank == 0) {
        int bad_labels = 0, bad_z = 0;
        double dx = 0;
        for (int i = 0; i < N; i++)
            bad_labels += labels[i] != i % K;
        for (int j = 0; j < M; j++) {
            const int i = CLS + K * j;
            bad_labels += lk[j] != CLS;
            bad_z += memcmp(zk + j * nz, z + i * nz, nz * sizeof *z) != 0;
            dx = fmax(dx, mg_test_max_diff(xk + j * dim, x + i * dim, dim));
        }
        /* The trained G on the same input, in the trainer. */
        mg_real *mine = malloc(N * dim * sizeof *mine);
        mg_trainer_generate_labeled(&t, z, labels, N, mine);
        const double dt = mg_test_max_diff(mine, x, N * dim);
        printf("\n  conditional G on %d rank%s: class %d of %d samples vs every class: noise "
               "%s, max image difference %.3g; vs the trainer's G %.3g",
               mg_comm_size(world), mg_comm_size(world) == 1 ? "" : "s", CLS, N,
               bad_z ? "differs" : "the same", dx, dt);
        CU_ASSERT_EQUAL(bad_labels, 0);
        CU_ASSERT_EQUAL(bad_z, 0);
        CU_ASSERT(dx <= 1e-5);
        CU_ASSERT(dt <= 1e-5);
        /* Another class's rows are other images: the test can tell. */
        CU_ASSERT(mg_test_max_diff(xk, x + (CLS + 1) * dim, dim) > 1e-3);
        free(mine);
    }
    free(x);
    free(z);
    free(xk);
    free(zk);
    mg_net_free(&g);
    mg_trainer_free(&t);
    mg_dataset_free(&ds);
}

/* mpigan sample and eval: G loaded from a checkpoint on every rank normalises with the running
 * averages it was saved with (not a batch's statistics, not the initial 0 and 1), so the samples
 * are those of the trained G in evaluation mode, whichever rank drew them. */
static void test_sample_uses_running_averages(void)
{
    const mg_comm *world = mg_comm_world();
    mg_config cfg = mg_fixture_dcgan_config(100, NULL, 0);
    mg_dataset ds = mg_fixture_blobs(64);
    const char *path = mg_test_path("sample-dcgan.h5");
    mg_trainer t;
    mg_fixture_trainer_ok(&t, &cfg, &ds, world);
    mg_fixture_train(&t, 5);
    write_on_rank0(&t, &cfg, path);
    /* More than one chunk of rows, so that rank 1 draws some of them on 2 ranks. */
    enum { N = MG_GENERATE_CHUNK + 44 };
    const size_t dim = (size_t)t.g.out_dim, nz = (size_t)cfg.generator.noise_dim;
    mg_net g;
    mg_error err;
    CU_ASSERT_FATAL(mg_generator_load(&g, &cfg, MG_GENERATE_CHUNK, path, world, &err) == 0);
    CU_ASSERT(mg_comm_all_ok(world, same_reals(g.state, t.g.state, g.n_state)));
    mg_real *x = malloc(N * dim * sizeof *x), *z = malloc(N * nz * sizeof *z);
    mg_generate(x, z, &g, &cfg, N, 0, world, 0);
    if (t.rank == 0) {
        mg_real *zz = malloc(N * nz * sizeof *zz);
        mg_sample_noise(zz, &cfg, 0, N, 0);
        CU_ASSERT(memcmp(zz, z, N * nz * sizeof *z) == 0);
        /* The trained G, in evaluation mode and in a training pass, over as many rows as its
         * buffers hold at a time. */
        double d_eval = 0, d_batch = 0;
        const int rows = t.g.max_rows;
        uint64_t ids[MG_GENERATE_CHUNK];
        for (int i = 0; i < rows; i++)
            ids[i] = (uint64_t)i;
        const mg_dropout train_pass = {.key = {1, 2, 3}, .row_id = ids, .groups = 1};
        for (int i0 = 0; i0 < N; i0 += rows) {
            const int m = N - i0 < rows ? N - i0 : rows;
            const mg_real *eval = mg_net_forward(&t.g, zz + (size_t)i0 * nz, m, NULL);
            d_eval = fmax(d_eval, mg_test_max_diff(eval, x + (size_t)i0 * dim, m * dim));
        }
        /* (last: a training pass moves the running averages; on this rank alone, its batch
         * norms' sums stay here) */
        t.g.sum = NULL;
        const mg_real *batch = mg_net_forward(&t.g, zz, rows, &train_pass);
        d_batch = mg_test_max_diff(batch, x, rows * dim);
        printf("\n  DCGAN G sampled on %d rank%s: max difference to G in evaluation mode %.3g, "
               "to G with batch statistics %.3g",
               mg_comm_size(world), mg_comm_size(world) == 1 ? "" : "s", d_eval, d_batch);
        CU_ASSERT(d_eval <= 1e-6);
        CU_ASSERT(d_batch > 1e-3); /* batch statistics draw other pictures: this can fail */
        free(zz);
    }
    free(x);
    free(z);
    mg_net_free(&g);
    mg_trainer_free(&t);
    mg_dataset_free(&ds);
    assert_no_open_hdf5();
}

/* A run on one rank resumed on all of them (the batch stays global, so this is the same run). */
static void test_resume_across_rank_counts(void)
{
    const mg_comm *world = mg_comm_world();
    const int rank = mg_comm_rank(world);
    mg_dataset ds = mg_fixture_blobs(64);
    mg_config cfg = make_config(sgd);
    const char *path = mg_test_path("resume-ranks.h5");
    mg_trainer a, b;
    if (self) {
        mg_fixture_trainer_ok(&b, &cfg, &ds, self);
        mg_fixture_train(&b, N_STEPS);
        write_on_rank0(&b, &cfg, path);
        mg_trainer_free(&b);
    }
    mg_fixture_trainer_ok(&b, &cfg, &ds, world);
    load_on_rank0(&b, path);
    mg_fixture_train(&b, N_STEPS);
    mg_fixture_trainer_ok(&a, &cfg, &ds, world);
    mg_fixture_train(&a, 2 * N_STEPS);
    if (rank == 0) {
        /* As in test_train: summation order differs between rank counts, and 20 steps of SGD
         * with momentum amplify float rounding (FLT_EPSILON = 1.2e-7) by a few hundred at most. */
        const double tol = 1e-5;
        double eg = mg_test_max_rel_diff(a.g.params, b.g.params, NG);
        double ed = mg_test_max_rel_diff(a.d.params, b.d.params, ND);
        printf("\n  %d steps on 1 rank, then %d on %d: max relative difference to %d straight on "
               "%d: G %.3g, D %.3g (tolerance %.0e)",
               N_STEPS, N_STEPS, mg_comm_size(world), 2 * N_STEPS, mg_comm_size(world), eg, ed,
               tol);
        CU_ASSERT(eg <= tol && ed <= tol);
    }
    CU_ASSERT(mg_trainer_check_replicas(&b, &(mg_error){{0}}) == 0);
    mg_trainer_free(&a);
    mg_trainer_free(&b);
    mg_dataset_free(&ds);
    assert_no_open_hdf5();
}

/* Sharded updates (train.sharded_update): each rank keeps its part of the optimizer state, and
 * a checkpoint holds the whole of it, so it resumes bit for bit on the same ranks, and onto
 * another rank count (here one rank, replicated) as a replicated run's checkpoint would. */
static void test_resume_sharded(void)
{
    const mg_comm *world = mg_comm_world();
    const int rank = mg_comm_rank(world);
    const char *set[] = {"train.sharded_update=true", "train.overlap=false"};
    mg_config sharded = make_config_with(adam, MG_FIXTURE_G_LAYERS, set, 2);
    check_resume_exact(sharded, "adam, sharded update", "resume-sharded.h5");
    /* in buckets through MPI: this rank's part is a piece of every bucket */
    const char *buckets[] = {"train.sharded_update=true", "train.overlap=false",
                             "train.shared_allreduce=false", "train.bucket_mb=0.002"};
    check_resume_exact(make_config_with(adam, MG_FIXTURE_G_LAYERS, buckets, 4),
                       "adam, sharded update in buckets", "resume-buckets.h5");

    /* Written by the sharded run on every rank: the same file as a replicated run's there. */
    mg_dataset ds = mg_fixture_blobs(64);
    mg_config replicated = make_config_with(adam, MG_FIXTURE_G_LAYERS, &set[1], 1);
    const char *ps = mg_test_path("sharded.h5"), *pr = mg_test_path("replicated.h5");
    mg_trainer a, b;
    mg_fixture_trainer_ok(&a, &sharded, &ds, world);
    CU_ASSERT_EQUAL(a.sharded, mg_comm_size(world) > 1);
    mg_fixture_train(&a, N_STEPS);
    write_on_rank0(&a, &sharded, ps);
    mg_trainer_free(&a);
    mg_fixture_trainer_ok(&b, &replicated, &ds, world);
    mg_fixture_train(&b, N_STEPS);
    write_on_rank0(&b, &replicated, pr);
    if (rank == 0) {
        mg_trainer x, y;
        mg_fixture_trainer_ok(&x, &replicated, &ds, self);
        mg_fixture_trainer_ok(&y, &replicated, &ds, self);
        mg_error err;
        CU_ASSERT_FATAL(mg_fixture_load(&x, ps, &err) == 0 && mg_fixture_load(&y, pr, &err) == 0);
        state sy = take_state(&y);
        CU_ASSERT(same_state(&x, &sy));
        free_state(&sy);
        /* ... which one rank continues as it would the replicated run's */
        mg_fixture_train(&x, N_STEPS);
        mg_fixture_train(&y, N_STEPS);
        state sy2 = take_state(&y);
        CU_ASSERT(same_state(&x, &sy2));
        free_state(&sy2);
        mg_trainer_free(&x);
        mg_trainer_free(&y);
    }
    /* and a sharded run resumes a one-rank checkpoint: its parts from the whole */
    mg_trainer c;
    mg_fixture_trainer_ok(&c, &sharded, &ds, world);
    load_on_rank0(&c, pr);
    mg_fixture_train(&c, N_STEPS);
    mg_fixture_train(&b, N_STEPS);
    CU_ASSERT(mg_comm_all_ok(world, memcmp(b.g.params, c.g.params, NG * sizeof(mg_real)) == 0 &&
                                        memcmp(b.d.params, c.d.params, ND * sizeof(mg_real)) == 0));
    mg_trainer_free(&b);
    mg_trainer_free(&c);
    mg_dataset_free(&ds);
    assert_no_open_hdf5();
}

/* ---- what a checkpoint says about itself ---- */

static void test_info_and_config_text(void)
{
    if (!self)
        return;
    mg_dataset ds = mg_fixture_blobs(64);
    mg_config cfg = make_config(sgd);
    const char *path = mg_test_path("info.h5");
    mg_trainer t;
    mg_fixture_trainer_ok(&t, &cfg, &ds, self);
    mg_fixture_train(&t, 5);
    write_on_rank0(&t, &cfg, path);

    mg_checkpoint_info info;
    mg_error err;
    int rc = mg_checkpoint_read_info(&info, path, &err);
    if (rc)
        fprintf(stderr, "read_info: %s\n", err.msg);
    CU_ASSERT_FATAL(rc == 0);
    CU_ASSERT_EQUAL(info.format_version, MG_CHECKPOINT_VERSION);
    CU_ASSERT(info.mpigan_version[0] != '\0');
    CU_ASSERT_EQUAL(info.step, 5);
    CU_ASSERT_EQUAL(info.minibatch, 10);
    CU_ASSERT_EQUAL(info.epoch, 10.0 / 8);
    CU_ASSERT_EQUAL(info.seed, 5);
    CU_ASSERT_EQUAL(info.ranks, 1);

    /* The stored YAML parses to the very configuration the run had (compared as bytes, as ranks
     * compare configurations). */
    mg_config back;
    rc = mg_config_parse(&back, info.config_yaml, "stored.yaml", NULL, 0, &err);
    if (rc)
        fprintf(stderr, "stored config: %s\n", err.msg);
    CU_ASSERT_FATAL(rc == 0);
    CU_ASSERT(memcmp(&back.generator, &cfg.generator, sizeof cfg.generator) == 0);
    CU_ASSERT(memcmp(&back.discriminator, &cfg.discriminator, sizeof cfg.discriminator) == 0);
    CU_ASSERT(memcmp(&back.train, &cfg.train, sizeof cfg.train) == 0);
    CU_ASSERT_EQUAL(back.seed, cfg.seed);
    CU_ASSERT_STRING_EQUAL(back.discriminator.net.layers[0].name, "h0");
    mg_checkpoint_info_free(&info);
    CU_ASSERT(info.config_yaml == NULL);

    CU_ASSERT(mg_checkpoint_read_info(&info, mg_test_path("none.h5"), &err) == -1);
    char want[4400];
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", mg_test_path("none.h5"));
    CU_ASSERT_STRING_EQUAL(err.msg, want);
    CU_ASSERT(info.config_yaml == NULL);

    mg_trainer_free(&t);
    mg_dataset_free(&ds);
    assert_no_open_hdf5();
}

/* ---- bad files ---- */

/* Edits a copy of a good checkpoint with the HDF5 API. */
typedef void (*edit_fn)(hid_t f);

static const char *edited_copy(const char *good, const char *name, edit_fn edit)
{
    const char *path = mg_test_path(name);
    copy_file(path, good, -1);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    edit(f);
    CU_ASSERT_FATAL(H5Fclose(f) >= 0);
    return path;
}

static void set_root_string(hid_t f, const char *name, const char *value)
{
    CU_ASSERT_FATAL(H5Adelete(f, name) >= 0);
    hid_t type = H5Tcopy(H5T_C_S1), space = H5Screate(H5S_SCALAR);
    CU_ASSERT_FATAL(type >= 0 && space >= 0 && H5Tset_size(type, strlen(value) + 1) >= 0);
    hid_t a = H5Acreate2(f, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT_FATAL(a >= 0 && H5Awrite(a, type, value) >= 0);
    CU_ASSERT_FATAL(H5Aclose(a) >= 0 && H5Sclose(space) >= 0 && H5Tclose(type) >= 0);
}

static void edit_format(hid_t f)
{
    set_root_string(f, "format", "xyz"); /* fixed-length, as h5py writes numpy bytes */
}

static void edit_no_format(hid_t f)
{
    CU_ASSERT_FATAL(H5Adelete(f, "format") >= 0);
}

static void edit_version(hid_t f)
{
    hid_t a = H5Aopen(f, "format_version", H5P_DEFAULT);
    int seven = 7;
    CU_ASSERT_FATAL(a >= 0 && H5Awrite(a, H5T_NATIVE_INT, &seven) >= 0 && H5Aclose(a) >= 0);
}

static void edit_drop_w(hid_t f)
{
    CU_ASSERT_FATAL(H5Ldelete(f, "/generator/h1/W", H5P_DEFAULT) >= 0);
}

static void edit_drop_d_bias(hid_t f)
{
    CU_ASSERT_FATAL(H5Ldelete(f, "/discriminator/h2/b", H5P_DEFAULT) >= 0);
}

static void edit_drop_config(hid_t f)
{
    CU_ASSERT_FATAL(H5Ldelete(f, "/config", H5P_DEFAULT) >= 0);
}

static void edit_rename_layer(hid_t f)
{
    CU_ASSERT_FATAL(H5Lmove(f, "/generator/h1", f, "/generator/hx", H5P_DEFAULT, H5P_DEFAULT) >= 0);
}

/* /generator/h0/W (8, 24) in the other precision: float64 as the double build writes it (or
 * float32, testing the double build). */
static void edit_precision(hid_t f)
{
    CU_ASSERT_FATAL(H5Ldelete(f, "/generator/h0/W", H5P_DEFAULT) >= 0);
    hsize_t dims[2] = {8, 24};
    double w[8 * 24] = {0};
    hid_t space = H5Screate_simple(2, dims, NULL);
    hid_t other = sizeof(mg_real) == 4 ? H5T_IEEE_F64LE : H5T_IEEE_F32LE;
    hid_t d = H5Dcreate2(f, "/generator/h0/W", other, space, H5P_DEFAULT, H5P_DEFAULT,
                         H5P_DEFAULT);
    CU_ASSERT_FATAL(d >= 0 &&
                    H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, w) >= 0);
    CU_ASSERT_FATAL(H5Dclose(d) >= 0 && H5Sclose(space) >= 0);
}

/* h0/W of the right shape and type, never written: HDF5 would read zeros without an error. */
static void edit_unwritten(hid_t f)
{
    CU_ASSERT_FATAL(H5Ldelete(f, "/generator/h0/W", H5P_DEFAULT) >= 0);
    hsize_t dims[2] = {8, 24};
    hid_t space = H5Screate_simple(2, dims, NULL);
    hid_t same = sizeof(mg_real) == 4 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE;
    hid_t d = H5Dcreate2(f, "/generator/h0/W", same, space, H5P_DEFAULT, H5P_DEFAULT,
                         H5P_DEFAULT);
    CU_ASSERT_FATAL(d >= 0 && H5Dclose(d) >= 0 && H5Sclose(space) >= 0);
}

/* One NaN in /generator/h0/W (8, 24), written through HDF5 so every checksum is valid, and one
 * +Inf in D's SGD velocity: states no run may continue from. */
static void set_one(hid_t f, const char *name, hsize_t at, double value)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT), space = H5Dget_space(d);
    hsize_t start[2] = {at, 0}, one[2] = {1, 1};
    int rank = H5Sget_simple_extent_ndims(space);
    hid_t mem = H5Screate_simple(rank, one, NULL);
    CU_ASSERT_FATAL(H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, one, NULL) >= 0);
    CU_ASSERT_FATAL(H5Dwrite(d, H5T_NATIVE_DOUBLE, mem, space, H5P_DEFAULT, &value) >= 0);
    CU_ASSERT_FATAL(H5Sclose(mem) >= 0 && H5Sclose(space) >= 0 && H5Dclose(d) >= 0);
}

static void edit_nan_weight(hid_t f)
{
    set_one(f, "/generator/h0/W", 3, NAN);
}

static void edit_inf_velocity(hid_t f)
{
    set_one(f, "/discriminator/optimizer/m", 5, INFINITY);
}

/* Where the data of a dataset sits in the file (its one chunk). */
static long data_offset(const char *path, const char *name)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hsize_t origin[3] = {0, 0, 0}, size;
    haddr_t addr;
    unsigned mask;
    CU_ASSERT_FATAL(d >= 0 && H5Dget_chunk_info_by_coord(d, origin, &mask, &addr, &size) >= 0);
    CU_ASSERT_FATAL(H5Dclose(d) >= 0 && H5Fclose(f) >= 0);
    return (long)addr;
}

static void overwrite(const char *path, long offset, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "r+b");
    CU_ASSERT_FATAL(f && fseek(f, offset, SEEK_SET) == 0 && fwrite(bytes, 1, n, f) == n);
    CU_ASSERT_FATAL(fclose(f) == 0);
}

static void edit_vlen_format(hid_t f)
{
    CU_ASSERT_FATAL(H5Adelete(f, "format") >= 0);
    hid_t type = H5Tcopy(H5T_C_S1), space = H5Screate(H5S_SCALAR);
    CU_ASSERT_FATAL(type >= 0 && space >= 0 && H5Tset_size(type, H5T_VARIABLE) >= 0);
    const char *value = MG_CHECKPOINT_FORMAT;
    hid_t a = H5Acreate2(f, "format", type, space, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT_FATAL(a >= 0 && H5Awrite(a, type, &value) >= 0);
    CU_ASSERT_FATAL(H5Aclose(a) >= 0 && H5Sclose(space) >= 0 && H5Tclose(type) >= 0);
}

/* Load must fail with exactly `want` (NULL: any one line naming the file) and leave t as it was;
 * read_info and describe fail alike. */
static void expect_load_error(mg_trainer *t, const state *orig, const char *path, const char *want,
                              const char *what)
{
    mg_error err = {{0}};
    int rc = mg_fixture_load(t, path, &err);
    CU_ASSERT(rc == -1);
    if (want) {
        if (strcmp(err.msg, want) != 0)
            fprintf(stderr, "\n  %s:\n    got  %s\n    want %s\n", what, err.msg, want);
        CU_ASSERT_STRING_EQUAL(err.msg, want);
    } else {
        printf("\n  %s: %s", what, err.msg);
        CU_ASSERT(strncmp(err.msg, path, strlen(path)) == 0 && err.msg[strlen(path)] == ':');
        CU_ASSERT(strchr(err.msg, '\n') == NULL);
    }
    CU_ASSERT(same_state(t, orig)); /* a failed load changes nothing */
    assert_no_open_hdf5();
}

static void test_load_errors(void)
{
    if (!self)
        return;
    mg_dataset ds = mg_fixture_blobs(64);
    mg_config cfg = make_config(sgd);
    char good[4200], want[10000];
    snprintf(good, sizeof good, "%s", mg_test_path("good.h5"));
    mg_trainer t;
    mg_fixture_trainer_ok(&t, &cfg, &ds, self);
    mg_fixture_train(&t, 2);
    write_on_rank0(&t, &cfg, good);
    mg_trainer_free(&t);

    mg_fixture_trainer_ok(&t, &cfg, &ds, self); /* the trainer every bad load must leave alone */
    state orig = take_state(&t);

    const char *p = mg_test_path("missing.h5");
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", p);
    expect_load_error(&t, &orig, p, want, "missing file");

    p = mg_test_write_file("text.h5", "seed: 1\nthis is YAML, not HDF5\n", 31);
    snprintf(want, sizeof want, "%s: not an HDF5 file, or truncated", p);
    expect_load_error(&t, &orig, p, want, "text file");

    /* Issue 14, 7: a FIFO given to --resume or `mpigan info` blocked HDF5's open forever. */
    alarm(20);
    p = mg_test_path("fifo.h5");
    CU_ASSERT_FATAL(mkfifo(p, 0600) == 0);
    snprintf(want, sizeof want, "%s: not a regular file", p);
    expect_load_error(&t, &orig, p, want, "FIFO");
    mg_checkpoint_info fifo_info;
    mg_error fifo_err;
    CU_ASSERT(mg_checkpoint_read_info(&fifo_info, p, &fifo_err) == -1);
    CU_ASSERT_STRING_EQUAL(fifo_err.msg, want);
    CU_ASSERT(mg_checkpoint_describe(stdout, p, &fifo_err) == -1);
    CU_ASSERT_STRING_EQUAL(fifo_err.msg, want);
    char resolved[4200];
    CU_ASSERT(mg_checkpoint_resolve(resolved, sizeof resolved, p, NULL, &fifo_err) == 0);
    CU_ASSERT(mg_checkpoint_load_generator(&t.g, 0, resolved, &fifo_err) == -1);
    CU_ASSERT_STRING_EQUAL(fifo_err.msg, want);
    alarm(0);
    /* Issue 14, 6: a newline in the name is shown as '?'. */
    char nl[4200];
    snprintf(nl, sizeof nl, "%s/new\nline.h5", mg_test_tmpdir());
    snprintf(want, sizeof want, "%s/new?line.h5: cannot open: No such file or directory",
             mg_test_tmpdir());
    expect_load_error(&t, &orig, nl, want, "newline in the name");
    CU_ASSERT(mg_checkpoint_read_info(&fifo_info, nl, &fifo_err) == -1);
    CU_ASSERT_STRING_EQUAL(fifo_err.msg, want);

    p = edited_copy(good, "format.h5", edit_format);
    snprintf(want, sizeof want, "%s: not an mpigan checkpoint (format is \"xyz\")", p);
    expect_load_error(&t, &orig, p, want, "wrong format");

    p = edited_copy(good, "noformat.h5", edit_no_format);
    snprintf(want, sizeof want, "%s: not an mpigan checkpoint (no format attribute)", p);
    expect_load_error(&t, &orig, p, want, "no format");

    p = edited_copy(good, "version.h5", edit_version);
    snprintf(want, sizeof want, "%s: checkpoint format version 7, this mpigan reads version 1", p);
    expect_load_error(&t, &orig, p, want, "version");

    p = edited_copy(good, "nodataset.h5", edit_drop_w);
    snprintf(want, sizeof want, "%s: /generator/h1/W missing", p);
    expect_load_error(&t, &orig, p, want, "missing dataset");

    /* G reads completely before D fails: still nothing may reach the trainer. */
    p = edited_copy(good, "nodbias.h5", edit_drop_d_bias);
    snprintf(want, sizeof want, "%s: /discriminator/h2/b missing", p);
    expect_load_error(&t, &orig, p, want, "missing discriminator bias");

    p = edited_copy(good, "renamed.h5", edit_rename_layer);
    snprintf(want, sizeof want,
             "%s: generator layer 1 is \"h1\" in the configuration, \"hx\" in the checkpoint", p);
    expect_load_error(&t, &orig, p, want, "renamed layer");

    p = edited_copy(good, "precision.h5", edit_precision);
    snprintf(want, sizeof want,
             "%s: /generator/h0/W holds %d-bit floats, this build of mpigan uses %zu-bit floats", p,
             sizeof(mg_real) == 4 ? 64 : 32, 8 * sizeof(mg_real));
    expect_load_error(&t, &orig, p, want, "other precision");

    p = edited_copy(good, "unwritten.h5", edit_unwritten);
    snprintf(want, sizeof want,
             "%s: /generator/h0/W holds no data in this file (never written, or stored in other "
             "files)", p);
    expect_load_error(&t, &orig, p, want, "tensor never written");

    /* NaN and Inf in a file whose checksums all hold: never loaded, for a resume or a sample. */
    p = edited_copy(good, "nan.h5", edit_nan_weight);
    snprintf(want, sizeof want,
             "%s: /generator/h0/W holds NaN or Inf: not a state to continue from", p);
    expect_load_error(&t, &orig, p, want, "a NaN in G's weights");
    mg_net g;
    mg_error gerr;
    CU_ASSERT_FATAL(mg_net_init(&g, &cfg.generator.net, cfg.generator.noise_dim, 2, &gerr) == 0);
    CU_ASSERT(mg_checkpoint_load_generator(&g, 0, p, &gerr) == -1);
    CU_ASSERT_STRING_EQUAL(gerr.msg, want);
    mg_net_free(&g);
    p = edited_copy(good, "inf.h5", edit_inf_velocity);
    snprintf(want, sizeof want,
             "%s: /discriminator/optimizer/m holds NaN or Inf: not a state to continue from", p);
    expect_load_error(&t, &orig, p, want, "an Inf in D's velocity");

    /* h5py writes str attributes variable-length; mpigan reads only fixed-length ones. */
    p = edited_copy(good, "vlen.h5", edit_vlen_format);
    snprintf(want, sizeof want,
             "%s: attribute \"format\" of / is a variable-length string; mpigan reads "
             "fixed-length ones",
             p);
    expect_load_error(&t, &orig, p, want, "variable-length string");

    /* One flipped byte in the weights: the checksum catches it. */
    p = mg_test_path("flipped.h5");
    copy_file(p, good, -1);
    overwrite(p, data_offset(p, "/generator/h0/W") + 10, "\x5a", 1);
    snprintf(want, sizeof want, "%s: cannot read /generator/h0/W", p);
    expect_load_error(&t, &orig, p, want, "flipped byte");

    /* Truncated anywhere: some one-line error naming the file, never a crash. */
    const long size = file_size(good);
    const long cuts[] = {0, 100, size / 4, size / 2, 3 * size / 4, size - 1};
    for (int i = 0; i < 6; i++) {
        char name[64], what[64];
        snprintf(name, sizeof name, "cut-%ld.h5", cuts[i]);
        snprintf(what, sizeof what, "truncated to %ld of %ld bytes", cuts[i], size);
        p = mg_test_path(name);
        copy_file(p, good, cuts[i]);
        expect_load_error(&t, &orig, p, NULL, what);
        mg_checkpoint_info info;
        mg_error err;
        CU_ASSERT(mg_checkpoint_read_info(&info, p, &err) == -1);
        CU_ASSERT(strchr(err.msg, '\n') == NULL);
        assert_no_open_hdf5();
    }

    /* read_info and describe check the same things. */
    mg_checkpoint_info info;
    mg_error err;
    p = edited_copy(good, "noconfig.h5", edit_drop_config);
    CU_ASSERT(mg_checkpoint_read_info(&info, p, &err) == -1);
    snprintf(want, sizeof want, "%s: /config missing", p);
    CU_ASSERT_STRING_EQUAL(err.msg, want);
    p = mg_test_path("version.h5");
    CU_ASSERT(mg_checkpoint_read_info(&info, p, &err) == -1);
    snprintf(want, sizeof want, "%s: checkpoint format version 7, this mpigan reads version 1", p);
    CU_ASSERT_STRING_EQUAL(err.msg, want);

    free_state(&orig);
    mg_trainer_free(&t);
    mg_dataset_free(&ds);
    assert_no_open_hdf5();
}

/* 16 bytes of junk at offsets all over a good checkpoint: each load either fails with one line
 * naming the file and leaves the trainer alone, or gives exactly the saved state (the junk fell
 * where nothing is read). Never a crash, never other numbers: metadata and tensors carry
 * checksums. */
static void test_damaged_files(void)
{
    if (!self)
        return;
    mg_dataset ds = mg_fixture_blobs(64);
    mg_config cfg = make_config(adam);
    char good[4200], path[4200];
    snprintf(good, sizeof good, "%s", mg_test_path("damage-good.h5"));
    snprintf(path, sizeof path, "%s", mg_test_path("damaged.h5"));
    mg_trainer t;
    mg_fixture_trainer_ok(&t, &cfg, &ds, self);
    mg_fixture_train(&t, 2);
    write_on_rank0(&t, &cfg, good);
    state saved = take_state(&t);
    mg_trainer_free(&t);
    mg_fixture_trainer_ok(&t, &cfg, &ds, self);
    state fresh = take_state(&t);

    const long size = file_size(good), stride = 97; /* prime: every alignment of every field */
    mg_checkpoint_info info;
    mg_error err;
    CU_ASSERT_FATAL(mg_checkpoint_read_info(&info, good, &err) == 0);
    char *yaml = info.config_yaml; /* the text a damaged file must give back whole, or fail */
    int loaded = 0, failed = 0, other_numbers = 0, touched = 0, bad_message = 0, other_text = 0;
    for (long off = 0; off < size; off += stride) {
        unsigned char junk[16];
        for (int i = 0; i < 16; i++)
            junk[i] = (unsigned char)(off * 31 + i * 77);
        copy_file(path, good, -1);
        overwrite(path, off, junk, off + 16 <= size ? 16 : (size_t)(size - off));
        if (mg_checkpoint_read_info(&info, path, &err) == 0) {
            other_text += strcmp(info.config_yaml, yaml) != 0;
            mg_checkpoint_info_free(&info);
        }
        if (mg_fixture_load(&t, path, &err) == 0) {
            loaded++;
            other_numbers += !same_state(&t, &saved);
            mg_trainer_free(&t); /* back to the fresh trainer for the next file */
            mg_fixture_trainer_ok(&t, &cfg, &ds, self);
        } else {
            failed++;
            touched += !same_state(&t, &fresh);
            bad_message += strncmp(err.msg, path, strlen(path)) != 0 ||
                           err.msg[strlen(path)] != ':' || strchr(err.msg, '\n') != NULL;
        }
    }
    printf("\n  %ld damaged copies: %d loaded the saved state exactly, %d failed with one line; "
           "%d loaded other numbers, %d other configuration text, %d failed loads changed the "
           "trainer, %d bad messages",
           (size + stride - 1) / stride, loaded, failed, other_numbers, other_text, touched,
           bad_message);
    CU_ASSERT(failed > 0);
    CU_ASSERT_EQUAL(other_numbers, 0);
    CU_ASSERT_EQUAL(other_text, 0);
    CU_ASSERT_EQUAL(touched, 0);
    CU_ASSERT_EQUAL(bad_message, 0);
    free(yaml);
    free_state(&saved);
    free_state(&fresh);
    mg_trainer_free(&t);
    mg_dataset_free(&ds);
    assert_no_open_hdf5();
}

/* A good file that does not fit the configuration. */
static void expect_mismatch(const char *good, const mg_config *cfg, const mg_dataset *ds,
                            const char *want_after_path, const char *what)
{
    char want[10000];
    snprintf(want, sizeof want, "%s: %s", good, want_after_path);
    mg_trainer t;
    mg_fixture_trainer_ok(&t, cfg, ds, self);
    state orig = take_state(&t);
    expect_load_error(&t, &orig, good, want, what);
    free_state(&orig);
    mg_trainer_free(&t);
}

/* A conditional checkpoint in an unconditional configuration, and the reverse, and another class
 * count: refused with one line, before any tensor is read (whose shapes would differ too). */
static void test_conditional_mismatch(void)
{
    if (!self)
        return;
    mg_dataset ds = mg_fixture_labeled_blobs(64);
    const char *const *cond = mg_fixture_conditional("uniform");
    mg_config plain = make_config(sgd);
    mg_config conditional = make_config_with(sgd, MG_FIXTURE_G_LAYERS, cond,
                                             MG_FIXTURE_CONDITIONAL_N);
    char cpath[4200], ppath[4200];
    snprintf(cpath, sizeof cpath, "%s", mg_test_path("conditional.h5"));
    snprintf(ppath, sizeof ppath, "%s", mg_test_path("unconditional.h5"));
    mg_trainer t;
    mg_fixture_trainer_ok(&t, &conditional, &ds, self);
    write_on_rank0(&t, &conditional, cpath);
    mg_trainer_free(&t);
    mg_fixture_trainer_ok(&t, &plain, &ds, self);
    write_on_rank0(&t, &plain, ppath);
    mg_trainer_free(&t);

    mg_checkpoint_info info;
    mg_error err;
    CU_ASSERT_FATAL(mg_checkpoint_read_info(&info, cpath, &err) == 0);
    CU_ASSERT_STRING_EQUAL(info.kind, "gan");
    CU_ASSERT_EQUAL(info.classes, 4);
    mg_checkpoint_info_free(&info);
    CU_ASSERT_FATAL(mg_checkpoint_read_info(&info, ppath, &err) == 0);
    CU_ASSERT_EQUAL(info.classes, 0);
    mg_checkpoint_info_free(&info);

    expect_mismatch(cpath, &plain, &ds,
                    "the checkpoint's GAN is conditional on 4 classes, the configuration's is not "
                    "(conditional.enabled false)",
                    "conditional into unconditional");
    expect_mismatch(ppath, &conditional, &ds,
                    "the checkpoint's GAN is unconditional, the configuration's is conditional on "
                    "4 classes",
                    "unconditional into conditional");
    mg_dataset five = mg_fixture_labeled_blobs(64);
    five.classes = 5;
    const char *set[MG_FIXTURE_CONDITIONAL_N + 1];
    memcpy(set, cond, sizeof(char *) * MG_FIXTURE_CONDITIONAL_N);
    set[MG_FIXTURE_CONDITIONAL_N] = "data.classes=5";
    mg_config other = make_config_with(sgd, MG_FIXTURE_G_LAYERS, set, MG_FIXTURE_CONDITIONAL_N + 1);
    expect_mismatch(cpath, &other, &five,
                    "the checkpoint's GAN is conditional on 4 classes, the configuration's on 5",
                    "another class count");
    /* Sampling's load checks it too. */
    mg_net g;
    CU_ASSERT_FATAL(mg_net_init(&g, &plain.generator.net, 8, 4, &err) == 0);
    char want[4400];
    snprintf(want, sizeof want, "%s: the checkpoint's GAN is conditional on 4 classes, the "
             "configuration's is not (conditional.enabled false)", cpath);
    CU_ASSERT(mg_checkpoint_load_generator(&g, 0, cpath, &err) == -1);
    CU_ASSERT_STRING_EQUAL(err.msg, want);
    mg_net_free(&g);
    mg_dataset_free(&five);
    mg_dataset_free(&ds);
    assert_no_open_hdf5();
}

static void test_load_mismatch_errors(void)
{
    if (!self)
        return;
    mg_dataset ds = mg_fixture_blobs(64);
    mg_config cfg = make_config(sgd);
    char good[4200];
    snprintf(good, sizeof good, "%s", mg_test_path("good-mismatch.h5"));
    mg_trainer t;
    mg_fixture_trainer_ok(&t, &cfg, &ds, self);
    write_on_rank0(&t, &cfg, good);
    mg_trainer_free(&t);

    const char *wider = "generator.layers.0.units=20";
    mg_config c = make_config_with(sgd, MG_FIXTURE_G_LAYERS, &wider, 1);
    expect_mismatch(good, &c, &ds,
                    "/generator/h0/W has shape (8, 24) in the checkpoint, the configuration makes "
                    "it (8, 20)",
                    "hidden width");

    const char *pieces = "discriminator.layers.0.pieces=2";
    c = make_config_with(sgd, MG_FIXTURE_G_LAYERS, &pieces, 1);
    expect_mismatch(good, &c, &ds,
                    "/discriminator/h0/W has shape (36, 12, 3) in the checkpoint, the "
                    "configuration makes it (36, 12, 2)",
                    "maxout pieces");

    c = make_config_with(sgd,
                         "    - {type: relu, units: 24, irange: 0.3}\n"
                         "    - {type: relu, units: 24, irange: 0.3}\n"
                         "    - {type: sigmoid, units: 36, irange: 0.3}\n",
                         NULL, 0);
    expect_mismatch(good, &c, &ds, "the configuration has 3 generator layers, the checkpoint 2",
                    "layer count");

    c = make_config_with(sgd,
                         "    - {name: hidden, type: relu, units: 24, irange: 0.3}\n"
                         "    - {type: sigmoid, units: 36, irange: 0.3}\n",
                         NULL, 0);
    expect_mismatch(good, &c, &ds,
                    "generator layer 0 is \"hidden\" in the configuration, \"h0\" in the "
                    "checkpoint",
                    "layer name");

    c = make_config_with(sgd,
                         "    - {type: tanh, units: 24, irange: 0.3}\n"
                         "    - {type: sigmoid, units: 36, irange: 0.3}\n",
                         NULL, 0);
    expect_mismatch(good, &c, &ds,
                    "generator layer 0 (\"h0\") is tanh in the configuration, relu in the "
                    "checkpoint",
                    "layer type");

    const char *const g_adam[2] = {adam[0], sgd[1]};
    c = make_config(g_adam);
    expect_mismatch(good, &c, &ds,
                    "optimizer state for the generator is sgd, the configuration says adam",
                    "optimizer type");

    mg_dataset_free(&ds);
    assert_no_open_hdf5();
}

/* ---- failed writes leave what was there ---- */

/* Entries of path's directory named "<base of path>.tmp-*": temporaries left behind. */
static int temporaries(const char *path)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    CU_ASSERT_FATAL(slash != NULL);
    *slash = '\0';
    char prefix[512];
    snprintf(prefix, sizeof prefix, "%s.tmp-", slash + 1);
    DIR *d = opendir(dir);
    CU_ASSERT_FATAL(d != NULL);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

static void test_write_errors(void)
{
    if (!self)
        return;
    mg_dataset ds = mg_fixture_blobs(64);
    mg_config cfg = make_config(sgd);
    char *yaml = mg_fixture_yaml(&cfg);
    char want[10000], tmp[4400];
    mg_error err;
    mg_trainer t;
    mg_fixture_trainer_ok(&t, &cfg, &ds, self);
    mg_fixture_train(&t, 2);

    /* Root ignores permission bits, so the unwritable places are ones that cannot exist. */
    const char *p = mg_test_path("no-such-dir/ckpt.h5");
    CU_ASSERT(mg_fixture_write(&t, yaml, p, &err) == -1);
    snprintf(want, sizeof want, "%s: cannot write checkpoint: No such file or directory", p);
    CU_ASSERT_STRING_EQUAL(err.msg, want);

    mg_test_write_file("a-file", "x", 1);
    p = mg_test_path("a-file/ckpt.h5");
    CU_ASSERT(mg_fixture_write(&t, yaml, p, &err) == -1);
    snprintf(want, sizeof want, "%s: cannot write checkpoint: Not a directory", p);
    CU_ASSERT_STRING_EQUAL(err.msg, want);

    /* Parameters or optimizer state that are not finite are never written. */
    p = mg_test_path("nan-params.h5");
    const mg_real kept = t.g.params[3];
    t.g.params[3] = NAN;
    CU_ASSERT(mg_fixture_write(&t, yaml, p, &err) == -1);
    snprintf(want, sizeof want, "%s: not written: NaN or Inf in the generator's parameters", p);
    CU_ASSERT_STRING_EQUAL(err.msg, want);
    t.g.params[3] = kept;
    const mg_real kept_m = t.d_opt.m[0];
    t.d_opt.m[0] = -INFINITY;
    CU_ASSERT(mg_fixture_write(&t, yaml, p, &err) == -1);
    snprintf(want, sizeof want,
             "%s: not written: NaN or Inf in the discriminator's optimizer state", p);
    CU_ASSERT_STRING_EQUAL(err.msg, want);
    t.d_opt.m[0] = kept_m;
    CU_ASSERT(!file_exists(p));
    CU_ASSERT_EQUAL(temporaries(p), 0);

    /* A good checkpoint in place, then writes that fail: it stays, whole and loadable. */
    char target[4200];
    snprintf(target, sizeof target, "%s", mg_test_path("target.h5"));
    snprintf(tmp, sizeof tmp, "%s.tmp", target);
    CU_ASSERT_FATAL(mg_fixture_write(&t, yaml, target, &err) == 0);
    state written = take_state(&t);
    const long size = file_size(target);

    /* Failing halfway through the file: a layer whose name the schema reserves. The configuration
     * loader refuses that name; the writer still defends itself against a trainer built
     * otherwise. */
    mg_config bad = make_config_with(
        sgd,
        "    - {type: relu, units: 24, irange: 0.3}\n"
        "    - {name: out, type: sigmoid, units: 36, irange: 0.3}\n",
        NULL, 0);
    char *bad_yaml = mg_fixture_yaml(&bad);
    mg_trainer tb;
    mg_fixture_trainer_ok(&tb, &bad, &ds, self);
    snprintf(tb.g.layer[1].spec.name, sizeof tb.g.layer[1].spec.name, "optimizer");
    CU_ASSERT(mg_fixture_write(&tb, bad_yaml, target, &err) == -1);
    snprintf(want, sizeof want,
             "%s: cannot write checkpoint: generator layer 1 is named \"optimizer\", the name of "
             "the optimizer state: rename the layer",
             target);
    CU_ASSERT_STRING_EQUAL(err.msg, want);
    CU_ASSERT_EQUAL(temporaries(target), 0);
    mg_trainer_free(&tb);
    free(bad_yaml);

    /* What someone planted where the old writer put its temporary (a directory, a link to a file
     * of theirs) neither blocks the write nor is written through: the temporary is a fresh name,
     * created exclusively. */
    CU_ASSERT_FATAL(mkdir(tmp, 0700) == 0);
    const char *victim = mg_test_write_file("victim", "precious", 8);
    char planted[4400];
    snprintf(planted, sizeof planted, "%s.tmp-aaaaaa", target);
    CU_ASSERT_FATAL(symlink(victim, planted) == 0);
    CU_ASSERT(mg_fixture_write(&t, yaml, target, &err) == 0);
    CU_ASSERT_EQUAL(file_size(victim), 8);
    CU_ASSERT_FATAL(rmdir(tmp) == 0);
    CU_ASSERT_FATAL(unlink(planted) == 0);
    CU_ASSERT_EQUAL(temporaries(target), 0);

    CU_ASSERT_EQUAL(file_size(target), size);
    mg_trainer fresh;
    mg_fixture_trainer_ok(&fresh, &cfg, &ds, self);
    CU_ASSERT(mg_fixture_load(&fresh, target, &err) == 0);
    CU_ASSERT(same_state(&fresh, &written));
    mg_trainer_free(&fresh);

    free_state(&written);
    free(yaml);
    mg_trainer_free(&t);
    mg_dataset_free(&ds);
    assert_no_open_hdf5();
}

/* ---- run directories ---- */

static void test_save_and_rotation(void)
{
    if (!self)
        return;
    mg_dataset ds = mg_fixture_blobs(64);
    mg_config cfg = make_config(sgd);
    char *yaml = mg_fixture_yaml(&cfg);
    char dir[4200], path[4400], want[10000], link[4400], target[256];
    mg_error err;
    snprintf(dir, sizeof dir, "%s/run", mg_test_tmpdir());
    CU_ASSERT_FATAL(mkdir(dir, 0700) == 0);

    CU_ASSERT(mg_checkpoint_find_latest(path, sizeof path, dir, &err) == -1);
    snprintf(want, sizeof want, "%s: no checkpoint (ckpt-*.h5) in this directory", dir);
    CU_ASSERT_STRING_EQUAL(err.msg, want);

    mg_trainer t;
    mg_fixture_trainer_ok(&t, &cfg, &ds, self);
    /* Something else in the directory that looks almost like a checkpoint must survive. */
    FILE *f = fopen(strcat(strcpy(path, dir), "/ckpt-notes.h5"), "w");
    CU_ASSERT_FATAL(f && fclose(f) == 0);
    for (int i = 1; i <= 4; i++) {
        mg_fixture_train(&t, 1);
        char out[4400];
        CU_ASSERT_FATAL(mg_fixture_save(&t, yaml, dir, 2, out, sizeof out, &err) == 0);
        snprintf(want, sizeof want, "%s/ckpt-%08d.h5", dir, i);
        CU_ASSERT_STRING_EQUAL(out, want);
    }
    for (int i = 1; i <= 4; i++) {
        snprintf(path, sizeof path, "%s/ckpt-%08d.h5", dir, i);
        CU_ASSERT_EQUAL(file_exists(path), i >= 3); /* the newest 2 */
    }
    snprintf(path, sizeof path, "%s/ckpt-notes.h5", dir);
    CU_ASSERT(file_exists(path));
    snprintf(path, sizeof path, "%s/latest.h5.tmp", dir);
    CU_ASSERT(!file_exists(path));

    snprintf(link, sizeof link, "%s/latest.h5", dir);
    ssize_t n = readlink(link, target, sizeof target - 1);
    CU_ASSERT_FATAL(n > 0);
    target[n] = '\0';
    CU_ASSERT_STRING_EQUAL(target, "ckpt-00000004.h5");

    CU_ASSERT(mg_checkpoint_find_latest(path, sizeof path, dir, &err) == 0);
    snprintf(want, sizeof want, "%s/ckpt-00000004.h5", dir);
    CU_ASSERT_STRING_EQUAL(path, want);

    /* latest.h5 loads like the file it names. */
    state s = take_state(&t);
    mg_trainer fresh;
    mg_fixture_trainer_ok(&fresh, &cfg, &ds, self);
    CU_ASSERT(mg_fixture_load(&fresh, link, &err) == 0);
    CU_ASSERT(same_state(&fresh, &s));
    mg_trainer_free(&fresh);
    free_state(&s);

    CU_ASSERT(mg_fixture_save(&t, yaml, dir, 0, NULL, 0, &err) == -1);
    snprintf(want, sizeof want, "%s: cannot keep 0 checkpoints: keep at least 1", dir);
    CU_ASSERT_STRING_EQUAL(err.msg, want);
    snprintf(path, sizeof path, "%s/gone", dir);
    CU_ASSERT(mg_checkpoint_find_latest(link, sizeof link, path, &err) == -1);
    snprintf(want, sizeof want, "%s: cannot read directory: No such file or directory", path);
    CU_ASSERT_STRING_EQUAL(err.msg, want);

    free(yaml);
    mg_trainer_free(&t);
    mg_dataset_free(&ds);
    assert_no_open_hdf5();
}

/* ---- describe, and h5dump agrees the file is well-formed ---- */

static int contains(const char *text, const char *line)
{
    if (strstr(text, line))
        return 1;
    fprintf(stderr, "\n  missing from the description: \"%s\"\n", line);
    return 0;
}

static void test_describe(void)
{
    if (!self)
        return;
    const char *const g_adam[2] = {adam[0], sgd[1]};
    mg_dataset ds = mg_fixture_blobs(64);
    mg_config cfg = make_config(g_adam);
    const char *path = mg_test_path("describe.h5");
    mg_trainer t;
    mg_fixture_trainer_ok(&t, &cfg, &ds, self);
    mg_fixture_train(&t, 3);
    write_on_rank0(&t, &cfg, path);

    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    mg_error err;
    CU_ASSERT_FATAL(f != NULL);
    int rc = mg_checkpoint_describe(f, path, &err);
    CU_ASSERT_FATAL(fclose(f) == 0);
    if (rc)
        fprintf(stderr, "describe: %s\n", err.msg);
    CU_ASSERT_FATAL(rc == 0);
    printf("\n%s", text);
    char line[4400];
    snprintf(line, sizeof line, "file            %s\n", path);
    CU_ASSERT(contains(text, line));
    CU_ASSERT(contains(text, "step            3\n"));
    CU_ASSERT(contains(text, "minibatch       6\n"));
    CU_ASSERT(contains(text, "seed            5\n"));
    CU_ASSERT(contains(text, "batch           8\n"));
    const char *R = sizeof(mg_real) == 4 ? "float32" : "float64"; /* as the build writes */
    snprintf(line, sizeof line,
             "generator: 2 layers, %d parameters, optimizer adam after 3 updates\n"
             "  h0: relu, 24 units\n"
             "  h0/W  %s (8, 24)\n"
             "  h0/b  %s (24)\n",
             NG, R, R);
    CU_ASSERT(contains(text, line));
    snprintf(line, sizeof line, "  optimizer/m  %s (%d)\n  optimizer/v  %s (%d)\n", R, NG, R,
             NG);
    CU_ASSERT(contains(text, line));
    snprintf(line, sizeof line,
             "discriminator: 3 layers, %d parameters, optimizer sgd after 6 updates\n"
             "  h0: maxout, 12 units of 3 pieces\n"
             "  h0/W  %s (36, 12, 3)\n"
             "  h0/b  %s (12, 3)\n"
             "  h1: tanh, 10 units\n"
             "  h1/W  %s (12, 10)\n",
             ND, R, R, R);
    CU_ASSERT(contains(text, line));
    snprintf(line, sizeof line,
             "  h2/W  %s (10, 1)\n  h2/b  %s (1)\n  optimizer/m  %s (%d)\nconfig: ",
             R, R, R, ND);
    CU_ASSERT(contains(text, line)); /* sgd: no v */
    free(text);

    /* A bad file: the error, and not a byte of description. */
    const char *bad = mg_test_write_file("describe-bad.h5", "not HDF5", 8);
    text = NULL;
    f = open_memstream(&text, &n);
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT(mg_checkpoint_describe(f, bad, &err) == -1);
    CU_ASSERT_FATAL(fclose(f) == 0);
    CU_ASSERT_EQUAL(n, 0);
    free(text);
    snprintf(line, sizeof line, "%s: not an HDF5 file, or truncated", bad);
    CU_ASSERT_STRING_EQUAL(err.msg, line);

    if (access("/usr/bin/h5dump", X_OK) == 0) {
        char cmd[4500];
        snprintf(cmd, sizeof cmd, "/usr/bin/h5dump -H '%s' > /dev/null", path);
        CU_ASSERT(system(cmd) == 0);
        snprintf(cmd, sizeof cmd, "/usr/bin/h5dump -d /config '%s' | grep -q 'noise_dim: 8'",
                 path);
        CU_ASSERT(system(cmd) == 0);
    } else {
        printf("\n  note: /usr/bin/h5dump not installed (apt-get install hdf5-tools): skipped");
    }

    mg_trainer_free(&t);
    mg_dataset_free(&ds);
    assert_no_open_hdf5();
}

/* ---- the paper's model: size and time of a checkpoint ---- */

static double seconds(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv.tv_sec + 1e-6 * tv.tv_usec;
}

static void test_paper_model(void)
{
    if (!self)
        return;
    const char *src = getenv("MPIGAN_SOURCE_DIR");
    char cfg_path[4200];
    snprintf(cfg_path, sizeof cfg_path, "%s/configs/fashion-mnist.yaml", src ? src : ".");
    if (access(cfg_path, R_OK) != 0) {
        printf("\n  note: %s not found (set MPIGAN_SOURCE_DIR): skipped", cfg_path);
        return;
    }
    char set0[4300];
    snprintf(set0, sizeof set0, "data.train_images=%s", mg_test_write_file("dummy.idx", "x", 1));
    const char *set[2] = {set0, "data.test_images="};
    mg_config cfg;
    mg_error err;
    int rc = mg_config_load(&cfg, cfg_path, set, 2, &err);
    if (rc)
        fprintf(stderr, "config: %s\n", err.msg);
    CU_ASSERT_FATAL(rc == 0);
    mg_dataset ds;
    CU_ASSERT_FATAL(mg_dataset_alloc(&ds, cfg.train.batch_size, 1, 28, 28, &err) == 0);
    for (size_t i = 0; i < (size_t)ds.n * ds.dim; i++)
        ds.x[i] = (mg_real)((i * 7919) % 256) / 255;
    mg_trainer t, back;
    mg_fixture_trainer_ok(&t, &cfg, &ds, self);
    for (size_t i = 0; i < t.g_opt.n; i++) /* momentum buffers worth storing */
        t.g_opt.m[i] = t.g.params[i] * (mg_real)1e-3;
    char *yaml = mg_fixture_yaml(&cfg);
    const char *path = mg_test_path("paper.h5");
    double t0 = seconds();
    CU_ASSERT_FATAL(mg_fixture_write(&t, yaml, path, &err) == 0);
    mg_fixture_trainer_ok(&back, &cfg, &ds, self);
    double t1 = seconds();
    CU_ASSERT_FATAL(mg_fixture_load(&back, path, &err) == 0);
    double t2 = seconds();
    state s = take_state(&t);
    CU_ASSERT(same_state(&back, &s));
    const size_t n = t.g.n_params + t.d.n_params;
    const long size = file_size(path);
    printf("\n  paper model: G %zu + D %zu parameters; checkpoint %.1f MB (%.3f bytes per "
           "parameter with momentum), written in %.3f s (with fsync), loaded in %.3f s",
           t.g.n_params, t.d.n_params, size / 1e6, (double)size / n, t1 - t0, t2 - t1);
    /* params + momentum, and some kB of metadata */
    const long tensors = (long)(2 * sizeof(mg_real) * n);
    CU_ASSERT(size >= tensors && size < tensors + 200000);
    free_state(&s);
    free(yaml);
    mg_trainer_free(&t);
    mg_trainer_free(&back);
    mg_dataset_free(&ds);
    assert_no_open_hdf5();
}

int main(int argc, char **argv)
{
    mg_comm_init(&argc, &argv);
    self = mg_comm_split(mg_comm_world(), mg_comm_rank(mg_comm_world()) == 0 ? 0 : -1);
    static const mg_test tests[] = {
        {"round_trip_sgd", test_round_trip_sgd},
        {"round_trip_adam", test_round_trip_adam},
        {"round_trip_dcgan", test_round_trip_dcgan},
        {"resume_exact_sgd", test_resume_exact_sgd},
        {"resume_exact_adam", test_resume_exact_adam},
        {"resume_exact_dcgan", test_resume_exact_dcgan},
        {"sample_uses_running_averages", test_sample_uses_running_averages},
        {"resume_sharded", test_resume_sharded},
        {"resume_exact_conditional", test_resume_exact_conditional},
        {"sample_class", test_sample_class},
        {"conditional_mismatch", test_conditional_mismatch},
        {"resume_across_rank_counts", test_resume_across_rank_counts},
        {"info_and_config_text", test_info_and_config_text},
        {"load_errors", test_load_errors},
        {"load_mismatch_errors", test_load_mismatch_errors},
        {"damaged_files", test_damaged_files},
        {"write_errors", test_write_errors},
        {"save_and_rotation", test_save_and_rotation},
        {"describe", test_describe},
        {"paper_model", test_paper_model},
        {NULL, NULL},
    };
    int rc = mg_test_main("checkpoint", tests, argc, argv);
    int all_ok = mg_comm_all_ok(mg_comm_world(), rc == 0);
    mg_comm_free(self);
    mg_comm_finalize();
    return all_ok ? rc : (rc ? rc : 1);
}
