/* A classifier trained data-parallel (classifier.h): the GAN trainer's plan (train.c) for one
 * network and a softmax cross-entropy. */
#include "mpigan/classifier.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpigan/blas.h"

const char *const mg_classifier_timer_names[MG_CTIMER_COUNT] = {
    [MG_CTIMER_DATA] = "data",
    [MG_CTIMER_COMPUTE] = "compute",
    [MG_CTIMER_REDUCE] = "allreduce",
    [MG_CTIMER_UPDATE] = "update",
};

/* The network id that keys initialisation and dropout: after G's 0 and D's 1. */
enum { NET_C = 2 };

/* Stats slots of the gradient buffer (MG_STATS_SLOTS): they ride along in the allreduce. */
enum { SLOT_LOSS = 0, SLOT_CORRECT = 1, SLOT_STOP = 2 };

/* ---- the loss ---- */

double mg_loss_softmax(mg_real *dlogit, const mg_real *l, const int32_t *labels, int rows,
                       int classes, double norm, int *correct)
{
    double loss = 0;
    int right = 0;
    for (int i = 0; i < rows; i++) {
        const mg_real *li = l + (size_t)i * classes; // (classes)
        int best = 0;
        for (int k = 1; k < classes; k++)
            if (li[k] > li[best])
                best = k;
        const double top = li[best];
        double z = 0;
        for (int k = 0; k < classes; k++)
            z += exp((double)li[k] - top);
        const double log_z = top + log(z);
        loss += log_z - li[labels[i]];
        right += best == labels[i];
        if (!dlogit)
            continue;
        mg_real *d = dlogit + (size_t)i * classes;
        for (int k = 0; k < classes; k++)
            d[k] = (mg_real)((exp((double)li[k] - log_z) - (k == labels[i])) / norm);
    }
    if (correct)
        *correct = right;
    return loss;
}

void mg_softmax_rows(mg_real *p, const mg_real *l, int rows, int classes)
{
    for (int i = 0; i < rows; i++) {
        const mg_real *li = l + (size_t)i * classes;
        double top = li[0], z = 0;
        for (int k = 1; k < classes; k++)
            top = li[k] > top ? li[k] : top;
        for (int k = 0; k < classes; k++)
            z += exp((double)li[k] - top);
        for (int k = 0; k < classes; k++)
            p[(size_t)i * classes + k] = (mg_real)(exp((double)li[k] - top) / z);
    }
}

/* ---- training ---- */

static void lap(mg_classifier *c, enum mg_classifier_timer which)
{
    const double now = mg_comm_wtime();
    c->timer[which] += now - c->mark;
    c->mark = now;
}

/* A batch norm's statistics summed over the ranks (mg_sum_fn). */
static void sum_over_ranks(void *arg, double *x, int n)
{
    const mg_classifier *c = arg;
    mg_comm_waiting_for(c->comm, "the classifier's batch norm statistics of step %lld",
                        (long long)c->step + 1);
    mg_comm_allreduce_double(c->comm, x, (size_t)n);
}

