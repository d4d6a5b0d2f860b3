/* Data parallelism, run under mpiexec with 1, 2 or 4 ranks.
 *
 * The central property: with the same seed and global batch, training on N ranks computes what
 * training on one rank computes, up to float summation order. Each test trains on the whole job,
 * on its first two ranks and on rank 0 alone (sub-communicators of one job), then compares. */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mpigan/comm.h"
#include "mpigan/config.h"
#include "mpigan/dataset.h"
#include "mpigan/splits.h"
#include "mpigan/rng.h"
#include "mpigan/train.h"
#include "fixtures.h"
#include "helpers.h"
#include "testlib.h"

#define STEPS 20


/* The test model, with "key=value" overrides as --set would apply them. */
static const char *const *const paper_sgd = mg_fixture_sgd;

static mg_config make_config_full(const char *const optim[2], const char *const *set, int n_set)
{
    return mg_fixture_config(optim, MG_FIXTURE_G_LAYERS_DROPOUT, STEPS, set, n_set);
}

static mg_config make_config(const char *set)
{
    return make_config_full(paper_sgd, set ? &set : NULL, set ? 1 : 0);
}

/* Trains STEPS steps on comm; on its rank 0 copies G's and D's parameters into g, d. */
static void train_with(const mg_comm *comm, const mg_config *cfg, const mg_dataset *ds,
                       mg_gemm_fn gemm, mg_real *g, mg_real *d, double *d_loss)
{
    mg_trainer t;
    mg_error err;
    int rc = mg_fixture_trainer(&t, cfg, ds, comm, &err);
    if (rc)
        fprintf(stderr, "trainer: %s\n", err.msg);
    CU_ASSERT_FATAL(rc == 0);
    t.g.gemm = t.d.gemm = gemm;
    /* The sums are those asked for (a window is always to be had on this one node). */
    if (mg_comm_size(comm) > 1) {
        CU_ASSERT_EQUAL(mg_reducer_shared(t.d_sum), cfg->train.shared_allreduce);
        /* and so are the update and the buckets, which choose the kind of step */
        CU_ASSERT_EQUAL(t.sharded, cfg->train.sharded_update);
        const int nodes = cfg->train.node_ranks > 0 && cfg->train.node_ranks < mg_comm_size(comm);
        if ((!cfg->train.shared_allreduce || nodes) && cfg->train.bucket_mb != MG_BUCKETS_AUTO)
            CU_ASSERT_EQUAL(t.bucketed, cfg->train.bucket_mb > 0);
    }
    /* gathers prefetched: with a sharded update, MPI sums in buckets (also shared sums between
     * nodes) and train.overlap (the test networks have no max column norms) */
    CU_ASSERT_EQUAL(t.prefetch != 0, t.sharded && t.bucketed && cfg->train.overlap);
    const int simultaneous = cfg->train.mode == MG_MODE_SIMULTANEOUS;
    mg_step_stats s = {0};
    int in_flight = 0; /* steps that left G's gather to the next one */
    for (int i = 0; i < STEPS; i++) {
        mg_trainer_step(&t, &s);
        CU_ASSERT(isfinite(s.d_loss) && isfinite(s.g_loss));
        CU_ASSERT(simultaneous || (t.gathering & MG_NET_D) == 0);
        in_flight += (t.gathering & MG_NET_G) != 0;
    }
    CU_ASSERT_EQUAL(in_flight, t.prefetch & MG_NET_G ? STEPS : 0);
    CU_ASSERT_EQUAL(t.step, STEPS);
    CU_ASSERT(mg_trainer_check_replicas(&t, &err) == 0);
    if (mg_comm_rank(comm) == 0) {
        memcpy(g, t.g.params, t.g.n_params * sizeof *g);
        memcpy(d, t.d.params, t.d.n_params * sizeof *d);
        *d_loss = s.d_loss;
    }
    mg_trainer_free(&t);
}

static void train_on(const mg_comm *comm, const mg_config *cfg, const mg_dataset *ds, mg_real *g,
                     mg_real *d, double *d_loss)
{
    train_with(comm, cfg, ds, mg_gemm_blas, g, d, d_loss);
}

/* Sizes of the test networks: G 8*24+24 + 24*36+36, D 36*36+36 + 12*10+10 + 10+1. */
enum { NG = 8 * 24 + 24 + 24 * 36 + 36, ND = 36 * 36 + 36 + 12 * 10 + 10 + 10 + 1 };

static void check_invariance(const char *const optim[2], const char *const *set, int n_set,
                             const char *what)
{
    const mg_comm *world = mg_comm_world();
    const int rank = mg_comm_rank(world), size = mg_comm_size(world);
    mg_dataset ds = mg_fixture_blobs(64);
    mg_config cfg = make_config_full(optim, set, n_set);
    static mg_real g[3][NG], d[3][ND];
    double loss[3];
    const int sizes[3] = {size, size >= 2 ? 2 : 1, 1};

    for (int v = 0; v < 3; v++) {
        mg_comm *sub = mg_comm_split(world, rank < sizes[v] ? 0 : -1);
        if (sub) {
            train_on(sub, &cfg, &ds, g[v], d[v], &loss[v]);
            mg_comm_free(sub);
        }
    }
    mg_comm *self = mg_comm_split(world, rank == 0 ? 0 : -1);
    if (rank == 0) {
        /* Summation order differs between rank counts; 20 steps of SGD with momentum amplify
         * float rounding (FLT_EPSILON = 1.2e-7) by a few hundred at most here. */
        const double tol = 1e-5;
        for (int v = 0; v < 2; v++) {
            double eg = mg_test_max_rel_diff(g[2], g[v], NG), ed = mg_test_max_rel_diff(d[2], d[v], ND);
            printf("\n  %s: %d ranks vs 1: max relative difference G %.3g, D %.3g (tolerance %.0e); "
                   "final D loss %.6f vs %.6f",
                   what, sizes[v], eg, ed, tol, loss[v], loss[2]);
            CU_ASSERT(eg <= tol && ed <= tol);
        }
        /* Training moved the parameters: the comparison is not between two initialisations. */
        mg_trainer t0;
        mg_error err;
        CU_ASSERT_FATAL(mg_fixture_trainer(&t0, &cfg, &ds, self, &err) == 0);
        CU_ASSERT(mg_test_max_rel_diff(t0.d.params, d[2], ND) > 1e-3);
        mg_trainer_free(&t0);
        mg_comm_free(self);
    } else {
        CU_ASSERT(self == NULL);
    }
    mg_dataset_free(&ds);
}

static void test_invariance_alternating(void)
{
    check_invariance(paper_sgd, NULL, 0, "alternating, k 2, sgd, non-saturating");
}

static void test_invariance_simultaneous_adam_minimax(void)
{
    static const char *const set[] = {
        "train.mode=simultaneous", "train.generator_loss=minimax", "generator.prior=normal"};
    check_invariance(mg_fixture_adam, set, 3, "simultaneous, minimax, adam, normal prior");
}

/* Trains STEPS steps on comm; on its rank 0 returns G's and D's parameters, then their batch
 * norms' running averages, in one malloc'd vector of *n values (NULL elsewhere). */
