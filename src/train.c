#include "mpigan/train.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpigan/fpe.h"

const char *const mg_nonfinite_names[] = {
    [MG_NONFINITE_STOP] = "stop",
    [MG_NONFINITE_SKIP] = "skip",
    [MG_NONFINITE_SKIP + 1] = NULL,
};
const char *const mg_mode_names[] = {
    [MG_MODE_ALTERNATING] = "alternating",
    [MG_MODE_SIMULTANEOUS] = "simultaneous",
    [MG_MODE_SIMULTANEOUS + 1] = NULL,
};

const char *const mg_timer_names[MG_TIMER_COUNT] = {
    [MG_TIMER_DATA] = "data",
    [MG_TIMER_D_COMPUTE] = "d_compute",
    [MG_TIMER_D_REDUCE] = "d_allreduce",
    [MG_TIMER_G_COMPUTE] = "g_compute",
    [MG_TIMER_G_REDUCE] = "g_allreduce",
    [MG_TIMER_UPDATE] = "update",
    [MG_TIMER_IO] = "io",
    [MG_TIMER_EVAL] = "eval",
    [MG_TIMER_BN_REDUCE] = "bn_allreduce",
    [MG_TIMER_BUCKETS] = "bucket_sums",
    [MG_TIMER_GATHER] = "param_gather",
};

/* Network ids: they key parameter initialisation and dropout streams. */
enum { NET_G = 0, NET_D = 1 };

/* Stats slots at the end of the gradient buffers (see MG_STATS_SLOTS). */
enum { SLOT_LOSS = 0, SLOT_D_REAL = 1, SLOT_D_FAKE = 2, SLOT_STOP = 3 };

/* Charges the time since the last lap (or the start of the step) to timer `which`: a step's
 * phases are timed by one mark, with `lap(t, MG_TIMER_DATA)` after each. */
static void lap(mg_trainer *t, enum mg_timer which)
{
    t->mark += mg_trainer_charge(t, which, t->mark);
}

double mg_trainer_charge(mg_trainer *t, enum mg_timer which, double t0)
{
    const double dt = mg_comm_wtime() - t0;
    t->timer[which] += dt;
    return dt;
}

/* mg_net_init_shape, its message naming the network: "discriminator: layer 2 (h2): ...". */
static int build_net(mg_net *net, const char *name, const mg_net_spec *spec, int c, int h, int w,
                     int rows, int groups, mg_error *err)
{
    if (mg_net_init_shape(net, spec, c, h, w, rows, groups, err) == 0)
        return 0;
    const char *msg = strncmp(err->msg, "network: ", 9) == 0 ? err->msg + 9 : err->msg;
    char copy[MG_ERROR_LEN];
    snprintf(copy, sizeof copy, "%s", msg);
    return mg_fail(err, "%s: %s", name, copy);
}

/* A batch norm's statistics summed over the ranks (mg_sum_fn). Its time goes to its own timer
 * and the step's lap mark moves past it, so the compute phase around it does not count it. */
static void sum_over_ranks(void *arg, double *x, int n)
{
    mg_trainer *t = arg;
    mg_comm_waiting_for(t->comm, "the batch norm statistics of step %lld", (long long)t->step + 1);
    const double t0 = mg_comm_wtime();
    mg_comm_allreduce_double(t->comm, x, (size_t)n);
    t->mark += mg_trainer_charge(t, MG_TIMER_BN_REDUCE, t0);
}

int mg_trainer_pieces(const mg_trainer *t, int net, size_t *lo, size_t *hi)
{
    const mg_net *n = net == MG_NET_D ? &t->d : &t->g;
    if (!t->sharded) {
        lo[0] = 0;
        hi[0] = n->n_params;
        return 1;
    }
    const mg_reducer *r = net == MG_NET_D ? t->d_sum : t->g_sum;
    const int k = mg_reducer_pieces(r);
    for (int i = 0; i < k; i++)
        mg_reducer_piece(r, i, &lo[i], &hi[i]);
    return k;
}

/* The values of this rank's pieces of a network: its optimizer's size. */
static size_t part_size(const mg_trainer *t, int net)
{
    size_t lo[MG_MAX_PIECES], hi[MG_MAX_PIECES], n = 0;
    const int k = mg_trainer_pieces(t, net, lo, hi);
    for (int i = 0; i < k; i++)
        n += hi[i] - lo[i];
    return n;
}

/* The backward pass has written every gradient from `from` on (mg_net.grads_done): buckets
 * start, and those in flight progress. The time goes to its own timer and the lap mark moves
 * past it, so that the compute phase around it does not count it: on one node MPI's progress
 * calls are where the copies and additions of the sums happen. */
static void bucket_ready(mg_trainer *t, mg_reducer *r, size_t from)
{
    const double t0 = mg_comm_wtime();
    mg_reducer_ready(r, from);
    t->mark += mg_trainer_charge(t, MG_TIMER_BUCKETS, t0);
}

static void g_bucket_ready(void *trainer, size_t from)
{
    mg_trainer *t = trainer;
    bucket_ready(t, t->g_sum, from);
}

static void d_bucket_ready(void *trainer, size_t from)
{
    mg_trainer *t = trainer;
    bucket_ready(t, t->d_sum, from);
}

static void g_params_needed(void *trainer, size_t end);
static void d_params_needed(void *trainer, size_t end);

/* net's gradients summed in buckets of about `mb` MB, cut where a layer's parameters start. */
static int buckets_for(mg_trainer *t, mg_reducer *r, mg_net *net, double mb)
{
    size_t cuts[MG_MAX_LAYERS];
    int n = 0;
    const double target = mb * (1 << 20) / sizeof(mg_real);
    size_t top = net->n_params; /* the bucket being filled ends here */
    for (int l = net->n_layers - 1; l > 0; l--) {
        const size_t start = net->layer[l].w_off;
        if ((double)(top - start) >= target && start > 0) {
            cuts[n++] = start;
            top = start;
        }
    }
    for (int i = 0; i < n / 2; i++) { /* ascending */
        const size_t c = cuts[i];
        cuts[i] = cuts[n - 1 - i];
        cuts[n - 1 - i] = c;
    }
    if (!mg_reducer_buckets(r, MG_STATS_SLOTS, cuts, n))
        return 0;
    net->grads_done = net == &t->g ? g_bucket_ready : d_bucket_ready;
    net->grads_done_arg = t;
    return 1;
}