int mg_classifier_init(mg_classifier *c, const mg_classifier_spec *spec, const mg_dataset *data,
                       const mg_comm *comm, mg_error *err)
{
    memset(c, 0, sizeof *c);
    c->spec = *spec;
    c->comm = comm;
    c->data = data;
    c->rank = mg_comm_rank(comm);
    c->nranks = mg_comm_size(comm);
    c->batch = spec->train.batch_size;
    c->perm_epoch = -1;
    if (c->batch % c->nranks != 0)
        return mg_fail(err,
                       "train.batch_size %d does not split over %d ranks: use a multiple of the "
                       "rank count",
                       c->batch, c->nranks);
    if (data->n < c->batch)
        return mg_fail(err, "the training split has %d examples, fewer than one batch of %d",
                       data->n, c->batch);
    if (!data->labels)
        return mg_fail(err, "the training split has no labels");
    if (data->classes != spec->classes)
        return mg_fail(err, "the training split's labels count %d classes, the classifier %d",
                       data->classes, spec->classes);
    c->rows = c->batch / c->nranks;
    c->batches_per_epoch = data->n / c->batch;
    const int max_rows = c->rows > MG_CLASSIFIER_CHUNK ? c->rows : MG_CLASSIFIER_CHUNK;
    if (mg_net_init_shape(&c->net, &spec->net, data->channels, data->height, data->width,
                          max_rows, 1, err)) {
        const char *msg = strncmp(err->msg, "network: ", 9) == 0 ? err->msg + 9 : err->msg;
        char copy[MG_ERROR_LEN];
        snprintf(copy, sizeof copy, "%s", msg);
        return mg_fail(err, "classifier: %s", copy);
    }
    if (c->net.out_dim != spec->classes) {
        mg_fail(err, "the classifier's last layer makes %d values, not one per class (%d)",
                c->net.out_dim, spec->classes);
        mg_net_free(&c->net);
        return -1;
    }
    if (mg_optim_init(&c->opt, &spec->optim, c->net.n_params, err)) {
        mg_net_free(&c->net);
        return -1;
    }
    if (c->nranks > 1) {
        c->net.sum = sum_over_ranks;
        c->net.sum_arg = c;
    }
    mg_comm_watch(comm, spec->train.stall_seconds);
    mg_comm_waiting_for(comm, "the set-up of the classifier");
    c->sum = mg_reducer_new(comm, c->net.n_params + MG_STATS_SLOTS, spec->train.shared_allreduce,
                            0, c->net.grads);
    c->net.grads = mg_reducer_buffer(c->sum);
    const size_t rows = (size_t)c->rows, dim = data->dim;
    c->perm = mg_xmalloc((size_t)data->n * sizeof *c->perm);
    c->row_id = mg_xmalloc(rows * sizeof *c->row_id);
    c->x = mg_xmalloc(rows * dim * sizeof *c->x);
    c->y = mg_xmalloc(rows * sizeof *c->y);
    c->dlogit = mg_xmalloc(rows * (size_t)spec->classes * sizeof *c->dlogit);
    for (size_t i = 0; i < rows; i++)
        c->row_id[i] = (uint64_t)c->rank * rows + i;
    if (c->rank == 0)
        mg_net_init_params(&c->net, spec->seed, NET_C);
    mg_comm_bcast(comm, c->net.params, c->net.n_params * sizeof(mg_real), 0);
    if (c->net.n_state)
        mg_comm_bcast(comm, c->net.state, c->net.n_state * sizeof(mg_real), 0);
    return 0;
}

void mg_classifier_free(mg_classifier *c)
{
    mg_net_free(&c->net);
    mg_optim_free(&c->opt);
    free(c->perm);
    free(c->row_id);
    free(c->x);
    free(c->y);
    free(c->dlogit);
    mg_reducer_free(c->sum);
    memset(c, 0, sizeof *c);
}

int64_t mg_classifier_total_steps(const mg_classifier *c)
{
    if (c->spec.train.steps > 0)
        return c->spec.train.steps;
    return (int64_t)c->spec.train.epochs * c->batches_per_epoch;
}

double mg_classifier_epoch(const mg_classifier *c)
{
    return (double)c->step / (double)c->batches_per_epoch;
}

/* This rank's rows of minibatch `step` and their labels, by the epoch's permutation. */
static void gather(mg_classifier *c)
{
    const int64_t epoch = c->step / c->batches_per_epoch, pos = c->step % c->batches_per_epoch;
    if (epoch != c->perm_epoch) {
        mg_rng_key key = {.seed = c->spec.seed,
                          .stream = mg_rng_stream(MG_STREAM_PERMUTATION, NET_C),
                          .step = (uint64_t)epoch};
        mg_rng_permutation(c->perm, (uint32_t)c->data->n, &key);
        c->perm_epoch = epoch;
    }
    const size_t dim = c->data->dim;
    const uint32_t *idx = c->perm + pos * c->batch + (int64_t)c->rank * c->rows;
    for (int i = 0; i < c->rows; i++) {
        mg_dataset_row(c->data, idx[i], c->x + i * dim);
        c->y[i] = c->data->labels[idx[i]];
    }
}