static mg_real *train_packed(const mg_comm *comm, const mg_config *cfg, const mg_dataset *ds,
                             size_t *n)
{
    mg_trainer t;
    mg_error err;
    int rc = mg_fixture_trainer(&t, cfg, ds, comm, &err);
    if (rc)
        fprintf(stderr, "trainer: %s\n", err.msg);
    CU_ASSERT_FATAL(rc == 0);
    mg_step_stats s = {0};
    for (int i = 0; i < STEPS; i++) {
        mg_trainer_step(&t, &s);
        CU_ASSERT(isfinite(s.d_loss) && isfinite(s.g_loss));
    }
    CU_ASSERT(mg_trainer_check_replicas(&t, &err) == 0);
    mg_real *all = NULL;
    *n = t.g.n_params + t.d.n_params + t.g.n_state + t.d.n_state;
    if (mg_comm_rank(comm) == 0) {
        all = malloc(*n * sizeof *all);
        mg_real *p = all;
        const mg_real *parts[4] = {t.g.params, t.d.params, t.g.state, t.d.state};
        const size_t sizes[4] = {t.g.n_params, t.d.n_params, t.g.n_state, t.d.n_state};
        for (int k = 0; k < 4; k++) {
            memcpy(p, parts[k], sizes[k] * sizeof *p);
            p += sizes[k];
        }
    }
    mg_trainer_free(&t);
    return all;
}

/* Trains STEPS steps on comm and packs, on rank 0, everything a checkpoint holds of the nets:
 * parameters, running averages and the optimizers' whole state (gathered from every rank's part
 * with a sharded update). */
static mg_real *train_whole(const mg_comm *comm, const mg_config *cfg, const mg_dataset *ds,
                            size_t *n, size_t *opt_n)
{
    mg_trainer t;
    mg_error err;
    int rc = mg_fixture_trainer(&t, cfg, ds, comm, &err);
    if (rc)
        fprintf(stderr, "trainer: %s\n", err.msg);
    CU_ASSERT_FATAL(rc == 0);
    mg_step_stats s = {0};
    for (int i = 0; i < STEPS; i++)
        mg_trainer_step(&t, &s);
    CU_ASSERT(mg_trainer_check_replicas(&t, &err) == 0);
    *opt_n = t.g_opt.n + t.d_opt.n;
    mg_optim *g, *d;
    mg_trainer_whole_optims(&t, 0, &g, &d);
    mg_real *all = NULL;
    if (mg_comm_rank(comm) == 0) {
        const mg_real *parts[8] = {t.g.params, t.d.params, t.g.state, t.d.state,
                                   g->m,       d->m,       g->v,       d->v};
        const size_t sizes[8] = {t.g.n_params, t.d.n_params, t.g.n_state, t.d.n_state,
                                 g->n,         d->n,         g->v ? g->n : 0, d->v ? d->n : 0};
        *n = 0;
        for (int k = 0; k < 8; k++)
            *n += sizes[k];
        all = malloc(*n * sizeof *all);
        mg_real *p = all;
        for (int k = 0; k < 8; k++) {
            if (sizes[k])
                memcpy(p, parts[k], sizes[k] * sizeof *p);
            p += sizes[k];
        }
        CU_ASSERT(g->t == t.g_opt.t && d->t == t.d_opt.t);
    }
    mg_trainer_whole_optims_end(&t);
    mg_trainer_free(&t);
    return all;
}

/* A sharded update (ZeRO stage 1) computes what the replicated one does, bit for bit: the same
 * sums, the same per-value updates; each rank keeps about 1 / R of the optimizer state. So do
 * sums through MPI in buckets started during the backward pass (train.bucket_mb: 0.002 MB cuts
 * the test nets into several) against the ring after it, where the order of the additions
 * cannot differ (2 ranks); with more ranks MPI's own reduction order may differ from the ring's,
 * and the runs agree within the rank-count tolerance. */
static void check_sharded(mg_config cfg, const char *what)
{
    const mg_comm *world = mg_comm_world();
    const int size = mg_comm_size(world);
    if (size < 2)
        return;
    mg_dataset ds = mg_fixture_blobs(64);
    cfg.train.overlap = 0; /* the overlapped step runs G a phase at a time: other BLAS rounding */
    static const struct {
        int shared, node_ranks;
        double bucket_mb;
        const char *sums;
    } sums[] = {{1, 0, 25, "shared sums"},
                {0, 0, 0, "MPI sums (ring)"},
                {0, 0, 0.002, "MPI sums in buckets"},
                /* 2 nodes of 2: each node's sums, then its chunks between the nodes in buckets,
                 * against the node sums and the ring between nodes after the pass */
                {1, 2, 0.002, "2 nodes of 2, shared sums, buckets between them"}};
    for (size_t v = 0; v < sizeof sums / sizeof *sums; v++) {
        if (sums[v].node_ranks && size != 4)
            continue;
        cfg.train.shared_allreduce = sums[v].shared;
        cfg.train.node_ranks = sums[v].node_ranks;
        size_t n[3] = {0, 0, 0}, opt_n[3];
        mg_real *got[3];
        cfg.train.bucket_mb = 0; /* the reference: replicated, the ring after the pass */
        cfg.train.sharded_update = 0;
        got[2] = train_whole(world, &cfg, &ds, &n[2], &opt_n[2]);
        cfg.train.bucket_mb = sums[v].bucket_mb;
        for (int sharded = 0; sharded < 2; sharded++) {
            cfg.train.sharded_update = sharded;
            got[sharded] = train_whole(world, &cfg, &ds, &n[sharded], &opt_n[sharded]);
        }
        if (mg_comm_rank(world) == 0) {
            CU_ASSERT_FATAL(n[0] == n[2] && n[1] == n[2]);
            /* (2 nodes: a + b = b + a between them too) */
            const int exact = sums[v].shared || size == 2;
            for (int sharded = 0; sharded < 2; sharded++) {
                const double e = mg_test_max_rel_diff(got[2], got[sharded], n[2]);
                printf("\n  %s, %s on %d ranks, %s: max relative difference %.3g to replicated "
                       "with the ring (%zu values); optimizer state on rank 0: %zu of %zu values",
                       what, sums[v].sums, size, sharded ? "sharded" : "replicated", e, n[2],
                       opt_n[sharded], opt_n[2]);
                if (exact) {
                    CU_ASSERT(memcmp(got[2], got[sharded], n[2] * sizeof(mg_real)) == 0);
                } else {
                    CU_ASSERT(e <= 1e-5);
                }
            }
            /* about 1 / R: parts are cut on 16-value lines (in every bucket) */
            CU_ASSERT(opt_n[1] <= opt_n[2] / size + 64 * (MG_MAX_LAYERS + 1));
        }
        for (int i = 0; i < 3; i++)
            free(got[i]);
    }
    mg_dataset_free(&ds);
}

/* Gradients in bfloat16 through MPI (train.gradient_dtype: bf16, here between all ranks, as
 * with nodes of one rank): a run trains as without, D(x) and D(G(z)) moving the same way, its
 * parameters within the rounding of a few steps of it; and not bit for bit (the test can fail). */
