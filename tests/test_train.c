/* Data parallelism, run under mpiexec with 1, 2 or 4 ranks.
 *
 * The central property: with the same seed and global batch, training on N ranks computes what
 * training on one rank computes, up to float summation order. Each test trains on the whole job,
 * on its first two ranks and on rank 0 alone (sub-communicators of one job), then compares. */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
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
    if (mg_comm_size(comm) > 1)
        CU_ASSERT_EQUAL(mg_reducer_shared(t.d_sum), cfg->train.shared_allreduce);
    mg_step_stats s = {0};
    for (int i = 0; i < STEPS; i++) {
        mg_trainer_step(&t, &s);
        CU_ASSERT(isfinite(s.d_loss) && isfinite(s.g_loss));
    }
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

/* Trains on the whole job with `on` and with `off` set (and `also`, if not NULL), and compares:
 * bit for bit on 2 ranks, where a sum of two does not depend on the order of the additions, and
 * within the rank-count tolerance of check_invariance on more. */
static void check_same_sums(const char *on, const char *off, const char *also, size_t flag,
                            mg_gemm_fn gemm, const char *what)
{
    const mg_comm *world = mg_comm_world();
    const int size = mg_comm_size(world);
    if (size < 2)
        return; /* one rank: both settings run the same code */
    mg_dataset ds = mg_fixture_blobs(64);
    static mg_real g[2][NG], d[2][ND];
    double loss[2];
    for (int v = 0; v < 2; v++) {
        const char *set[2] = {v ? off : on, also};
        mg_config cfg = make_config_full(paper_sgd, set, also ? 2 : 1);
        int took; /* the boolean at offset `flag` of cfg */
        memcpy(&took, (const char *)&cfg + flag, sizeof took);
        CU_ASSERT_EQUAL(took, !v);
        train_with(world, &cfg, &ds, gemm, g[v], d[v], &loss[v]);
    }
    if (mg_comm_rank(world) == 0) {
        double eg = mg_test_max_rel_diff(g[1], g[0], NG), ed = mg_test_max_rel_diff(d[1], d[0], ND);
        printf("\n  %s on %d ranks: max relative difference G %.3g, D %.3g", what, size, eg, ed);
        if (size == 2)
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
    check_same_sums("train.overlap=true", "train.overlap=false", "train.shared_allreduce=false",
                    offsetof(mg_config, train.overlap), mg_gemm_ref,
                    "overlapped vs blocking MPI allreduce");
}

/* Gradient sums through the node's shared memory train as MPI_Allreduce does. */
static void test_shared_allreduce_same_as_mpi(void)
{
    check_same_sums("train.shared_allreduce=true", "train.shared_allreduce=false",
                    "train.overlap=false", offsetof(mg_config, train.shared_allreduce), mg_gemm_blas,
                    "shared-memory vs MPI gradient sums");
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

/* Every collective of comm.h waits watched: the last rank 0.6 s late at each, watched with
 * 0.15 s; rank 0 names it, in what the communicator waits for. */
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
               {"op allreduce", allreduce_op}, {"op request", request_op}};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        char text[4096];
        stall_with(ops[i].op, ops[i].what, size - 1, 0.6, 0.15, text, sizeof text);
        if (rank != 0 && strcmp(text, "") != 0)
            printf("\n  %s: rank %d wrote [%s]", ops[i].what, rank, text);
        CU_ASSERT(rank == 0 ? mg_test_stall_report(text, 0, ops[i].what, size - 1, 1)
                            : strcmp(text, "") == 0);
    }
}

static void test_replica_drift_detected(void)
{
    const mg_comm *world = mg_comm_world();
    mg_dataset ds = mg_fixture_blobs(64);
    mg_config cfg = make_config(NULL);
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
 * whose old velocity is large enough for the float rounding of the update not to matter. */
static double g_momentum(const mg_trainer *t, const mg_real *m_old, double lr)
{
    double sum = 0;
    int n = 0;
    for (size_t i = 0; i < t->g_opt.n; i++) {
        if (fabs(m_old[i]) < 1e-3)
            continue;
        sum += ((double)t->g_opt.m[i] + lr * t->g.grads[i]) / m_old[i];
        n++;
    }
    CU_ASSERT_FATAL(n > 0);
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
        "{type: sgd, lr: 0.1, momentum: 0.5, final_momentum: 0.9, momentum_start: 1,"
        " momentum_saturate: 1}",
        "{type: sgd, lr: 0.1, momentum: 0.5, final_momentum: 0.9, momentum_start: 1,"
        " momentum_saturate: 1}"};
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
    mg_dataset_free(&ds);
}

int main(int argc, char **argv)
{
    mg_comm_init(&argc, &argv);
    static const mg_test tests[] = {
        {"invariance_alternating", test_invariance_alternating},
        {"invariance_simultaneous_minimax", test_invariance_simultaneous_adam_minimax},
        {"overlap_same_as_blocking", test_overlap_same_as_blocking},
        {"shared_allreduce_same_as_mpi", test_shared_allreduce_same_as_mpi},
        {"stall_reported", test_stall_reported},
        {"stall_of_rank0_reported", test_stall_of_rank0_reported},
        {"stale_words_do_not_count", test_stale_words_do_not_count},
        {"every_wait_watched", test_every_wait_watched},
        {"replica_drift_detected", test_replica_drift_detected},
        {"one_epoch_count_per_step", test_one_epoch_count_per_step},
        {"trainer_errors", test_trainer_errors},
        {NULL, NULL},
    };
    int rc = mg_test_main("train", tests, argc, argv);
    int all_ok = mg_comm_all_ok(mg_comm_world(), rc == 0);
    mg_comm_finalize();
    return all_ok ? rc : (rc ? rc : 1);
}