void mg_classifier_step(mg_classifier *c, mg_classifier_stats *s)
{
    memset(s, 0, sizeof *s);
    c->mark = mg_comm_wtime();
    gather(c);
    lap(c, MG_CTIMER_DATA);
    const mg_rng_key key = {.seed = c->spec.seed,
                            .stream = mg_rng_stream(MG_STREAM_DROPOUT, NET_C * MG_MAX_LAYERS),
                            .step = (uint64_t)c->step};
    const mg_dropout drop = {.key = key, .row_id = c->row_id, .groups = 1};
    mg_net_forward(&c->net, c->x, c->rows, &drop);
    int correct = 0;
    const double loss = mg_loss_softmax(c->dlogit, mg_net_logits(&c->net), c->y, c->rows,
                                        c->spec.classes, c->batch, &correct);
    mg_net_backward(&c->net, NULL, c->dlogit, 0, c->rows,
                    MG_BACKWARD_FROM_LOGITS | MG_BACKWARD_SET_GRADS);
    mg_real *slot = c->net.grads + c->net.n_params;
    slot[SLOT_LOSS] = (mg_real)loss;
    slot[SLOT_CORRECT] = (mg_real)correct;
    slot[SLOT_STOP] = c->stop_request ? 1 : 0;
    slot[3] = 0;
    lap(c, MG_CTIMER_COMPUTE);
    /* The blocking sum; every wait in it is watched (train.stall_seconds, comm.h). */
    mg_comm_waiting_for(c->comm, "the classifier's gradient sum of step %lld",
                        (long long)c->step + 1);
    mg_reducer_sum(c->sum);
    lap(c, MG_CTIMER_REDUCE);
    s->loss = slot[SLOT_LOSS] / c->batch;
    s->accuracy = slot[SLOT_CORRECT] / c->batch;
    s->stop = slot[SLOT_STOP] > 0;
    /* The summed gradients are the same on every rank: every rank decides alike. */
    const int finite = mg_reducer_shared(c->sum)
                           ? mg_reducer_finite(c->sum)
                           : mg_all_finite(c->net.grads, c->net.n_params + MG_STATS_SLOTS);
    if (!finite) {
        s->nonfinite = 1;
        c->skipped++;
    } else {
        /* The momentum schedule's epochs: those done when the step began. */
        if (!mg_optim_step(&c->opt, c->net.params, c->net.grads, c->step / c->batches_per_epoch))
            s->bad_params = 1;
        mg_net_constrain(&c->net);
    }
    c->step++;
    lap(c, MG_CTIMER_UPDATE);
}

int mg_classifier_check_replicas(const mg_classifier *c, mg_error *err)
{
    mg_comm_waiting_for(c->comm, "the classifier's replica check of step %lld",
                        (long long)c->step);
    if (mg_comm_all_same(c->comm, mg_net_checksum(&c->net)))
        return 0;
    return mg_fail(err, "step %lld: the classifier's parameters differ between ranks (replicas "
                        "drifted apart); stopping",
                   (long long)c->step);
}

void mg_classifier_broadcast_state(mg_classifier *c)
{
    mg_comm_waiting_for(c->comm, "the broadcast of the resumed classifier");
    mg_comm_bcast(c->comm, c->net.params, c->net.n_params * sizeof(mg_real), 0);
    if (c->net.n_state)
        mg_comm_bcast(c->comm, c->net.state, c->net.n_state * sizeof(mg_real), 0);
    mg_comm_bcast(c->comm, c->opt.m, c->opt.n * sizeof *c->opt.m, 0);
    if (c->opt.v)
        mg_comm_bcast(c->comm, c->opt.v, c->opt.n * sizeof *c->opt.v, 0);
    mg_comm_bcast(c->comm, &c->opt.t, sizeof c->opt.t, 0);
    mg_comm_bcast(c->comm, &c->step, sizeof c->step, 0);
}

/* ---- outside training: evaluation mode, chunks over the ranks ---- */