static void test_bf16_trains(void)
{
    const mg_comm *world = mg_comm_world();
    if (mg_comm_size(world) < 2)
        return;
    mg_dataset ds = mg_fixture_blobs(64);
    const char *set[] = {"train.shared_allreduce=false", "train.overlap=false", ""};
    mg_step_stats last[3];
    mg_real *params[3];
    size_t n = 0;
    const char *dtype[3] = {"train.gradient_dtype=float32", "train.gradient_dtype=bf16",
                            "train.error_feedback=false"};
    for (int v = 0; v < 3; v++) {
        const char *sets[4] = {set[0], set[1], v ? "train.gradient_dtype=bf16" : dtype[0],
                               v == 2 ? dtype[2] : "train.error_feedback=true"};
        mg_config cfg = make_config_full(paper_sgd, sets, 4);
        CU_ASSERT_EQUAL(cfg.train.gradient_bf16, v > 0);
        mg_trainer t;
        mg_error err;
        CU_ASSERT_FATAL(mg_fixture_trainer(&t, &cfg, &ds, world, &err) == 0);
        mg_step_stats s = {0}, first = {0};
        for (int i = 0; i < STEPS; i++) {
            mg_trainer_step(&t, &s);
            if (i == 0)
                first = s;
            CU_ASSERT(s.nonfinite == 0 && s.bad_params == 0);
        }
        CU_ASSERT(mg_trainer_check_replicas(&t, &err) == 0);
        CU_ASSERT(fabs(s.d_real - first.d_real) > 0.01); /* D learns */
        last[v] = s;
        n = t.g.n_params;
        params[v] = malloc(n * sizeof(mg_real));
        memcpy(params[v], t.g.params, n * sizeof(mg_real));
        mg_trainer_free(&t);
    }
    if (mg_comm_rank(world) == 0) {
        for (int v = 1; v < 3; v++) {
            const double e = mg_test_max_rel_diff(params[0], params[v], n);
            printf("\n  bf16 gradients%s, %d steps on %d ranks: D(x) %.4f (float %.4f), D(G(z)) "
                   "%.4f (%.4f); G's parameters within %.3g relative of float's",
                   v == 2 ? " without error feedback" : "", STEPS, mg_comm_size(world),
                   last[v].d_real, last[0].d_real, last[v].d_fake, last[0].d_fake, e);
            CU_ASSERT(fabs(last[v].d_real - last[0].d_real) < 0.02);
            CU_ASSERT(fabs(last[v].d_fake - last[0].d_fake) < 0.02);
            CU_ASSERT(e > 0 && e < 0.1);
        }
    }
    for (int v = 0; v < 3; v++)
        free(params[v]);
    mg_dataset_free(&ds);
}

static void test_sharded_same_as_replicated(void)
{
    check_sharded(make_config(NULL), "sgd with momentum ramp, dropout");
    check_sharded(make_config_full(mg_fixture_adam, NULL, 0), "adam");
    const char *norms[] = {"generator.layers.0.max_col_norm=0.9",
                           "discriminator.layers.0.max_col_norm=0.5"};
    check_sharded(make_config_full(paper_sgd, norms, 2), "max column norms");
    check_sharded(mg_fixture_dcgan_config(STEPS, NULL, 0), "DCGAN with batch norm, adam");
}

/* Which gathers are prefetched, and what the start line and run.json say of it: a network with
 * max column norms needs its whole parameters right after its update, so its gathers are waited
 * for; and with max column norms the prefetching run still computes what waiting does. */
static void check_same_sums(const char *on, const char *off, const char *const *also,
                            size_t flag, mg_gemm_fn gemm, const char *what, int any_size);

static void test_update_kind(void)
{
    const mg_comm *world = mg_comm_world();
    mg_dataset ds = mg_fixture_blobs(64);
    static const struct {
        const char *g_norm, *d_norm;
        int prefetch;
        const char *kind;
    } cases[] = {
        {"generator.layers.0.max_col_norm=0", "discriminator.layers.0.max_col_norm=0",
         MG_NET_G | MG_NET_D, "sharded, gathers prefetched"},
        {"generator.layers.0.max_col_norm=0.9", "discriminator.layers.0.max_col_norm=0", MG_NET_D,
         "sharded, D's gathers prefetched (G has max column norms)"},
        {"generator.layers.0.max_col_norm=0", "discriminator.layers.0.max_col_norm=0.5", MG_NET_G,
         "sharded, G's gathers prefetched (D has max column norms)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *set[] = {"train.shared_allreduce=false", "train.bucket_mb=0.002",
                             cases[i].g_norm, cases[i].d_norm};
        mg_config cfg = make_config_full(paper_sgd, set, 4);
        mg_trainer t;
        mg_fixture_trainer_ok(&t, &cfg, &ds, world);
        const int many = mg_comm_size(world) > 1;
        CU_ASSERT_EQUAL(t.prefetch, many ? cases[i].prefetch : 0);
        CU_ASSERT_STRING_EQUAL(mg_trainer_update_kind(&t), many ? cases[i].kind : "replicated");
        mg_trainer_free(&t);
    }
    const char *const norms[] = {"train.shared_allreduce=false", "train.sharded_update=true",
                                 "train.bucket_mb=0.002", "generator.layers.0.max_col_norm=0.9",
                                 NULL};
    check_same_sums("train.overlap=true", "train.overlap=false", norms,
                    offsetof(mg_config, train.overlap), mg_gemm_blas,
                    "prefetch with G's max column norms", 1);
    mg_dataset_free(&ds);
}

/* train.bucket_mb: auto (the default) cuts buckets only where the sums cross nodes: on one node
 * (these tests) the MPI sums run as the ring after the pass; a number cuts them anywhere. */
static void test_buckets_auto(void)
{
    const mg_comm *world = mg_comm_world();
    const int size = mg_comm_size(world), node = mg_comm_node_size(world);
    mg_dataset ds = mg_fixture_blobs(64);
    static const struct {
        double mb;
        int shared, node_ranks;
    } cases[] = {{MG_BUCKETS_AUTO, 0, 0}, {25, 0, 0}, {25, 1, 0}, {MG_BUCKETS_AUTO, 1, 0},
                 {MG_BUCKETS_AUTO, 1, 2}, {0, 1, 2}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        mg_config cfg = make_config(NULL);
        cfg.train.bucket_mb = cases[i].mb;
        cfg.train.shared_allreduce = cases[i].shared;
        cfg.train.node_ranks = cases[i].node_ranks;
        mg_trainer t;
        mg_fixture_trainer_ok(&t, &cfg, &ds, world);
        /* nodes of node_ranks (a test of the path between nodes on one machine) */
        const int nodes = cases[i].node_ranks > 0 && cases[i].node_ranks < size;
        const int sums_by_mpi = size > 1 && (!mg_reducer_shared(t.g_sum) || nodes);
        const int want = sums_by_mpi && (cases[i].mb > 0 ||
                                         (cases[i].mb == MG_BUCKETS_AUTO && (node < size || nodes)));
        CU_ASSERT_EQUAL(t.bucketed, want);
        /* run.json's and the start line's size: auto resolved to 1 MB, 0 when not bucketed */
        CU_ASSERT_EQUAL(t.bucket_mb, !want ? 0.0 : cases[i].mb > 0 ? cases[i].mb : 1.0);
        mg_trainer_free(&t);
    }
    mg_dataset_free(&ds);
}

/* A convolutional GAN with batch norm: with `sync` true (the default) its statistics are those of
 * the global batch, so 1, 2 and 4 ranks train alike (parameters and running averages, 1e-5);
 * with `sync` false each rank normalises its own rows, a different computation, which the same
 * comparison must then tell apart. */