/* Rank 0's parameters and running averages to every rank (with a sharded update, through the
 * reducer, which knows where the parameters live). */
static void broadcast_net(const mg_trainer *t, mg_net *net)
{
    if (t->sharded)
        mg_reducer_bcast_params(net == &t->d ? t->d_sum : t->g_sum, 0);
    else
        mg_comm_bcast(t->comm, net->params, net->n_params * sizeof(mg_real), 0);
    if (net->n_state)
        mg_comm_bcast(t->comm, net->state, net->n_state * sizeof(mg_real), 0);
}

int mg_trainer_init(mg_trainer *t, const mg_gan_spec *spec, const mg_dataset *data,
                    const mg_comm *comm, mg_error *err)
{
    memset(t, 0, sizeof *t);
    t->spec = *spec;
    const mg_gan_spec *cfg = spec;
    t->comm = comm;
    t->data = data;
    t->rank = mg_comm_rank(comm);
    t->nranks = mg_comm_size(comm);
    t->batch = cfg->train.batch_size;
    t->perm_epoch = -1;
    if ((t->trap_fpe = mg_fpe_traps_wanted(err)) < 0)
        return -1;

    const int n_g = cfg->generator.net.n_layers;
    const mg_layer_spec *g_out = &cfg->generator.net.layers[n_g - 1];
    if (t->batch % t->nranks != 0)
        return mg_fail(err,
                       "train.batch_size %d does not split over %d ranks: use a multiple of the "
                       "rank count",
                       t->batch, t->nranks);
    if (data->n < t->batch)
        return mg_fail(err, "the training split has %d examples, fewer than one batch of %d",
                       data->n, t->batch);
    if (g_out->op == MG_OP_DENSE && (size_t)g_out->units != data->dim)
        return mg_fail(err,
                       "generator.layers.%d.units is %d but the data has %zu values per "
                       "example (%dx%dx%d)",
                       n_g - 1, g_out->units, data->dim, data->channels,
                       data->height, data->width);
    if (cfg->classes > 0 && !data->labels)
        return mg_fail(err, "conditional.enabled: the training split has no labels");
    if (cfg->classes > 0 && data->classes != cfg->classes)
        return mg_fail(err, "conditional.enabled: the training split's labels count %d classes, "
                            "the conditional GAN %d",
                       data->classes, cfg->classes);
    t->rows = t->batch / t->nranks;
    t->batches_per_epoch = data->n / t->batch;
    /* Alternating steps run G forward once for the fakes of all k D updates and of the G update
     * (G does not change until the G update), so G holds (k + 1) blocks of rows. */
    t->phases = cfg->train.mode == MG_MODE_SIMULTANEOUS ? 1 : cfg->train.k + 1;

    /* G sees its noise as (noise_dim, 1, 1), D the data's (C, H, W). Batch norm statistics are
     * kept per group of rows: each of G's phases, and D's real and fake rows, is a batch of its
     * own, as in separate passes (PyTorch's DCGAN runs D on the real and the fake batch apart).
     * A conditional G takes (noise_dim + classes, 1, 1); a conditional D the example and the
     * label flat (dim + classes, 1, 1) when its first layer is dense, else the label as constant
     * maps after the channels (C + classes, H, W) (labels.h). */
    const int classes = cfg->classes;
    const int d_flat = cfg->discriminator.net.layers[0].op == MG_OP_DENSE;
    t->g_in = cfg->generator.noise_dim + classes;
    t->label_plane = d_flat ? 1 : (size_t)data->height * data->width;
    t->d_in = data->dim + (size_t)classes * t->label_plane;
    const int d_c = classes && d_flat ? (int)t->d_in : data->channels + classes;
    const int d_h = classes && d_flat ? 1 : data->height, d_w = classes && d_flat ? 1 : data->width;
    if (build_net(&t->g, "generator", &cfg->generator.net, t->g_in, 1, 1, t->phases * t->rows,
                  t->phases, err) ||
        build_net(&t->d, "discriminator", &cfg->discriminator.net, d_c, d_h, d_w, 2 * t->rows, 2,
                  err)) {
        mg_trainer_free(t);
        return -1;
    }
    if ((size_t)t->g.out_dim != data->dim) {
        const mg_layer *L = &t->g.layer[n_g - 1];
        mg_fail(err,
                "the generator's last layer (%s) makes %d values per example (%dx%dx%d), but the "
                "data has %zu (%dx%dx%d)",
                L->spec.name, t->g.out_dim, L->out_c, L->out_h, L->out_w, data->dim,
                data->channels, data->height, data->width);
        mg_trainer_free(t);
        return -1;
    }
    if (t->d.out_dim != 1) {
        const mg_layer *L = &t->d.layer[t->d.n_layers - 1];
        mg_fail(err,
                "the discriminator's last layer (%s) makes %d values per example (%dx%dx%d), not "
                "1: its convolution must end at 1x1",
                L->spec.name, t->d.out_dim, L->out_c, L->out_h, L->out_w);
        mg_trainer_free(t);
        return -1;
    }
    t->g.keep_in = classes;
    t->d.keep_in = (int)((size_t)classes * t->label_plane);
    /* Batch norms with sync sum their statistics over the ranks: the global batch's. */
    if (t->nranks > 1) {
        t->g.sum = t->d.sum = sum_over_ranks;
        t->g.sum_arg = t->d.sum_arg = t;
    }

    mg_comm_watch(comm, cfg->train.stall_seconds);
    mg_comm_waiting_for(comm, "the set-up of the networks");
    /* The gradients live in the reducers' buffers: the networks' own, or with shared sums their
     * slots in the node's window, so the backward passes write straight where the sum reads them
     * (the networks' own gradient buffers then stay untouched, never paged in). */
    const int shared = cfg->train.shared_allreduce, node = cfg->train.node_ranks;
    t->g_sum = mg_reducer_new(comm, t->g.n_params + MG_STATS_SLOTS, shared, node, t->g.grads);
    t->d_sum = mg_reducer_new(comm, t->d.n_params + MG_STATS_SLOTS, shared, node, t->d.grads);
    t->g.grads = mg_reducer_buffer(t->g_sum);
    t->d.grads = mg_reducer_buffer(t->d_sum);
    /* A sharded update: each rank keeps optimizer state for its part of the parameters alone,
     * and with shared sums the node's ranks share one copy of the parameters (comm.h). */
    /* Buckets for sums through MPI (comm.h): cut at layer boundaries from the top, each about
     * train.bucket_mb; the backward passes start them as they finish them. */
    t->bucketed = 0;
    t->bucket_mb = 0;
    double bucket_mb = cfg->train.bucket_mb;
    int node_size = mg_comm_node_size(comm);
    if (node > 0 && node < node_size)
        node_size = node;
    if (bucket_mb == MG_BUCKETS_AUTO)
        bucket_mb = node_size < t->nranks ? MG_BUCKETS_AUTO_MB : 0;
    if (bucket_mb > 0 && t->nranks > 1) {
        /* (Either may decline: a bucket over MPI's int counts. Then that network's sums run
         * after its pass, and the step with D's sum overlapped, which has no buckets, is out.) */
        const int g = buckets_for(t, t->g_sum, &t->g, bucket_mb);
        const int d = buckets_for(t, t->d_sum, &t->d, bucket_mb);
        t->bucketed = g || d;
        t->bucket_mb = t->bucketed ? bucket_mb : 0;
    }
    if (cfg->train.gradient_bf16) {
        mg_reducer_compress(t->g_sum, MG_STATS_SLOTS, cfg->train.error_feedback);
        mg_reducer_compress(t->d_sum, MG_STATS_SLOTS, cfg->train.error_feedback);
    }
    t->sharded = cfg->train.sharded_update && t->nranks > 1;
    if (t->sharded) {
        t->g.params = mg_reducer_shard(t->g_sum, MG_STATS_SLOTS, t->g.params);
        t->d.params = mg_reducer_shard(t->d_sum, MG_STATS_SLOTS, t->d.params);
        /* (a node with no room for its copy of the parameters sums after the pass) */
        t->bucketed = mg_reducer_bucketed(t->g_sum) || mg_reducer_bucketed(t->d_sum);
        t->bucket_mb = t->bucketed ? t->bucket_mb : 0;
    }
    /* With buckets, the gather of the updated parameters runs into the next forward pass through
     * the network, which waits for each layer's bucket before the layer (train.overlap); not for
     * a network with max column norms, which needs its whole parameters right after the update.
     * With shared sums between nodes a layer's wait is also a node barrier: every rank of the
     * node gathers its pieces into the node's one copy. */
    t->prefetch = 0;
    t->gathering = 0;
    if (t->sharded && t->bucketed && cfg->train.overlap) {
        if (!mg_net_has_constraint(&t->g) && mg_reducer_bucketed(t->g_sum)) {
            t->prefetch |= MG_NET_G;
            t->g.params_needed = g_params_needed;
            t->g.params_needed_arg = t;
        }
        if (!mg_net_has_constraint(&t->d) && mg_reducer_bucketed(t->d_sum)) {
            t->prefetch |= MG_NET_D;
            t->d.params_needed = d_params_needed;
            t->d.params_needed_arg = t;
        }
    }
    if (mg_optim_init(&t->g_opt, &cfg->generator.optim, part_size(t, MG_NET_G), err) ||
        mg_optim_init(&t->d_opt, &cfg->discriminator.optim, part_size(t, MG_NET_D), err)) {
        mg_trainer_free(t);
        return -1;
    }

    const size_t dim = data->dim, rows = (size_t)t->rows;
    t->perm = mg_xmalloc((size_t)data->n * sizeof *t->perm);
    t->reduce = mg_request_new();
    t->row_id = mg_xmalloc(2 * rows * sizeof *t->row_id);
    t->g_row_id = mg_xmalloc((size_t)t->phases * rows * sizeof *t->g_row_id);
    t->z = mg_xmalloc((size_t)t->phases * rows * t->g_in * sizeof *t->z);
    t->xd = mg_xmalloc(2 * rows * t->d_in * sizeof *t->xd);
    t->dlogit = mg_xmalloc(3 * rows * sizeof *t->dlogit);
    t->dx = mg_xmalloc(rows * t->d_in * sizeof *t->dx);
    if (classes) {
        t->g_labels = mg_xmalloc((size_t)t->phases * rows * sizeof *t->g_labels);
        /* The same split on every rank: the same counts, the same draws. */
        if (cfg->fake_labels == MG_LABELS_FREQUENCY) {
            t->label_cum = mg_xmalloc(((size_t)classes + 1) * sizeof *t->label_cum);
            mg_label_cumulative(t->label_cum, data->labels, data->n, classes);
        }
    }

    /* This rank's rows sit where a single rank would have them: real rows 0..B-1, then fake rows
     * B..2B-1 of the global batch. Noise and dropout masks are keyed by these ids. */
    for (size_t i = 0; i < rows; i++) {
        t->row_id[i] = (uint64_t)t->rank * rows + i;
        t->row_id[rows + i] = (uint64_t)t->batch + (uint64_t)t->rank * rows + i;
    }
    /* G's rows: fake row i of phase p is (p, global fake row id), which keys its dropout mask
     * alike whether G runs the phases in one pass or one at a time. */
    for (int p = 0; p < t->phases; p++)
        for (size_t i = 0; i < rows; i++)
            t->g_row_id[(size_t)p * rows + i] = ((uint64_t)p << 40) | t->row_id[rows + i];

    if (t->rank == 0) {
        mg_net_init_params(&t->g, cfg->seed, NET_G);
        mg_net_init_params(&t->d, cfg->seed, NET_D);
        if (cfg->generator.output_bias_from_data) {
            double *mean = mg_xmalloc(dim * sizeof *mean);
            mg_dataset_pixel_mean(data, mean);
            mg_net_bias_from_mean(&t->g, mean);
            free(mean);
        }
    }
    broadcast_net(t, &t->g);
    broadcast_net(t, &t->d);
    return 0;
}

