/* Optimizer updates against values computed by hand, and the paper's schedules. */
#include <float.h>
#include <math.h>
#include <stdio.h>

#include "mpigan/optim.h"
#include "testlib.h"

static mg_optim_spec paper_sgd(void)
{
    return (mg_optim_spec){.type = MG_OPTIM_SGD, .lr = 0.1, .lr_decay = 1.000004, .min_lr = 1e-6,
                           .momentum = 0.5, .final_momentum = 0.7, .momentum_start = 1,
                           .momentum_saturate = 250};
}

static void test_lr_decay(void)
{
    mg_optim_spec s = paper_sgd();
    MG_ASSERT_CLOSE(mg_optim_lr(&s, 0), 0.1, 0);
    /* pow against a division: a few ulps of 0.1 */
    MG_ASSERT_CLOSE(mg_optim_lr(&s, 1), 0.1 / 1.000004, 4 * DBL_EPSILON * 0.1);
    /* After 10^6 updates, lr is about 0.1 e^-4. */
    MG_ASSERT_CLOSE(mg_optim_lr(&s, 1000000), 0.1 * pow(1.000004, -1e6), 1e-15);
    /* The floor: 0.1 / 1.000004^t < 1e-6 once t > ln(1e5) / ln(1.000004) = 2878237.12. */
    MG_ASSERT_CLOSE(mg_optim_lr(&s, 2878237), 1.0000004911e-6, 1e-15);
    MG_ASSERT_CLOSE(mg_optim_lr(&s, 2878238), 1e-6, 0);
    MG_ASSERT_CLOSE(mg_optim_lr(&s, 100000000), 1e-6, 0);

    mg_optim_spec halving = {.type = MG_OPTIM_SGD, .lr = 1, .lr_decay = 2, .min_lr = 0.1};
    MG_ASSERT_CLOSE(mg_optim_lr(&halving, 3), 0.125, 0);
    MG_ASSERT_CLOSE(mg_optim_lr(&halving, 4), 0.1, 0);

    mg_optim_spec adam = {.type = MG_OPTIM_ADAM, .lr = 2e-4, .beta1 = 0.5, .beta2 = 0.999, .eps = 1e-8};
    MG_ASSERT_CLOSE(mg_optim_lr(&adam, 12345), 2e-4, 0);
}

/* pylearn2's MomentumAdjustor as the released code runs it, step by step: Train.main_loop calls
 * on_monitor once before the first epoch and once after each; every call counts itself and sets
 * the momentum from the count. Returns the momentum in force during epoch `epoch` (0-based). */
static double pylearn2_momentum(double init, double final, int start, int saturate, int epoch)
{
    int count = 0;
    double momentum = init;
    for (int call = 0; call <= epoch; call++) { /* before epoch 0, then after epochs 0..epoch-1 */
        count++;
        const int w = saturate - start;
        if (w == 0) {
            momentum = count >= start ? final : init;
        } else {
            double alpha = (double)(count - start) / w;
            alpha = alpha < 0 ? 0 : alpha > 1 ? 1 : alpha;
            momentum = init * (1 - alpha) + alpha * final;
        }
    }
    return momentum;
}

static void test_momentum_ramp(void)
{
    /* The paper's schedule (start 1, saturate 250): epoch e trains at 0.5 + 0.2 e / 249 until
     * e = 249. Where alpha is strictly between 0 and 1 the two products and their sum round
     * separately: a few ulps of 0.7. */
    const double tol = 4 * DBL_EPSILON * 0.7;
    mg_optim_spec s = paper_sgd();
    MG_ASSERT_CLOSE(mg_optim_momentum(&s, 0), 0.5, 0);
    MG_ASSERT_CLOSE(mg_optim_momentum(&s, 1), 0.5 + 0.2 * 1 / 249, tol);
    MG_ASSERT_CLOSE(mg_optim_momentum(&s, 2), 0.5 + 0.2 * 2 / 249, tol);
    MG_ASSERT_CLOSE(mg_optim_momentum(&s, 248), 0.5 + 0.2 * 248 / 249, tol);
    MG_ASSERT_CLOSE(mg_optim_momentum(&s, 249), 0.7, 0);
    MG_ASSERT_CLOSE(mg_optim_momentum(&s, 250), 0.7, 0);
    MG_ASSERT_CLOSE(mg_optim_momentum(&s, 1000), 0.7, 0);

    /* start == saturate: a jump once the count (epochs + 1) reaches start, one epoch before
     * `start` epochs are complete. */
    s.momentum_saturate = s.momentum_start = 3;
    MG_ASSERT_CLOSE(mg_optim_momentum(&s, 0), 0.5, 0);
    MG_ASSERT_CLOSE(mg_optim_momentum(&s, 1), 0.5, 0);
    MG_ASSERT_CLOSE(mg_optim_momentum(&s, 2), 0.7, 0);
    MG_ASSERT_CLOSE(mg_optim_momentum(&s, 1000), 0.7, 0);
    s.momentum_saturate = s.momentum_start = 1; /* the count is 1 before the first epoch */
    MG_ASSERT_CLOSE(mg_optim_momentum(&s, 0), 0.7, 0);
    s.momentum_saturate = s.momentum_start = 0; /* the defaults: final_momentum throughout */
    MG_ASSERT_CLOSE(mg_optim_momentum(&s, 0), 0.7, 0);

    /* Against the step-by-step reference for every epoch to 1000 and schedules of every kind;
     * the same formula in the same order of operations, so the same bits. */
    static const int sched[][2] = {{1, 250}, {0, 0}, {1, 1}, {3, 3}, {0, 5}, {2, 3}, {5, 10}};
    int wrong = 0;
    for (size_t i = 0; i < sizeof sched / sizeof *sched; i++) {
        s.momentum_start = sched[i][0];
        s.momentum_saturate = sched[i][1];
        for (int e = 0; e <= 1000; e++) {
            const double want = pylearn2_momentum(0.5, 0.7, sched[i][0], sched[i][1], e);
            const double got = mg_optim_momentum(&s, e);
            if (got != want && wrong++ < 5)
                printf("\n  start %d saturate %d epoch %d: %.17g, pylearn2 %.17g", sched[i][0],
                       sched[i][1], e, got, want);
        }
    }
    CU_ASSERT_EQUAL(wrong, 0);
}