static void check_conv_invariance(int sync, int winograd)
{
    const mg_comm *world = mg_comm_world();
    const int rank = mg_comm_rank(world), size = mg_comm_size(world);
    /* winograd: 8x8 images, G's first kernel 4 (to 4x4) and D's last 4 (4x4 to 1), so that G's
     * second deconv (from 4x4), D's first conv (to 4x4) and its 3x3 one (4x4) take Winograd's
     * F(4x4, 2x2) and F(4x4, 3x3); the 6x6 fixture's maps are odd, which keeps them on the GEMM. */
    const char *set[4] = {sync ? "generator.layers.1.sync=true" : "generator.layers.1.sync=false",
                          sync ? "discriminator.layers.2.sync=true"
                               : "discriminator.layers.2.sync=false",
                          "generator.layers.0.kernel=4", "discriminator.layers.3.kernel=4"};
    mg_config cfg = mg_fixture_dcgan_config(STEPS, set, winograd ? 4 : 2);
    CU_ASSERT_EQUAL(cfg.generator.net.layers[1].sync, sync);
    mg_dataset ds = winograd ? mg_fixture_blobs_sized(64, 8) : mg_fixture_blobs(64);
    const int sizes[3] = {size, size >= 2 ? 2 : 1, 1};
    mg_real *got[3] = {NULL, NULL, NULL};
    size_t n = 0;
    for (int v = 0; v < 3; v++) {
        mg_comm *sub = mg_comm_split(world, rank < sizes[v] ? 0 : -1);
        if (sub) {
            got[v] = train_packed(sub, &cfg, &ds, &n);
            mg_comm_free(sub);
        }
    }
    if (rank == 0) {
        const double tol = 1e-5;
        for (int v = 0; v < 2; v++) {
            if (sizes[v] == 1)
                continue;
            const double e = mg_test_max_rel_diff(got[2], got[v], n);
            printf("\n  DCGAN%s, batch norm sync %s: %d ranks vs 1: max relative difference %.3g "
                   "over %zu parameters and running averages",
                   winograd ? " by Winograd" : "", sync ? "true" : "false", sizes[v], e, n);
            if (sync) {
                CU_ASSERT(e <= tol);
            } else {
                CU_ASSERT(e > 1e-3); // each rank's own statistics: not the 1-rank computation
            }
        }
    }
    for (int v = 0; v < 3; v++)
        free(got[v]);
    mg_dataset_free(&ds);
}

static void test_invariance_conv_sync_batchnorm(void)
{
    check_conv_invariance(1, 0);
}

static void test_conv_unsynced_batchnorm_differs(void)
{
    check_conv_invariance(0, 0);
}

/* The same through Winograd's algorithm (winograd.h), whose rounding differs from the GEMM's:
 * 1, 2 and 4 ranks still train alike within 1e-5. */
static void test_invariance_conv_winograd(void)
{
    check_conv_invariance(1, 1);
}

/* ---- conditional GANs (labels.h) ---- */

/* Trains cfg on labelled blobs on the whole job, its first two ranks and rank 0 alone, and
 * compares parameters and running averages: the fake labels, like the noise, are drawn by global
 * row, and the real rows' labels follow the data order, so the rank count changes nothing but
 * summation order. */
static void check_conditional_invariance(const mg_config *cfg, const char *what)
{
    const mg_comm *world = mg_comm_world();
    const int rank = mg_comm_rank(world), size = mg_comm_size(world);
    mg_dataset ds = mg_fixture_labeled_blobs(64);
    const int sizes[3] = {size, size >= 2 ? 2 : 1, 1};
    mg_real *got[3] = {NULL, NULL, NULL};
    size_t n = 0;
    for (int v = 0; v < 3; v++) {
        mg_comm *sub = mg_comm_split(world, rank < sizes[v] ? 0 : -1);
        if (sub) {
            got[v] = train_packed(sub, cfg, &ds, &n);
            mg_comm_free(sub);
        }
    }
    if (rank == 0) {
        const double tol = 1e-5; /* as check_invariance's */
        for (int v = 0; v < 2; v++) {
            const double e = mg_test_max_rel_diff(got[2], got[v], n);
            printf("\n  %s: %d ranks vs 1: max relative difference %.3g over %zu values "
                   "(tolerance %.0e)",
                   what, sizes[v], e, n, tol);
            CU_ASSERT(e <= tol);
        }
    }
    for (int v = 0; v < 3; v++)
        free(got[v]);
    mg_dataset_free(&ds);
}

/* The paper's MLP shapes with dropout on G's and D's inputs, uniform and frequency labels;
 * with MPI sums and overlap (overlapped_step), and in simultaneous mode. */
static void test_invariance_conditional(void)
{
    const char *set[MG_FIXTURE_CONDITIONAL_N + 2];
    static const struct {
        const char *draw, *a, *b, *what;
    } runs[] = {
        {"uniform", NULL, NULL, "conditional MLP, uniform labels"},
        {"frequency", "train.shared_allreduce=false", "train.overlap=true",
         "conditional MLP, frequency labels, overlapped MPI sums"},
        {"uniform", "train.mode=simultaneous", "generator.prior=normal",
         "conditional MLP, simultaneous"},
    };
    for (size_t r = 0; r < sizeof runs / sizeof *runs; r++) {
        memcpy(set, mg_fixture_conditional(runs[r].draw), sizeof(char *) * MG_FIXTURE_CONDITIONAL_N);
        int n = MG_FIXTURE_CONDITIONAL_N;
        if (runs[r].a)
            set[n++] = runs[r].a, set[n++] = runs[r].b;
        mg_config cfg = make_config_full(paper_sgd, set, n);
        CU_ASSERT_EQUAL(mg_config_gan_classes(&cfg), 4);
        check_conditional_invariance(&cfg, runs[r].what);
    }
    mg_config dc = mg_fixture_dcgan_config(STEPS, mg_fixture_conditional("uniform"),
                                           MG_FIXTURE_CONDITIONAL_N);
    check_conditional_invariance(&dc, "conditional DCGAN, labels as feature maps");
}

/* What a conditional step feeds its networks: G's rows end in the one-hot of the label drawn for
 * them, D's real rows in that of their example (by the epoch's permutation), D's fake rows in
 * the label G made them for; dropout never touches the label part. */