static void free_whole(mg_optim **w);

void mg_trainer_free(mg_trainer *t)
{
    if (t->g_sum) /* no request may outlive its buffers */
        mg_trainer_settle(t);
    free_whole(&t->whole_g);
    free_whole(&t->whole_d);
    mg_net_free(&t->g);
    mg_net_free(&t->d);
    mg_optim_free(&t->g_opt);
    mg_optim_free(&t->d_opt);
    free(t->perm);
    free(t->row_id);
    free(t->g_row_id);
    free(t->z);
    free(t->xd);
    free(t->dlogit);
    free(t->dx);
    free(t->g_labels);
    free(t->label_cum);
    mg_request_free(t->reduce);
    mg_reducer_free(t->g_sum);
    mg_reducer_free(t->d_sum);
    memset(t, 0, sizeof *t);
}

int64_t mg_trainer_total_steps(const mg_trainer *t)
{
    if (t->spec.train.steps > 0)
        return t->spec.train.steps;
    int64_t batches = (int64_t)t->spec.train.epochs * t->batches_per_epoch;
    int64_t per_step = t->spec.train.mode == MG_MODE_SIMULTANEOUS ? 1 : t->spec.train.k;
    return (batches + per_step - 1) / per_step;
}

double mg_trainer_epoch(const mg_trainer *t)
{
    return (double)t->minibatch / (double)t->batches_per_epoch;
}