static void test_sgd_steps(void)
{
    mg_optim_spec s = {.type = MG_OPTIM_SGD, .lr = 0.5, .lr_decay = 2, .min_lr = 0,
                       .momentum = 0.5, .final_momentum = 0.9, .momentum_start = 2,
                       .momentum_saturate = 2};
    mg_optim o;
    mg_error err;
    CU_ASSERT_FATAL(mg_optim_init(&o, &s, 2, &err) == 0);
    mg_real p[2] = {1, -2};
    mg_real g[2] = {0.5f, -1};
    /* Step 1, epoch 0 (count 1 < start 2): mu 0.5, lr 0.5: v = -0.25, 0.5; p = 0.75, -1.5 */
    mg_optim_step(&o, p, g, 0);
    MG_ASSERT_CLOSE(p[0], 0.75, 1e-7);
    MG_ASSERT_CLOSE(p[1], -1.5, 1e-7);
    /* Step 2, epoch 1 (count 2): mu 0.9, lr 0.25: v = 0.9 * -0.25 - 0.125 = -0.35; 0.9 * 0.5 + 0.25 = 0.7 */
    mg_optim_step(&o, p, g, 1);
    MG_ASSERT_CLOSE(p[0], 0.4, 1e-6);
    MG_ASSERT_CLOSE(p[1], -0.8, 1e-6);
    CU_ASSERT_EQUAL(o.t, 2);
    mg_optim_free(&o);
}

static void test_adam_steps(void)
{
    mg_optim_spec s = {.type = MG_OPTIM_ADAM, .lr = 0.01, .beta1 = 0.5, .beta2 = 0.75, .eps = 1e-3};
    mg_optim o;
    mg_error err;
    CU_ASSERT_FATAL(mg_optim_init(&o, &s, 1, &err) == 0);
    mg_real p[1] = {1};
    const double g1 = 0.2, g2 = -0.4;
    /* By the book (Kingma & Ba, Algorithm 1) in double. */
    double m = 0, v = 0, ref = 1;
    double gs[2] = {g1, g2};
    for (int t = 1; t <= 2; t++) {
        mg_real g[1] = {(mg_real)gs[t - 1]};
        mg_optim_step(&o, p, g, 0);
        m = 0.5 * m + 0.5 * gs[t - 1];
        v = 0.75 * v + 0.25 * gs[t - 1] * gs[t - 1];
        double mhat = m / (1 - pow(0.5, t)), vhat = v / (1 - pow(0.75, t));
        ref -= 0.01 * mhat / (sqrt(vhat) + 1e-3);
        /* float arithmetic on values of order 1: a few ulps */
        MG_ASSERT_CLOSE(p[0], ref, 8 * FLT_EPSILON);
    }
    mg_optim_free(&o);
}

/* mg_all_finite against isfinite, value by value: every special value at every position of
 * arrays whose lengths cover a vector body and its tail, among extreme finite values. */
static void test_all_finite(void)
{
    enum { N = 37 };
    const mg_real finite[] = {0,       -0.0f,       1,           -1,   FLT_MAX, -FLT_MAX,
                              FLT_MIN, FLT_MIN / 8, -FLT_MIN / 8, 1e38f}; // FLT_MIN / 8: subnormal
    const mg_real bad[] = {NAN, -NAN, INFINITY, -INFINITY};
    mg_real x[N];
    int wrong = 0;
    for (int n = 0; n <= N; n++) {
        for (int i = 0; i < n; i++)
            x[i] = finite[i % (sizeof finite / sizeof *finite)];
        wrong += mg_all_finite(x, (size_t)n) != 1;
        for (int at = 0; at < n; at++)
            for (size_t b = 0; b < sizeof bad / sizeof *bad; b++) {
                const mg_real keep = x[at];
                x[at] = bad[b];
                wrong += mg_all_finite(x, (size_t)n) != 0;
                wrong += mg_all_finite(x, (size_t)at) != 1; // a bad value past n is not read
                x[at] = keep;
            }
    }
    CU_ASSERT_EQUAL(wrong, 0);
}

int main(int argc, char **argv)
{
    static const mg_test tests[] = {
        {"lr_decay", test_lr_decay},
        {"momentum_ramp", test_momentum_ramp},
        {"sgd_steps", test_sgd_steps},
        {"adam_steps", test_adam_steps},
        {"all_finite", test_all_finite},
        {NULL, NULL},
    };
    return mg_test_main("optim", tests, argc, argv);
}