static void test_conditional_inputs(void)
{
    const mg_comm *world = mg_comm_world();
    mg_dataset ds = mg_fixture_labeled_blobs(64);
    for (int conv = 0; conv < 2; conv++) {
        const char *const *set = mg_fixture_conditional("uniform");
        mg_config cfg = conv ? mg_fixture_dcgan_config(STEPS, set, MG_FIXTURE_CONDITIONAL_N)
                             : make_config_full(paper_sgd, set, MG_FIXTURE_CONDITIONAL_N);
        mg_trainer t;
        mg_fixture_trainer_ok(&t, &cfg, &ds, world);
        const size_t plane = conv ? 36 : 1, dim = 36;
        CU_ASSERT_EQUAL(t.g.in_dim, 8 + 4);
        CU_ASSERT_EQUAL(t.d_in, dim + 4 * plane);
        CU_ASSERT_EQUAL(t.d.in_dim, (int)t.d_in);
        if (conv)
            CU_ASSERT_EQUAL(t.d.layer[0].in_c, 1 + 4);
        mg_fixture_train(&t, 3);
        /* The last D update's real rows: minibatch t.minibatch - 1 of the permutation. */
        const int64_t pos = (t.minibatch - 1) % t.batches_per_epoch;
        const uint32_t *idx = t.perm + pos * t.batch + (int64_t)t.rank * t.rows;
        int bad_real = 0, bad_fake = 0, bad_g = 0, bad_mask = 0, seen[4] = {0};
        for (int i = 0; i < t.rows; i++) {
            const mg_real *real = t.xd + (size_t)i * t.d_in + dim;
            const mg_real *fake = t.xd + (size_t)(t.rows + i) * t.d_in + dim;
            const int32_t want = ds.labels[idx[i]];
            for (int c = 0; c < 4; c++)
                for (size_t j = 0; j < plane; j++)
                    bad_real += real[c * plane + j] != (c == want);
            /* The G update's fakes (phase k) sit in D's fake half, as its last forward saw them. */
            const int32_t lab = t.g_labels[(size_t)cfg.train.k * t.rows + i];
            const mg_real *g_in = t.z + ((size_t)cfg.train.k * t.rows + i) * t.g_in + 8;
            seen[lab]++;
            for (int c = 0; c < 4; c++) {
                bad_g += g_in[c] != (c == lab);
                for (size_t j = 0; j < plane; j++)
                    bad_fake += fake[c * plane + j] != (c == lab);
            }
            if (!conv) /* D's layer 0 drops its input (keep 0.8), never the label */
                for (size_t j = dim; j < t.d_in; j++)
                    bad_mask += t.d.mask[0][(size_t)i * t.d_in + j] != 1;
        }
        CU_ASSERT_EQUAL(bad_real, 0);
        CU_ASSERT_EQUAL(bad_fake, 0);
        CU_ASSERT_EQUAL(bad_g, 0);
        CU_ASSERT_EQUAL(bad_mask, 0);
        if (!conv) { /* and it does drop the image: the test can tell */
            int dropped = 0;
            for (size_t j = 0; j < dim; j++)
                dropped += t.d.mask[0][j] == 0;
            CU_ASSERT(dropped > 0);
        }
        mg_trainer_free(&t);
    }
    /* Labels the trainer cannot use. */
    mg_config cfg = make_config_full(paper_sgd, mg_fixture_conditional("uniform"),
                                     MG_FIXTURE_CONDITIONAL_N);
    mg_dataset plain = mg_fixture_blobs(64);
    mg_trainer t;
    mg_error err;
    CU_ASSERT(mg_fixture_trainer(&t, &cfg, &plain, world, &err) == -1);
    CU_ASSERT_STRING_EQUAL(err.msg, "conditional.enabled: the training split has no labels");
    ds.classes = 3;
    CU_ASSERT(mg_fixture_trainer(&t, &cfg, &ds, world, &err) == -1);
    CU_ASSERT_STRING_EQUAL(err.msg, "conditional.enabled: the training split's labels count 3 "
                                    "classes, the conditional GAN 4");
    mg_dataset_free(&plain);
    mg_dataset_free(&ds);
}

/* Trains on the whole job with `on` and with `off` set (and the settings `also`, a list that
 * ends with NULL), and compares: bit for bit on 2 ranks, where a sum of two does not depend on
 * the order of the additions, and within the rank-count tolerance of check_invariance on more
 * (bit for bit there too with `any_size`, where the two settings add alike). */
static void check_same_sums(const char *on, const char *off, const char *const *also,
                            size_t flag, mg_gemm_fn gemm, const char *what, int any_size)
{
    const mg_comm *world = mg_comm_world();
    const int size = mg_comm_size(world);
    if (size < 2)
        return; /* one rank: both settings run the same code */
    mg_dataset ds = mg_fixture_blobs(64);
    static mg_real g[2][NG], d[2][ND];
    double loss[2];
    for (int v = 0; v < 2; v++) {
        const char *set[5] = {v ? off : on};
        int n_set = 1;
        while (also[n_set - 1] && n_set < 5)
            set[n_set] = also[n_set - 1], n_set++;
        mg_config cfg = make_config_full(paper_sgd, set, n_set);
        int took; /* the boolean at offset `flag` of cfg */
        memcpy(&took, (const char *)&cfg + flag, sizeof took);
        CU_ASSERT_EQUAL(took, !v);
        train_with(world, &cfg, &ds, gemm, g[v], d[v], &loss[v]);
    }
    if (mg_comm_rank(world) == 0) {
        double eg = mg_test_max_rel_diff(g[1], g[0], NG), ed = mg_test_max_rel_diff(d[1], d[0], ND);
        printf("\n  %s on %d ranks: max relative difference G %.3g, D %.3g", what, size, eg, ed);
        if (size == 2 || any_size) /* (any_size: the same additions on any rank count) */
            CU_ASSERT(eg == 0 && ed == 0);
        CU_ASSERT(eg <= 1e-5 && ed <= 1e-5);
    }
    mg_dataset_free(&ds);
}

/* D's MPI allreduce in flight during G's forward pass computes what the blocking one does (with
 * shared-memory sums, the default, D's sum is the ranks' own work and is not overlapped). The
 * overlapped step runs G one phase at a time, the other one pass for all phases, and OpenBLAS's
 * rounding of a row depends on the row count of the GEMM (its edge kernels), so both run on the
 * reference GEMM, whose rows do not depend on it: the comparison is then bit for bit. */
static void test_overlap_same_as_blocking(void)
{
    const char *const mpi[] = {"train.shared_allreduce=false", "train.sharded_update=false", NULL};
    check_same_sums("train.overlap=true", "train.overlap=false", mpi,
                    offsetof(mg_config, train.overlap), mg_gemm_ref,
                    "overlapped vs blocking MPI allreduce", 0);
}

/* With a sharded update and MPI sums in buckets (nodes of one rank), `overlap` leaves the gather
 * of each network's updated parameters in flight until the next forward pass through it, which
 * waits for each layer's bucket: D's within the step (the G update's pass through D), G's into
 * the next step. Only the timing moves: the same parameters bit for bit on any rank count, with
 * OpenBLAS. */
static void test_prefetch_same_as_blocking(void)
{
#define SHARDED_MPI "train.shared_allreduce=false", "train.sharded_update=true", "train.bucket_mb=0.002"
#define SHARDED_NODES "train.node_ranks=2", "train.sharded_update=true", "train.bucket_mb=0.002"
    static const struct {
        const char *also[5];
        int ranks; /* 0: any */
        const char *what;
    } cases[] = {
        {{SHARDED_MPI, NULL}, 0, "sharded update: gathers prefetched vs waited for"},
        /* k = 2: the first D update's gather waited for by the second's pass through D */
        {{SHARDED_MPI, "train.k=2", NULL}, 0, "the same with k = 2"},
        /* simultaneous updates: D's gather, too, runs into the next step */
        {{SHARDED_MPI, "train.mode=simultaneous", NULL}, 0, "the same in simultaneous mode"},
        /* 2 nodes of 2: shared sums, buckets between the nodes, the gathers into each node's
         * one copy of the parameters (a node barrier after each wait) */
        {{SHARDED_NODES, NULL}, 4, "the same on 2 nodes of 2"},
        {{SHARDED_NODES, "train.k=2", NULL}, 4, "the same on 2 nodes of 2 with k = 2"},
    };
#undef SHARDED_MPI
#undef SHARDED_NODES
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (!cases[i].ranks || cases[i].ranks == mg_comm_size(mg_comm_world()))
            check_same_sums("train.overlap=true", "train.overlap=false", cases[i].also,
                            offsetof(mg_config, train.overlap), mg_gemm_blas, cases[i].what, 1);
}