/* This rank's examples [lo, hi) of n: whole chunks, as mg_generate splits its samples. */
static void my_rows(int64_t n, const mg_comm *comm, int64_t *lo, int64_t *hi)
{
    const int rank = mg_comm_rank(comm), size = mg_comm_size(comm);
    const int64_t chunks = (n + MG_CLASSIFIER_CHUNK - 1) / MG_CLASSIFIER_CHUNK;
    *lo = chunks * rank / size * MG_CLASSIFIER_CHUNK;
    const int64_t end = chunks * (rank + 1) / size * MG_CLASSIFIER_CHUNK;
    *hi = end < n ? end : n;
}

double mg_classifier_accuracy(mg_net *net, const mg_dataset *ds, const mg_comm *comm)
{
    int64_t lo, hi;
    my_rows(ds->n, comm, &lo, &hi);
    const size_t dim = ds->dim;
    const int classes = net->out_dim;
    mg_real *x = mg_xmalloc((size_t)MG_CLASSIFIER_CHUNK * dim * sizeof *x);
    /* OpenBLAS's sums depend on its thread count, which depends on the ranks per node. */
    const int threads = mg_blas_set_threads(1);
    double correct = 0;
    for (int64_t i = lo; i < hi; i += MG_CLASSIFIER_CHUNK) {
        const int m = (int)(hi - i < MG_CLASSIFIER_CHUNK ? hi - i : MG_CLASSIFIER_CHUNK);
        for (int r = 0; r < m; r++)
            mg_dataset_row(ds, (size_t)(i + r), x + (size_t)r * dim);
        mg_net_forward(net, x, m, NULL);
        int right;
        mg_loss_softmax(NULL, mg_net_logits(net), ds->labels + i, m, classes, 1, &right);
        correct += right;
    }
    mg_blas_set_threads(threads);
    free(x);
    mg_comm_waiting_for(comm, "the classifier's accuracy on %d examples", ds->n);
    mg_comm_allreduce_double(comm, &correct, 1); /* counts: exact in double */
    return ds->n > 0 ? correct / ds->n : 0;
}

void mg_classifier_apply(mg_net *net, const mg_real *x, int64_t n, mg_real *prob, mg_real *feat)
{
    const int last = net->n_layers - 1, classes = net->out_dim;
    const size_t nf = (size_t)net->layer[last].in, dim = (size_t)net->in_dim;
    for (int64_t i = 0; i < n; i += MG_CLASSIFIER_CHUNK) {
        const int m = (int)(n - i < MG_CLASSIFIER_CHUNK ? n - i : MG_CLASSIFIER_CHUNK);
        mg_net_forward(net, x + (size_t)i * dim, m, NULL);
        if (prob)
            mg_softmax_rows(prob + (size_t)i * classes, mg_net_logits(net), m, classes);
        /* The last layer's input: in evaluation mode (no dropout) the layer before's output. */
        if (feat)
            memcpy(feat + (size_t)i * nf, net->x[last], (size_t)m * nf * sizeof *feat);
    }
}

void mg_classifier_outputs(mg_real *prob, mg_real *feat, mg_net *net, const mg_real *x, int64_t n,
                           const mg_comm *comm, int root)
{
    int64_t lo, hi;
    my_rows(n, comm, &lo, &hi);
    const int classes = net->out_dim;
    const size_t nf = (size_t)net->layer[net->n_layers - 1].in, dim = (size_t)net->in_dim;
    const size_t rows = (size_t)(hi - lo);
    mg_real *my_p = mg_xmalloc((rows * classes + 1) * sizeof *my_p);
    mg_real *my_f = mg_xmalloc((rows * nf + 1) * sizeof *my_f);
    /* OpenBLAS's sums depend on its thread count, which depends on the ranks per node. */
    const int threads = mg_blas_set_threads(1);
    mg_classifier_apply(net, x + (size_t)lo * dim, (int64_t)rows, my_p, my_f);
    mg_blas_set_threads(threads);
    mg_comm_waiting_for(comm, "the classifier's outputs of %lld examples", (long long)n);
    mg_comm_gather(comm, my_p, rows * classes * sizeof *my_p, prob, root);
    mg_comm_gather(comm, my_f, rows * nf * sizeof *my_f, feat, root);
    free(my_p);
    free(my_f);
}