/* The `phase` of a step tells its RNG draws apart: D update j has phase j, the G update phase k. */
static mg_rng_key step_key(const mg_trainer *t, enum mg_stream_kind kind, uint32_t sub)
{
    return (mg_rng_key){.seed = t->spec.seed, .stream = mg_rng_stream(kind, sub), .step = (uint64_t)t->step};
}

static mg_dropout dropout_for(const mg_trainer *t, int net, int phase, const uint64_t *row_id,
                              int groups)
{
    uint32_t sub = (uint32_t)((phase * 2 + net) * MG_MAX_LAYERS);
    return (mg_dropout){.key = step_key(t, MG_STREAM_DROPOUT, sub), .row_id = row_id,
                        .groups = groups};
}

/* z for this rank's fake rows of a phase, drawn by global row id, into block `phase` of z; for a
 * conditional G each row's label too, from its own stream keyed alike, one-hot after the noise. */
static void draw_noise(mg_trainer *t, int phase)
{
    const int nz = t->spec.generator.noise_dim, classes = t->spec.classes;
    const mg_rng_key key = step_key(t, MG_STREAM_NOISE, (uint32_t)phase);
    const mg_rng_key label_key = step_key(t, MG_STREAM_LABELS, (uint32_t)phase);
    mg_real *z = t->z + (size_t)phase * t->rows * t->g_in; // (rows, g_in)
    for (int i = 0; i < t->rows; i++) {
        const uint64_t row = t->row_id[t->rows + i];
        mg_rng_prior(z + (size_t)i * t->g_in, (size_t)nz, t->spec.generator.prior, &key, row);
        if (!classes)
            continue;
        const int32_t label = mg_label_draw(&label_key, row, classes, t->label_cum);
        t->g_labels[(size_t)phase * t->rows + i] = label;
        mg_label_planes(z + (size_t)i * t->g_in + nz, label, classes, 1);
    }
}

void mg_trainer_generate_labeled(mg_trainer *t, const mg_real *z, const int32_t *labels, int n,
                                 mg_real *out)
{
    const int nz = t->spec.generator.noise_dim, classes = t->spec.classes;
    const size_t dim = (size_t)t->g.out_dim;
    for (int i = 0; i < n; i += t->rows) {
        int rows = n - i < t->rows ? n - i : t->rows;
        const mg_real *in = z + (size_t)i * nz; // (rows, g_in)
        if (classes) { /* t->z is free between steps */
            mg_label_join(t->z, in, rows, (size_t)nz, labels + i, classes, 1);
            in = t->z;
        }
        const mg_real *x = mg_net_forward(&t->g, in, rows, NULL);
        memcpy(out + (size_t)i * dim, x, (size_t)rows * dim * sizeof *out);
    }
}

void mg_trainer_generate(mg_trainer *t, const mg_real *z, int n, mg_real *out)
{
    mg_trainer_generate_labeled(t, z, NULL, n, out);
}

/* This rank's real rows of the next minibatch into xd[0 .. rows). The order is one permutation of
 * the training split per epoch, the same on every rank. */
static void gather_real(mg_trainer *t, int64_t minibatch)
{
    const int64_t epoch = minibatch / t->batches_per_epoch;
    const int64_t pos = minibatch % t->batches_per_epoch;
    if (epoch != t->perm_epoch) {
        mg_rng_key key = {.seed = t->spec.seed,
                          .stream = mg_rng_stream(MG_STREAM_PERMUTATION, 0),
                          .step = (uint64_t)epoch};
        mg_rng_permutation(t->perm, (uint32_t)t->data->n, &key);
        t->perm_epoch = epoch;
    }
    const size_t dim = t->data->dim, d_in = t->d_in;
    const uint32_t *idx = t->perm + pos * t->batch + (int64_t)t->rank * t->rows;
    for (int i = 0; i < t->rows; i++) {
        mg_dataset_row(t->data, idx[i], t->xd + i * d_in);
        if (t->spec.classes) /* the example's own label, by the same permutation */
            mg_label_planes(t->xd + i * d_in + dim, t->data->labels[idx[i]], t->spec.classes,
                            t->label_plane);
    }
}