/* Gradient sums through the node's shared memory train as MPI_Allreduce does. */
static void test_shared_allreduce_same_as_mpi(void)
{
    const char *const blocking[] = {"train.overlap=false", NULL};
    check_same_sums("train.shared_allreduce=true", "train.shared_allreduce=false", blocking,
                    offsetof(mg_config, train.shared_allreduce), mg_gemm_blas,
                    "shared-memory vs MPI gradient sums", 0);
}

/* ---- the stall inspector (comm.h) ---- */

/* What each rank writes to stderr while `late` arrives `delay` seconds late at op(world), all
 * waits watched with stall_s; the watch goes back to the default afterwards. */
static void stall_with(void (*op)(const mg_comm *), const char *what, int late, double delay,
                       double stall_s, char *text, size_t n)
{
    const mg_comm *world = mg_comm_world();
    mg_comm_barrier(world);
    mg_comm_watch(world, stall_s);
    mg_comm_waiting_for(world, "%s", what);
    mg_test_stderr_begin();
    if (mg_comm_rank(world) == late)
        mg_test_sleep(delay);
    op(world);
    mg_test_stderr_end(text, n);
    mg_comm_watch(world, MG_STALL_DEFAULT_S);
}

static void barrier_op(const mg_comm *c)
{
    mg_comm_barrier(c);
}

/* The last rank arrives 2 s late at a barrier watched with 0.5 s: rank 0 names it, and only it;
 * the other waiting ranks hear from rank 0 and stay quiet. Then a prompt barrier: no report. */
static void test_stall_reported(void)
{
    const mg_comm *world = mg_comm_world();
    const int rank = mg_comm_rank(world), size = mg_comm_size(world);
    if (size < 2)
        return; /* nobody to be late */
    char text[4096];
    stall_with(barrier_op, "the test barrier", size - 1, 2, 0.5, text, sizeof text);
    CU_ASSERT(rank == 0 ? mg_test_stall_report(text, 0, "the test barrier", size - 1, 1)
                        : strcmp(text, "") == 0);
    stall_with(barrier_op, "a prompt barrier", -1, 0, 0.5, text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "");
}

/* Rank 0 arrives 2 s late (over 3 stall_s): no word from it, so each waiting rank names it. */
static void test_stall_of_rank0_reported(void)
{
    const mg_comm *world = mg_comm_world();
    const int rank = mg_comm_rank(world), size = mg_comm_size(world);
    if (size < 2)
        return;
    char text[4096];
    stall_with(barrier_op, "the test barrier", 0, 2, 0.5, text, sizeof text);
    CU_ASSERT(rank == 0 ? strcmp(text, "") == 0
                        : mg_test_stall_report(text, rank, "the test barrier", 0, 1));
}

/* Words about a stall that resolved itself before rank 0 listened (rank 0 0.8 s late, the
 * others telling it at 0.5 s) do not count as arrivals at the next wait: when the last rank is
 * late there, rank 0 names it (the old inspector took its stale word for an arrival, and
 * reported that every rank had arrived). */
static void test_stale_words_do_not_count(void)
{
    const mg_comm *world = mg_comm_world();
    const int rank = mg_comm_rank(world), size = mg_comm_size(world);
    if (size < 2)
        return;
    char text[4096];
    stall_with(barrier_op, "the first barrier", 0, 0.8, 0.5, text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, ""); /* under 3 stall_s: nobody reports */
    stall_with(barrier_op, "the second barrier", size - 1, 2, 0.5, text, sizeof text);
    CU_ASSERT(rank == 0 ? mg_test_stall_report(text, 0, "the second barrier", size - 1, 1)
                        : strcmp(text, "") == 0);
}

/* Every collective of comm.h waits watched: the last rank 1.2 s late at each, watched with
 * 0.4 s (more than a rank of 4 on 2 busy cores may lag by scheduling alone); rank 0 names it,
 * in what the communicator waits for. */
static void all_ok_op(const mg_comm *c)
{
    CU_ASSERT(mg_comm_all_ok(c, 1));
}

static void all_same_op(const mg_comm *c)
{
    CU_ASSERT(mg_comm_all_same(c, 42));
}

static void minmaxsum_op(const mg_comm *c)
{
    double lo, hi, sum;
    mg_comm_minmaxsum(c, mg_comm_rank(c), &lo, &hi, &sum);
    CU_ASSERT(lo == 0 && hi == mg_comm_size(c) - 1);
}

/* 4 MB (past the eager limit) from the late rank, so that every other rank waits for it. */
static void bcast_op(const mg_comm *c)
{
    static char buf[4 << 20];
    const int root = mg_comm_size(c) - 1;
    if (mg_comm_rank(c) == root)
        memset(buf, 7, sizeof buf);
    mg_comm_bcast(c, buf, sizeof buf, root);
    CU_ASSERT(buf[12345] == 7);
}

static void gather_op(const mg_comm *c)
{
    static char buf[4][1 << 20];
    const int rank = mg_comm_rank(c), size = mg_comm_size(c);
    if (size > 4)
        return;
    memset(buf[rank], rank + 1, sizeof buf[rank]);
    mg_comm_gather(c, buf[rank], sizeof buf[rank], buf, 0);
    CU_ASSERT(rank != 0 || buf[size - 1][99] == size);
}

static void split_op(const mg_comm *c)
{
    mg_comm *sub = mg_comm_split(c, 0);
    CU_ASSERT(sub != NULL);
    mg_comm_free(sub);
}

static void allreduce_op(const mg_comm *c)
{
    mg_real x[1000];
    for (int i = 0; i < 1000; i++)
        x[i] = 1;
    mg_comm_allreduce_sum(c, x, 1000);
    CU_ASSERT(x[999] == mg_comm_size(c));
}

static void request_op(const mg_comm *c)
{
    mg_real x[1000];
    for (int i = 0; i < 1000; i++)
        x[i] = 1;
    mg_request *r = mg_request_new();
    mg_comm_allreduce_start(c, x, 1000, r);
    mg_comm_finish(r);
    mg_request_free(r);
    CU_ASSERT(x[999] == mg_comm_size(c));
}

