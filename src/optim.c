#include "mpigan/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "simd.h"

const char *const mg_optim_names[] = {[MG_OPTIM_SGD] = "sgd", [MG_OPTIM_ADAM] = "adam", NULL};

int mg_optim_init(mg_optim *opt, const mg_optim_spec *spec, size_t n, mg_error *err)
{
    opt->spec = *spec;
    opt->n = n;
    opt->t = 0;
    opt->m = mg_big_alloc(n * sizeof *opt->m);
    opt->v = spec->type == MG_OPTIM_ADAM ? mg_big_alloc(n * sizeof *opt->v) : NULL;
    if (!opt->m || (spec->type == MG_OPTIM_ADAM && !opt->v)) {
        mg_optim_free(opt);
        return mg_fail(err, "out of memory for optimizer state of %zu parameters", n);
    }
    return 0;
}

void mg_optim_free(mg_optim *opt)
{
    mg_big_free(opt->m, opt->n * sizeof *opt->m);
    mg_big_free(opt->v, opt->n * sizeof *opt->v);
    opt->m = opt->v = NULL;
}

double mg_optim_lr(const mg_optim_spec *spec, int64_t t)
{
    if (spec->type != MG_OPTIM_SGD || spec->lr_decay == 1.0)
        return spec->lr;
    /* pow, not a running product: the rate of any update is known from t alone, so a resumed
     * run continues the schedule exactly. */
    double lr = spec->lr * pow(spec->lr_decay, -(double)t);
    return lr > spec->min_lr ? lr : spec->min_lr;
}

double mg_optim_momentum(const mg_optim_spec *spec, int64_t epochs)
{
    /* pylearn2's MomentumAdjustor counts its on_monitor calls: one before the first epoch and
     * one after each, so after `epochs` completed passes its count is epochs + 1. */
    const int64_t count = epochs + 1;
    const int64_t w = (int64_t)spec->momentum_saturate - spec->momentum_start;
    if (w <= 0)
        return count >= spec->momentum_start ? spec->final_momentum : spec->momentum;
    double alpha = (double)(count - spec->momentum_start) / (double)w;
    alpha = alpha < 0 ? 0 : alpha > 1 ? 1 : alpha;
    return spec->momentum * (1 - alpha) + spec->final_momentum * alpha;
}

/* The update loops, one pass each over separate buffers (restrict: they vectorise without an
 * overlap check). */
MG_HOT static int sgd(mg_real *restrict p, mg_real *restrict m, const mg_real *restrict g,
                      size_t n, mg_real lr, mg_real mu)
{
    mg_bits marks = 0;
    for (size_t i = 0; i < n; i++) {
        m[i] = mu * m[i] - lr * g[i];
        p[i] += m[i];
        marks |= mg_nonfinite_mark(p[i]);
    }
    return mg_marks_finite(marks);
}

MG_HOT static int adam(mg_real *restrict p, mg_real *restrict m, mg_real *restrict v,
                       const mg_real *restrict g, size_t n, mg_real step, mg_real eps, mg_real b1,
                       mg_real b2)
{
    mg_bits marks = 0;
    for (size_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        p[i] -= step * m[i] / (mg_sqrt(v[i]) + eps);
        marks |= mg_nonfinite_mark(p[i]);
    }
    return mg_marks_finite(marks);
}

int mg_optim_step_pieces(mg_optim *opt, mg_real *params, const mg_real *grads, const size_t *lo,
                         const size_t *hi, int n_pieces, int64_t epochs)
{
    int finite = 1;
    const mg_optim_spec *s = &opt->spec;
    size_t at = 0; /* where the piece's state starts in opt */
    if (s->type == MG_OPTIM_SGD) {
        const mg_real lr = (mg_real)mg_optim_lr(s, opt->t);
        const mg_real mu = (mg_real)mg_optim_momentum(s, epochs);
        for (int i = 0; i < n_pieces; i++) {
            const size_t n = hi[i] - lo[i];
            finite &= sgd(params + lo[i], opt->m + at, grads + lo[i], n, lr, mu);
            at += n;
        }
    } else {
        const double t = (double)(opt->t + 1);
        /* Bias corrections folded into the step size and epsilon, as in Kingma & Ba, Sec. 2. */
        const double c1 = 1 - pow(s->beta1, t), c2 = 1 - pow(s->beta2, t);
        const mg_real step = (mg_real)(s->lr * sqrt(c2) / c1);
        const mg_real eps = (mg_real)(s->eps * sqrt(c2));
        const mg_real b1 = (mg_real)s->beta1, b2 = (mg_real)s->beta2;
        for (int i = 0; i < n_pieces; i++) {
            const size_t n = hi[i] - lo[i];
            finite &= adam(params + lo[i], opt->m + at, opt->v + at, grads + lo[i], n, step, eps,
                           b1, b2);
            at += n;
        }
    }
    opt->t++;
    return finite;
}

int mg_optim_step(mg_optim *opt, mg_real *params, const mg_real *grads, int64_t epochs)
{
    const size_t lo = 0, hi = opt->n;
    return mg_optim_step_pieces(opt, params, grads, &lo, &hi, 1, epochs);
}