/* G's forward pass on the noise of phases [phase, phase + n), rows from 0; returns G(z) of them,
 * (n rows, dim). One dropout key serves the whole step: rows tell the phases apart. */
static const mg_real *generate(mg_trainer *t, int phase, int n)
{
    const size_t at = (size_t)phase * t->rows;
    mg_dropout gdrop = dropout_for(t, NET_G, 0, t->g_row_id + at, n);
    const mg_real *fake = mg_net_forward(&t->g, t->z + at * t->g_in, n * t->rows, &gdrop);
    assert(!(t->gathering & MG_NET_G)); /* the pass waited for every bucket of G */
    return fake;
}

/* Fakes (rows, dim) of `phase` into D's input after the real rows: xd[rows .. 2 rows), with the
 * labels G made them for. */
static void set_fakes(mg_trainer *t, const mg_real *fake, int phase)
{
    mg_real *xf = t->xd + (size_t)t->rows * t->d_in; // (rows, d_in)
    if (!t->spec.classes) {
        memcpy(xf, fake, (size_t)t->rows * t->data->dim * sizeof(mg_real));
        return;
    }
    mg_label_join(xf, fake, t->rows, t->data->dim, t->g_labels + (size_t)phase * t->rows,
                  t->spec.classes, t->label_plane);
}

/* Only the stats slots: each step runs one backward pass per net, with MG_BACKWARD_SET_GRADS, so
 * that pass writes every weight gradient (a 10 MB memset for G saved). */
static void zero_grads(mg_net *net)
{
    memset(net->grads + net->n_params, 0, MG_STATS_SLOTS * sizeof *net->grads);
}

/* Gradients of D's loss on [real; fake] rows, written into D's grads; stats into the slots. */
static void d_gradients(mg_trainer *t, int phase)
{
    const int rows = t->rows;
    mg_dropout ddrop = dropout_for(t, NET_D, phase, t->row_id, 2);
    mg_net_forward(&t->d, t->xd, 2 * rows, &ddrop);
    assert(!(t->gathering & MG_NET_D)); /* the pass waited for every bucket of D */
    const mg_real *logit = mg_net_logits(&t->d); // (2 rows, 1)
    double d_real = 0, d_fake = 0;
    double loss = mg_loss_d(t->dlogit, t->dlogit + rows, logit, logit + rows, rows, t->batch,
                            &d_real, &d_fake);
    mg_net_backward(&t->d, NULL, t->dlogit, 0, 2 * rows,
                    MG_BACKWARD_FROM_LOGITS | MG_BACKWARD_SET_GRADS);
    mg_real *slot = t->d.grads + t->d.n_params;
    slot[SLOT_LOSS] = (mg_real)loss;
    slot[SLOT_D_REAL] = (mg_real)d_real;
    slot[SLOT_D_FAKE] = (mg_real)d_fake;
}

/* Gradient of G's loss through D. D's activations for the fake rows must be those of a forward
 * pass whose fake rows start at row `row0`, and G's those of a pass whose rows start at `g_row0`;
 * D's weights get no gradient. */
static void g_gradients(mg_trainer *t, int row0, int g_row0, mg_real *dlogit)
{
    const int rows = t->rows;
    const mg_real *logit = mg_net_logits(&t->d) + row0; // (rows, 1)
    double loss = mg_loss_g(dlogit, logit, rows, t->spec.train.generator_loss, t->batch);
    mg_net_backward(&t->d, t->dx, dlogit, row0, rows,
                    MG_BACKWARD_FROM_LOGITS | MG_BACKWARD_NO_WEIGHTS);
    if (t->spec.classes) /* G made the example part of D's input, not the label */
        mg_rows_head(t->dx, t->dx, rows, t->data->dim, t->d_in);
    mg_net_backward(&t->g, NULL, t->dx, g_row0, rows, MG_BACKWARD_SET_GRADS);
    t->g.grads[t->g.n_params + SLOT_LOSS] = (mg_real)loss;
    t->g.grads[t->g.n_params + SLOT_STOP] = t->stop_request ? 1 : 0;
}

/* The reducer that sums a network's gradients. */
static mg_reducer *sum_of(const mg_trainer *t, const mg_net *net)
{
    return net == &t->d ? t->d_sum : t->g_sum;
}

/* What the ranks wait for while they sum a network's gradients (a stall report's text). */
static void waiting_for_sum(const mg_trainer *t, const mg_net *net)
{
    mg_comm_waiting_for(t->comm, "the %s gradient sum of step %lld", net == &t->d ? "D" : "G",
                        (long long)t->step + 1);
}

/* The blocking sum; every wait in it is watched (train.stall_seconds, comm.h). */
static void reduce(mg_trainer *t, mg_net *net, enum mg_timer timer)
{
    waiting_for_sum(t, net);
    if (t->sharded)
        mg_reducer_scatter(sum_of(t, net)); /* this rank's part, and the statistics */
    else
        mg_reducer_sum(sum_of(t, net));
    lap(t, timer);
}

static void read_d_stats(const mg_trainer *t, mg_step_stats *s)
{
    const mg_real *slot = t->d.grads + t->d.n_params;
    s->d_loss = slot[SLOT_LOSS] / t->batch;
    s->d_real = slot[SLOT_D_REAL] / t->batch;
    s->d_fake = slot[SLOT_D_FAKE] / t->batch;
}

static void read_g_stats(const mg_trainer *t, mg_step_stats *s)
{
    s->g_loss = t->g.grads[t->g.n_params + SLOT_LOSS] / t->batch;
    s->stop = t->g.grads[t->g.n_params + SLOT_STOP] > 0;
}

static void update_finish(mg_trainer *t, mg_net *net, mg_step_stats *s);

/* A stall report's text for the gather of net's updated parameters (of the step that made them). */
static void waiting_for_gather(const mg_trainer *t, const mg_net *net)
{
    mg_comm_waiting_for(t->comm, "the %s parameter gather of step %lld", net == &t->d ? "D" : "G",
                        t->gather_step[net == &t->d]);
}