static void allreduce_double_op(const mg_comm *c)
{
    double x[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    mg_comm_allreduce_double(c, x, 10);
    CU_ASSERT(x[9] == mg_comm_size(c));
}

/* 1 MB parts placed at offsets of rank 0's whole buffer, and handed back out. */
static void parts_op(const mg_comm *c)
{
    static char whole[4 << 20], mine[1 << 20];
    const int rank = mg_comm_rank(c), size = mg_comm_size(c);
    if (size > 4)
        return;
    const size_t at = (size_t)(size - 1 - rank) << 20; /* the last rank's part first */
    memset(mine, rank + 1, sizeof mine);
    mg_comm_gather_at(c, mine, sizeof mine, at, whole, 0);
    CU_ASSERT(rank != 0 || (whole[0] == size && whole[(size_t)(size - 1) << 20] == 1));
    memset(mine, 0, sizeof mine);
    mg_comm_scatter_at(c, mine, sizeof mine, at, whole, 0);
    CU_ASSERT(mine[99] == rank + 1);
}

static void test_every_wait_watched(void)
{
    const mg_comm *world = mg_comm_world();
    const int rank = mg_comm_rank(world), size = mg_comm_size(world);
    if (size < 2)
        return;
    static const struct {
        const char *what;
        void (*op)(const mg_comm *);
    } ops[] = {{"op all_ok", all_ok_op},     {"op all_same", all_same_op},
               {"op minmaxsum", minmaxsum_op}, {"op bcast", bcast_op},
               {"op gather", gather_op},       {"op split", split_op},
               {"op allreduce", allreduce_op}, {"op request", request_op},
               {"op allreduce_double", allreduce_double_op}, {"op parts", parts_op}};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        char text[4096];
        stall_with(ops[i].op, ops[i].what, size - 1, 1.2, 0.4, text, sizeof text);
        if (rank != 0 && strcmp(text, "") != 0)
            printf("\n  %s: rank %d wrote [%s]", ops[i].what, rank, text);
        CU_ASSERT(rank == 0 ? mg_test_stall_report(text, 0, ops[i].what, size - 1, 1)
                            : strcmp(text, "") == 0);
    }
}

/* A rank's parameters changed behind the trainer's back are found. (With a sharded update and
 * shared sums the ranks of a node share one copy of the parameters, which cannot drift apart:
 * the test runs replicated.) */
static void test_replica_drift_detected(void)
{
    const mg_comm *world = mg_comm_world();
    mg_dataset ds = mg_fixture_blobs(64);
    mg_config cfg = make_config("train.sharded_update=false");
    mg_trainer t;
    mg_error err;
    CU_ASSERT_FATAL(mg_fixture_trainer(&t, &cfg, &ds, world, &err) == 0);
    mg_step_stats s;
    mg_trainer_step(&t, &s);
    CU_ASSERT(mg_trainer_check_replicas(&t, &err) == 0);
    if (mg_comm_size(world) > 1) {
        if (mg_comm_rank(world) == 1)
            t.d.params[7] += 1e-6f;
        CU_ASSERT(mg_trainer_check_replicas(&t, &err) == -1);
        CU_ASSERT_STRING_EQUAL(err.msg, "step 1: the discriminator parameters differ between ranks "
                                        "(replicas drifted apart); stopping");
    }
    mg_trainer_free(&t);
    mg_dataset_free(&ds);
}

/* The momentum of G's update in the step just taken: (m_new + lr g) / m_old, from the elements
 * whose old velocity is large enough for the float rounding of the update not to matter (each
 * rank's part of them with a sharded update, averaged over every rank). */
static double g_momentum(const mg_trainer *t, const mg_real *m_old, double lr)
{
    double sum = 0, n = 0, lo_, hi_;
    size_t lo[MG_MAX_PIECES], hi[MG_MAX_PIECES], at = 0;
    const int k = mg_trainer_pieces(t, MG_NET_G, lo, hi);
    for (int p = 0; p < k; p++)
        for (size_t i = lo[p]; i < hi[p]; i++, at++) {
            if (fabs(m_old[at]) < 1e-3)
                continue;
            sum += ((double)t->g_opt.m[at] + lr * t->g.grads[i]) / m_old[at];
            n++;
        }
    mg_comm_minmaxsum(t->comm, sum, &lo_, &hi_, &sum);
    mg_comm_minmaxsum(t->comm, n, &lo_, &hi_, &n);
    CU_ASSERT(n > 0);
    return sum / n;
}

/* A step across an epoch boundary: with 8 minibatches an epoch and k = 3, step 2 consumes
 * minibatches 6, 7 and 8. Every update of it, G's included, uses the momentum of the epochs done
 * when it began (0: momentum 0.5), not that of the minibatch count G's update sees (1: 0.9). */
static void test_one_epoch_count_per_step(void)
{
    const mg_comm *world = mg_comm_world();
    mg_dataset ds = mg_fixture_blobs(64);
    static const char *const jump[2] = {
        "{type: sgd, lr: 0.1, momentum: 0.5, final_momentum: 0.9, momentum_start: 2,"
        " momentum_saturate: 2}",
        "{type: sgd, lr: 0.1, momentum: 0.5, final_momentum: 0.9, momentum_start: 2,"
        " momentum_saturate: 2}"};
    const char *set = "train.k=3";
    mg_config cfg = make_config_full(jump, &set, 1);
    mg_trainer t;
    mg_fixture_trainer_ok(&t, &cfg, &ds, world);
    mg_fixture_train(&t, 2);
    CU_ASSERT_EQUAL(t.minibatch, 6);
    mg_real *m_old = malloc(t.g_opt.n * sizeof *m_old);
    CU_ASSERT_FATAL(m_old != NULL);
    memcpy(m_old, t.g_opt.m, t.g_opt.n * sizeof *m_old);
    const double lr = mg_optim_lr(&t.g_opt.spec, t.g_opt.t);
    mg_fixture_train(&t, 1);
    CU_ASSERT_EQUAL(t.minibatch, 9);
    const double mu = g_momentum(&t, m_old, lr);
    const double want = mg_optim_momentum(&t.g_opt.spec, 0);
    MG_ASSERT_CLOSE(mu, want, 1e-3);
    CU_ASSERT(fabs(mu - mg_optim_momentum(&t.g_opt.spec, 1)) > 0.1); /* the test can tell */
    free(m_old);
    mg_trainer_free(&t);
    mg_dataset_free(&ds);
}

/* An update that makes parameters NaN or Inf from finite gradients (a rate too large for float)
 * is reported by the step, on every rank alike, so that the run stops with nothing saved: also
 * when the gathers of a sharded update are prefetched (MPI sums in buckets), whose verdict the
 * step waits for while the parameters still travel. */
static void test_bad_params_reported(void)
{
    const mg_comm *world = mg_comm_world();
    mg_dataset ds = mg_fixture_blobs(64);
    const char *prefetch[] = {"train.shared_allreduce=false", "train.bucket_mb=0.002"};
    for (int v = 0; v < 4; v++) {
        const int pre = v / 2, net = v % 2 ? MG_NET_G : MG_NET_D;
        mg_config cfg = make_config_full(paper_sgd, pre ? prefetch : NULL, pre ? 2 : 0);
        mg_trainer t;
        mg_fixture_trainer_ok(&t, &cfg, &ds, world);
        CU_ASSERT_EQUAL(t.prefetch, pre && mg_comm_size(world) > 1 ? MG_NET_G | MG_NET_D : 0);
        mg_step_stats s;
        mg_trainer_step(&t, &s);
        CU_ASSERT_EQUAL(s.bad_params, 0);
        /* what a configuration can no longer give (config.c) */
        (net == MG_NET_D ? &t.d_opt : &t.g_opt)->spec.lr = INFINITY;
        t.trap_fpe = 0; /* the NaN it makes (inf times a zero gradient) is the point, not a bug */
        mg_trainer_step(&t, &s);
        CU_ASSERT_EQUAL(s.bad_params, net);
        mg_trainer_settle(&t);
        const mg_net *bad = net == MG_NET_D ? &t.d : &t.g;
        CU_ASSERT(!mg_all_finite(bad->params, bad->n_params));
        mg_trainer_free(&t);
    }
    mg_dataset_free(&ds);
}

static void test_trainer_errors(void)
{
    const mg_comm *world = mg_comm_world();
    const int size = mg_comm_size(world);
    mg_dataset ds = mg_fixture_blobs(64);
    mg_trainer t;
    mg_error err;
    char msg[256];

    if (size > 1) {
        mg_config cfg = make_config("train.batch_size=9");
        CU_ASSERT(mg_fixture_trainer(&t, &cfg, &ds, world, &err) == -1);
        snprintf(msg, sizeof msg,
                 "train.batch_size 9 does not split over %d ranks: use a multiple of the rank "
                 "count",
                 size);
        CU_ASSERT_STRING_EQUAL(err.msg, msg);
    }
    mg_config big = make_config("train.batch_size=128");
    CU_ASSERT(mg_fixture_trainer(&t, &big, &ds, world, &err) == -1);
    CU_ASSERT_STRING_EQUAL(err.msg,
                           "the training split has 64 examples, fewer than one batch of 128");

    mg_config wide = make_config("generator.layers.1.units=35");
    CU_ASSERT(mg_fixture_trainer(&t, &wide, &ds, world, &err) == -1);
    CU_ASSERT_STRING_EQUAL(err.msg, "generator.layers.1.units is 35 but the data has 36 values "
                                    "per example (1x6x6)");

    /* Convolutional shapes that do not chain: one line naming the network, the layer and the
     * shapes, before anything is allocated. */
    static const struct {
        const char *set, *want;
    } bad[] = {
        {"discriminator.layers.0.kernel=9",
         "discriminator: layer 0 (h0), input (1, 6, 6): kernel 9x9 larger than the padded input "
         "8x8"},
        {"discriminator.layers.3.kernel=[3, 4]",
         "discriminator: layer 3 (h3), input (8, 3, 3): kernel 3x4 larger than the padded input "
         "3x3"},
        {"generator.layers.2.output_padding=2",
         "generator: layer 2 (h2), input (8, 3, 3): output padding 2x2 must be at least 0 and "
         "below the stride 2x2"},
        {"generator.layers.0.kernel=2",
         "the generator's last layer (h2) makes 16 values per example (1x4x4), but the data has "
         "36 (1x6x6)"},
        {"discriminator.layers.2.sync=false",
         NULL}, /* a good one among them: the loop can tell */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        mg_config cfg = mg_fixture_dcgan_config(STEPS, &bad[i].set, 1);
        const int rc = mg_fixture_trainer(&t, &cfg, &ds, world, &err);
        if (!bad[i].want) {
            CU_ASSERT_EQUAL(rc, 0);
            if (rc == 0)
                mg_trainer_free(&t);
            continue;
        }
        CU_ASSERT_EQUAL(rc, -1);
        if (strcmp(err.msg, bad[i].want) != 0)
            fprintf(stderr, "\n  --set %s:\n    want: %s\n    got:  %s", bad[i].set,
                    bad[i].want, err.msg);
        CU_ASSERT_STRING_EQUAL(err.msg, bad[i].want);
    }

    /* A reshape of another size, and pools that do not fit: the paper's conv model in small. */
    mg_config conv = mg_fixture_dcgan_config(STEPS, NULL, 0);
    mg_net_spec *g = &conv.generator.net, *d = &conv.discriminator.net;
    g->n_layers = 3;
    g->layers[0] = mg_test_layer("h0", MG_ACT_RELU, 20, 1, 0.05, 1, 0);
    g->layers[1] = (mg_layer_spec){.name = "converter", .op = MG_OP_RESHAPE, .type = MG_ACT_LINEAR,
                                   .pieces = 1, .shape = {5, 2, 3}, .keep = 1, .input_scale = 1};
    g->layers[2] = mg_test_conv_layer(MG_OP_DECONV, MG_ACT_SIGMOID, 1, 3, 3, 0); // 2x2 -> 6x6
    snprintf(g->layers[2].name, sizeof g->layers[2].name, "y");
    CU_ASSERT(mg_fixture_trainer(&t, &conv, &ds, world, &err) == -1);
    CU_ASSERT_STRING_EQUAL(err.msg, "generator: layer 1 (converter): reshape to (5, 2, 3) = 30 "
                                    "values, but its input (20, 1, 1) has 20");
    g->layers[1].shape[0] = 5, g->layers[1].shape[1] = 2, g->layers[1].shape[2] = 2;
    d->n_layers = 2;
    d->layers[0] = mg_test_conv_layer(MG_OP_MAXOUT_CONV, MG_ACT_MAXOUT, 2, 3, 1, 0);
    d->layers[0].pieces = 2;
    d->layers[0].pool[0] = d->layers[0].pool[1] = 5;
    d->layers[0].pool_stride[0] = d->layers[0].pool_stride[1] = 2;
    snprintf(d->layers[0].name, sizeof d->layers[0].name, "dh0");
    d->layers[1] = mg_test_layer("y", MG_ACT_SIGMOID, 1, 1, 0.05, 1, 0);
    CU_ASSERT(mg_fixture_trainer(&t, &conv, &ds, world, &err) == -1);
    CU_ASSERT_STRING_EQUAL(err.msg, "discriminator: layer 0 (dh0), maxout output (2, 4, 4): pool "
                                    "5x5 larger than the input 4x4");
    d->layers[0].pool[0] = d->layers[0].pool[1] = 4;
    const int rc = mg_fixture_trainer(&t, &conv, &ds, world, &err);
    if (rc)
        fprintf(stderr, "\n  %s", err.msg);
    CU_ASSERT_FATAL(rc == 0);
    mg_trainer_free(&t);
    mg_dataset_free(&ds);
}

int main(int argc, char **argv)
{
    mg_comm_init(&argc, &argv);
    static const mg_test tests[] = {
        {"invariance_alternating", test_invariance_alternating},
        {"invariance_simultaneous_minimax", test_invariance_simultaneous_adam_minimax},
        {"invariance_conv_sync_batchnorm", test_invariance_conv_sync_batchnorm},
        {"invariance_conv_winograd", test_invariance_conv_winograd},
        {"conv_unsynced_batchnorm_differs", test_conv_unsynced_batchnorm_differs},
        {"sharded_same_as_replicated", test_sharded_same_as_replicated},
        {"buckets_auto", test_buckets_auto},
        {"bf16_trains", test_bf16_trains},
        {"invariance_conditional", test_invariance_conditional},
        {"conditional_inputs", test_conditional_inputs},
        {"overlap_same_as_blocking", test_overlap_same_as_blocking},
        {"prefetch_same_as_blocking", test_prefetch_same_as_blocking},
        {"update_kind", test_update_kind},
        {"shared_allreduce_same_as_mpi", test_shared_allreduce_same_as_mpi},
        {"stall_reported", test_stall_reported},
        {"stall_of_rank0_reported", test_stall_of_rank0_reported},
        {"stale_words_do_not_count", test_stale_words_do_not_count},
        {"every_wait_watched", test_every_wait_watched},
        {"replica_drift_detected", test_replica_drift_detected},
        {"one_epoch_count_per_step", test_one_epoch_count_per_step},
        {"bad_params_reported", test_bad_params_reported},
        {"trainer_errors", test_trainer_errors},
        {NULL, NULL},
    };
    int rc = mg_test_main("train", tests, argc, argv);
    int all_ok = mg_comm_all_ok(mg_comm_world(), rc == 0);
    mg_comm_finalize();
    return all_ok ? rc : (rc ? rc : 1);
}