/* The allreduced gradients are the same on every rank, so every rank makes the same choice
 * without a message. A network whose gradients (or loss) hold NaN or Inf is not updated. With a
 * sharded update this starts the gather of the updated parameters; update_finish waits for it,
 * or with t->prefetch the next forward pass through net does, layer by layer (params_needed). */
static void update(mg_trainer *t, mg_optim *opt, mg_net *net, mg_step_stats *s)
{
    mg_reducer *sum = sum_of(t, net);
    const int bit = net == &t->d ? MG_NET_D : MG_NET_G;
    /* A shared or sharded sum checked its values as it made them; otherwise one pass. */
    const int finite = mg_reducer_shared(sum) || t->sharded
                           ? mg_reducer_finite(sum)
                           : mg_all_finite(net->grads, net->n_params + MG_STATS_SLOTS);
    if (!finite) {
        s->nonfinite |= bit;
        t->skipped++;
    } else if (!t->sharded) {
        if (!mg_optim_step(opt, net->params, net->grads, t->step_epochs))
            s->bad_params |= bit;
        mg_net_constrain(net);
    } else {
        /* This rank's part, then every part to every rank. */
        size_t lo[MG_MAX_PIECES], hi[MG_MAX_PIECES];
        const int k = mg_trainer_pieces(t, bit, lo, hi);
        const int ok = mg_optim_step_pieces(opt, net->params, net->grads, lo, hi, k,
                                            t->step_epochs);
        lap(t, MG_TIMER_UPDATE);
        t->gather_step[bit == MG_NET_D] = t->step + 1;
        waiting_for_gather(t, net);
        mg_reducer_gather_start(sum, ok);
        t->gathering |= bit;
        if (t->prefetch & bit) {
            /* Only the verdict now: the step must know it. */
            if (!mg_reducer_gather_verdict(sum))
                s->bad_params |= bit;
            lap(t, MG_TIMER_GATHER);
            return;
        }
        lap(t, MG_TIMER_GATHER);
        update_finish(t, net, s);
        return;
    }
    lap(t, MG_TIMER_UPDATE);
}

/* The end of update's gather (its verdict into s, if not taken yet); max column norms
 * after it, each rank of a node's shared copy taking its columns. */
static void update_finish(mg_trainer *t, mg_net *net, mg_step_stats *s)
{
    const int bit = net == &t->d ? MG_NET_D : MG_NET_G;
    if (!(t->gathering & bit))
        return;
    t->gathering &= ~bit;
    mg_reducer *sum = sum_of(t, net);
    waiting_for_gather(t, net);
    if (!mg_reducer_gather_finish(sum) && s)
        s->bad_params |= bit;
    lap(t, MG_TIMER_GATHER);
    if (mg_net_has_constraint(net)) {
        int part, parts;
        mg_reducer_share_of(sum, &part, &parts);
        mg_net_constrain_part(net, part, parts);
        mg_reducer_sync(sum);
    }
    lap(t, MG_TIMER_UPDATE);
}

/* Before each layer of a forward pass through net (nn.h params_needed): the buckets of the
 * layer's parameters are waited for, the later ones driven on. The wait is charged to
 * param_gather, not to the phase the pass belongs to. */
static void params_needed(mg_trainer *t, mg_net *net, size_t end)
{
    const int bit = net == &t->d ? MG_NET_D : MG_NET_G;
    if (!(t->gathering & bit))
        return;
    const double t0 = mg_comm_wtime();
    waiting_for_gather(t, net);
    if (mg_reducer_gather_wait(sum_of(t, net), end))
        t->gathering &= ~bit;
    t->mark += mg_trainer_charge(t, MG_TIMER_GATHER, t0);
}

static void g_params_needed(void *trainer, size_t end)
{
    mg_trainer *t = trainer;
    params_needed(t, &t->g, end);
}

static void d_params_needed(void *trainer, size_t end)
{
    mg_trainer *t = trainer;
    params_needed(t, &t->d, end);
}

void mg_trainer_settle(mg_trainer *t)
{
    if (!t->gathering)
        return;
    t->mark = mg_comm_wtime();
    update_finish(t, &t->g, NULL);
    update_finish(t, &t->d, NULL);
}

/* D update `phase` on the fakes G made for it. */
static void d_update(mg_trainer *t, int phase, const mg_real *fake, mg_step_stats *s)
{
    gather_real(t, t->minibatch);
    set_fakes(t, fake, phase);
    lap(t, MG_TIMER_DATA);
    zero_grads(&t->d);
    d_gradients(t, phase);
    lap(t, MG_TIMER_D_COMPUTE);
    reduce(t, &t->d, MG_TIMER_D_REDUCE);
    read_d_stats(t, s);
    update(t, &t->d_opt, &t->d, s);
    t->minibatch++;
}

/* The G update on the fakes G made for it, rows [g_row0, g_row0 + rows) of G's last pass. */
static void g_update(mg_trainer *t, const mg_real *fake, int g_row0, mg_step_stats *s)
{
    const int k = t->spec.train.k;
    mg_dropout ddrop = dropout_for(t, NET_D, k, t->row_id + t->rows, 1);
    if (t->spec.classes) { /* D's fake half is free: the D updates of the step are done */
        set_fakes(t, fake, k);
        fake = t->xd + (size_t)t->rows * t->d_in;
    }
    mg_net_forward(&t->d, fake, t->rows, &ddrop);
    assert(!(t->gathering & MG_NET_D));
    zero_grads(&t->g);
    g_gradients(t, 0, g_row0, t->dlogit);
    lap(t, MG_TIMER_G_COMPUTE);
    reduce(t, &t->g, MG_TIMER_G_REDUCE);
    read_g_stats(t, s);
    update(t, &t->g_opt, &t->g, s);
}

/* Algorithm 1: k D updates, then the G update. G does not change until its own update, so one
 * forward pass makes the fakes of all k + 1 phases (M = (k + 1) rows in G's GEMMs instead of
 * k + 1 GEMMs of `rows`: one packing of each weight matrix, and larger GEMMs run faster). */
static void alternating_step(mg_trainer *t, mg_step_stats *s)
{
    const int k = t->spec.train.k;
    const size_t block = (size_t)t->rows * t->data->dim;
    for (int p = 0; p <= k; p++)
        draw_noise(t, p);
    lap(t, MG_TIMER_DATA);
    const mg_real *fakes = generate(t, 0, k + 1); // (k + 1 blocks of rows, dim)
    lap(t, MG_TIMER_G_COMPUTE);
    for (int j = 0; j < k; j++)
        d_update(t, j, fakes + (size_t)j * block, s);
    g_update(t, fakes + (size_t)k * block, k * t->rows, s);
}

/* Progress for D's allreduce in flight, between the layers of a forward pass. */
static void drive(void *request)
{
    mg_comm_progress(request);
}

/* Algorithm 1 with D's gradient allreduce overlapped, for sums by MPI: while it is in flight the
 * rank does the next work that does not read D's parameters (the next D step's real rows and
 * fakes, or the G update's fakes), driving MPI's progress after each of G's layers. G therefore
 * runs one phase at a time here, the same rows with the same noise and dropout as
 * alternating_step's single pass. */
static void overlapped_step(mg_trainer *t, mg_step_stats *s)
{
    const int k = t->spec.train.k;
    gather_real(t, t->minibatch);
    for (int p = 0; p <= k; p++)
        draw_noise(t, p);
    lap(t, MG_TIMER_DATA);
    set_fakes(t, generate(t, 0, 1), 0);
    lap(t, MG_TIMER_D_COMPUTE);
    const mg_real *fake = NULL;
    for (int j = 0; j < k; j++) {
        zero_grads(&t->d);
        d_gradients(t, j);
        lap(t, MG_TIMER_D_COMPUTE);
        waiting_for_sum(t, &t->d);
        mg_reducer_start(t->d_sum, t->reduce);
        t->g.progress = drive;
        t->g.progress_arg = t->reduce;
        if (j + 1 < k) {
            gather_real(t, t->minibatch + 1);
            lap(t, MG_TIMER_DATA);
            set_fakes(t, generate(t, j + 1, 1), j + 1);
            lap(t, MG_TIMER_D_COMPUTE);
        } else {
            fake = generate(t, k, 1);
            lap(t, MG_TIMER_G_COMPUTE);
        }
        t->g.progress = NULL;
        mg_comm_finish(t->reduce);
        lap(t, MG_TIMER_D_REDUCE);
        read_d_stats(t, s);
        update(t, &t->d_opt, &t->d, s);
        t->minibatch++;
    }
    g_update(t, fake, 0, s);
}

/* The original code's update: one minibatch, both gradients from the same D forward pass, both
 * networks updated from the parameters they had before it. */
static void simultaneous_update(mg_trainer *t, mg_step_stats *s)
{
    gather_real(t, t->minibatch);
    draw_noise(t, 0);
    lap(t, MG_TIMER_DATA);
    set_fakes(t, generate(t, 0, 1), 0);
    zero_grads(&t->d);
    zero_grads(&t->g);
    d_gradients(t, 0);
    g_gradients(t, t->rows, 0, t->dlogit + 2 * t->rows);
    lap(t, MG_TIMER_D_COMPUTE);
    reduce(t, &t->d, MG_TIMER_D_REDUCE);
    reduce(t, &t->g, MG_TIMER_G_REDUCE);
    read_d_stats(t, s);
    read_g_stats(t, s);
    update(t, &t->d_opt, &t->d, s);
    update(t, &t->g_opt, &t->g, s);
    t->minibatch++;
}

const char *mg_trainer_update_kind(const mg_trainer *t)
{
    if (!t->sharded)
        return "replicated";
    switch (t->prefetch) {
    case MG_NET_G | MG_NET_D:
        return "sharded, gathers prefetched";
    case MG_NET_G:
        return "sharded, G's gathers prefetched (D has max column norms)";
    case MG_NET_D:
        return "sharded, D's gathers prefetched (G has max column norms)";
    default:
        return "sharded";
    }
}

const char *mg_trainer_sums(const mg_trainer *t)
{
    if (t->nranks == 1)
        return "none";
    return mg_reducer_shared(t->g_sum) ? "shared-memory" : "MPI_Allreduce";
}

void mg_trainer_step(mg_trainer *t, mg_step_stats *stats)
{
    stats->nonfinite = stats->bad_params = 0;
    if (t->steps_run++ == 1) /* the first step, and what came after it, done */
        memcpy(t->warm, t->timer, sizeof t->warm);
    t->mark = mg_comm_wtime();
    t->step_epochs = t->minibatch / t->batches_per_epoch;
    if (t->trap_fpe) /* only here: the hot loop is where a NaN starts; I/O and eval are not */
        mg_fpe_traps(1);
    if (t->spec.train.mode == MG_MODE_SIMULTANEOUS) {
        simultaneous_update(t, stats);
    } else if (t->spec.train.overlap && t->nranks > 1 && !mg_reducer_shared(t->d_sum) &&
               !t->sharded && !t->bucketed) {
        overlapped_step(t, stats);
    } else {
        alternating_step(t, stats);
    }
    /* A prefetched gather may still be in flight, for the next forward pass through its
     * network (or mg_trainer_settle) to end: G's after Algorithm 1 (D's ended in the G update's
     * pass through D), both after a simultaneous update; no other. */
    assert((t->gathering & ~t->prefetch) == 0 &&
           (t->spec.train.mode == MG_MODE_SIMULTANEOUS || !(t->gathering & MG_NET_D)));
    t->step++;
    if (t->trap_fpe)
        mg_fpe_traps(0);
}

int mg_trainer_check_replicas(mg_trainer *t, mg_error *err)
{
    mg_trainer_settle(t);
    mg_comm_waiting_for(t->comm, "the replica check of step %lld", (long long)t->step);
    int g_same = mg_comm_all_same(t->comm, mg_net_checksum(&t->g));
    int d_same = mg_comm_all_same(t->comm, mg_net_checksum(&t->d));
    if (g_same && d_same)
        return 0;
    return mg_fail(err,
                   "step %lld: the %s parameters differ between ranks (replicas drifted apart); "
                   "stopping",
                   (long long)t->step,
                   !g_same && !d_same ? "generator and discriminator"
                   : !g_same          ? "generator"
                                      : "discriminator");
}

static void broadcast_optim(const mg_comm *comm, mg_optim *opt)
{
    mg_comm_bcast(comm, opt->m, opt->n * sizeof *opt->m, 0);
    if (opt->v)
        mg_comm_bcast(comm, opt->v, opt->n * sizeof *opt->v, 0);
    mg_comm_bcast(comm, &opt->t, sizeof opt->t, 0);
}

/* One optimizer's whole state on rank 0 (`whole`, NULL elsewhere) from or to every rank's
 * pieces of it (mg_trainer_pieces), which lie one after another in opt. */
static void place_optim(const mg_trainer *t, int net, mg_optim *opt, mg_optim *whole, int scatter)
{
    size_t lo[MG_MAX_PIECES], hi[MG_MAX_PIECES];
    const int k = mg_trainer_pieces(t, net, lo, hi);
    mg_real *arrays[2] = {opt->m, opt->v};
    mg_real *wholes[2] = {whole ? whole->m : NULL, whole ? whole->v : NULL};
    for (int a = 0; a < 2; a++) {
        if (!arrays[a])
            continue;
        size_t at = 0; /* the piece's place in opt */
        for (int i = 0; i < k; i++) {
            const size_t bytes = (hi[i] - lo[i]) * sizeof(mg_real);
            if (scatter)
                mg_comm_scatter_at(t->comm, arrays[a] + at, bytes, lo[i] * sizeof(mg_real),
                                   wholes[a], 0);
            else
                mg_comm_gather_at(t->comm, arrays[a] + at, bytes, lo[i] * sizeof(mg_real),
                                  wholes[a], 0);
            at += hi[i] - lo[i];
        }
    }
    int64_t count = whole && scatter ? whole->t : opt->t;
    mg_comm_bcast(t->comm, &count, sizeof count, 0);
    opt->t = count;
    if (whole)
        whole->t = count;
}

void mg_trainer_whole_optims(mg_trainer *t, int load, mg_optim **g, mg_optim **d)
{
    mg_trainer_settle(t);
    if (!t->sharded) {
        *g = &t->g_opt;
        *d = &t->d_opt;
        return;
    }
    mg_comm_waiting_for(t->comm, "the optimizer state of step %lld", (long long)t->step);
    if (t->rank == 0) {
        t->whole_g = mg_xcalloc(1, sizeof *t->whole_g);
        t->whole_d = mg_xcalloc(1, sizeof *t->whole_d);
        mg_error err;
        if (mg_optim_init(t->whole_g, &t->g_opt.spec, t->g.n_params, &err) ||
            mg_optim_init(t->whole_d, &t->d_opt.spec, t->d.n_params, &err))
            mg_comm_abort(t->comm, 1); /* out of memory on rank 0 alone */
    }
    if (!load) {
        place_optim(t, MG_NET_G, &t->g_opt, t->whole_g, 0);
        place_optim(t, MG_NET_D, &t->d_opt, t->whole_d, 0);
    }
    *g = t->whole_g;
    *d = t->whole_d;
}

static void free_whole(mg_optim **w)
{
    if (*w)
        mg_optim_free(*w);
    free(*w);
    *w = NULL;
}

void mg_trainer_whole_optims_end(mg_trainer *t)
{
    free_whole(&t->whole_g);
    free_whole(&t->whole_d);
}

void mg_trainer_broadcast_state(mg_trainer *t)
{
    mg_trainer_settle(t);
    mg_comm_waiting_for(t->comm, "the broadcast of the resumed state");
    broadcast_net(t, &t->g);
    broadcast_net(t, &t->d);
    if (t->sharded) {
        place_optim(t, MG_NET_G, &t->g_opt, t->whole_g, 1);
        place_optim(t, MG_NET_D, &t->d_opt, t->whole_d, 1);
    } else {
        broadcast_optim(t->comm, &t->g_opt);
        broadcast_optim(t->comm, &t->d_opt);
    }
    int64_t counters[2] = {t->step, t->minibatch};
    mg_comm_bcast(t->comm, counters, sizeof counters, 0);
    t->step = counters[0];
    t->minibatch = counters[1];
}

static void timers_over_ranks(const mg_trainer *t, const double *mine, double *min,
                              double *mean, double *max)
{
    mg_comm_waiting_for(t->comm, "the timers of step %lld", (long long)t->step);
    for (int i = 0; i < MG_TIMER_COUNT; i++) {
        double sum;
        mg_comm_minmaxsum(t->comm, mine[i], &min[i], &max[i], &sum);
        mean[i] = sum / t->nranks;
    }
}

void mg_trainer_timers(const mg_trainer *t, double *min, double *mean, double *max)
{
    timers_over_ranks(t, t->timer, min, mean, max);
}

void mg_trainer_steady_timers(const mg_trainer *t, double *min, double *mean, double *max,
                              int64_t *steps)
{
    double mine[MG_TIMER_COUNT] = {0};
    *steps = t->steps_run > 1 ? t->steps_run - 1 : 0;
    for (int i = 0; i < MG_TIMER_COUNT && *steps; i++)
        mine[i] = t->timer[i] - t->warm[i];
    timers_over_ranks(t, mine, min, mean, max);
}

static size_t optim_values(const mg_optim *opt)
{
    return opt->n * (opt->v ? 2 : 1);
}

size_t mg_trainer_optim_values(const mg_trainer *t)
{
    return optim_values(&t->g_opt) + optim_values(&t->d_opt);
}

size_t mg_trainer_optim_values_whole(const mg_trainer *t)
{
    const size_t per_g = t->g_opt.v ? 2 : 1, per_d = t->d_opt.v ? 2 : 1;
    return t->g.n_params * per_g + t->d.n_params * per_d;
}
