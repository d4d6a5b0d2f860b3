/* The paper's Algorithm 1, data-parallel.
 *
 * Every rank holds replicas of G and D. A step is k discriminator updates, each on a fresh
 * minibatch of real data and fresh noise, then one generator update on fresh noise (or, in
 * simultaneous mode, one minibatch updating both). For each update every rank computes the
 * gradient of its B/N rows of the global minibatch, one allreduce sums them, and every rank applies
 * the same update, so the replicas stay identical. */
#ifndef MPIGAN_TRAIN_H
#define MPIGAN_TRAIN_H

#include <stdint.h>

#include "mpigan/comm.h"
#include "mpigan/dataset.h"
#include "mpigan/error.h"
#include "mpigan/labels.h"
#include "mpigan/nn.h"
#include "mpigan/optim.h"
#include "mpigan/rng.h"

/* ---- specification: what a configuration says about the game and the training loop ---- */

enum mg_nonfinite {
    MG_NONFINITE_STOP, /* NaN or Inf in a gradient: no update, the run stops at that step */
    MG_NONFINITE_SKIP, /* no update of that network at that step; the run goes on */
};

enum mg_mode {
    MG_MODE_ALTERNATING,  /* Algorithm 1: k D steps, then one G step */
    MG_MODE_SIMULTANEOUS, /* the original code: one minibatch, D and G updated together */
};

/* Names as configurations spell them, indexed by the enums and ended by NULL. */
extern const char *const mg_nonfinite_names[];
extern const char *const mg_mode_names[];

typedef struct {
    int noise_dim;
    enum mg_prior prior;
    int output_bias_from_data; /* output bias = logit of the training set's pixel means */
    mg_net_spec net;
    mg_optim_spec optim;
} mg_generator_spec;

typedef struct {
    mg_net_spec net; /* the last layer must be sigmoid with 1 unit */
    mg_optim_spec optim;
} mg_discriminator_spec;

typedef struct {
    int batch_size; /* global minibatch, split evenly over ranks */
    int k;          /* discriminator steps per generator step */
    enum mg_mode mode;
    enum mg_gen_loss generator_loss;
    int epochs;      /* length of the run in passes over the training split ... */
    int64_t steps;   /* ... unless steps > 0: generator updates */
    int check_every; /* steps between cross-rank parameter checksums (0 = never) */
    int log_every;   /* steps between progress lines and metrics records */
    int overlap;     /* D's gradient allreduce runs while G's next forward pass computes */
    int shared_allreduce; /* gradient sums through shared memory inside a node (comm.h) */
    int node_ranks;     /* > 0: every node_ranks consecutive ranks of a node are taken as a node
                           of their own (the path between nodes on one machine); 0: MPI's nodes */
    int sharded_update; /* each rank updates its part of the parameters (ZeRO stage 1, comm.h) */
    double bucket_mb;   /* sums through MPI start in buckets of about this many MB as the backward
                           pass finishes them (0: after the pass; MG_BUCKETS_AUTO: 1 MB when
                           the sums cross nodes, else 0) */
    int gradient_bf16;  /* gradients travel between nodes in bfloat16 (comm.h) ... */
    int error_feedback; /* ... with error feedback */
    enum mg_nonfinite nonfinite; /* what a NaN or Inf in an allreduced gradient does */
    double stall_seconds; /* a wait on other ranks lasting longer: report the late ranks
                             (mg_comm_watch of the trainer's communicator; 0: off) */
} mg_train_spec;

/* train.bucket_mb: auto. Between nodes buckets overlap the network with the backward pass and,
 * with the sharded update, the gathers with the next forward pass, which waits for each layer's
 * bucket: 1 MB (DDP's first bucket) lets a bucket hold one layer of the paper's models; the model
 * of docs/scaling.md puts 1 MB at or above 25 MB for every model, network speed and rank count it
 * tables (MNIST at 512 ranks, 25 Gbit/s: 91.6% against 84.5%). Inside one node "messages" are
 * copies and additions on the cores that run the pass, and buckets measured slower than the ring
 * after it (README, train.bucket_mb). */
#define MG_BUCKETS_AUTO (-1.0)
#define MG_BUCKETS_AUTO_MB 1.0

/* Everything the trainer is built from: plain data, the same on every rank. */
typedef struct {
    uint64_t seed; /* every random number of the run: (seed, stream, step, row) */
    mg_generator_spec generator;
    mg_discriminator_spec discriminator;
    mg_train_spec train;
    int classes;   /* > 0: G and D conditional on the one-hot label of this many classes
                      (labels.h); the training split must carry its labels. 0: unconditional */
    enum mg_label_draw fake_labels; /* how the fake rows' labels are drawn */
} mg_gan_spec;

/* Where the time of a step goes. */
enum mg_timer {
    MG_TIMER_DATA,      /* gathering minibatches, drawing noise */
    MG_TIMER_D_COMPUTE, /* D forward and backward, G forward for D's fake rows */
    MG_TIMER_D_REDUCE,  /* allreduce of D's gradients */
    MG_TIMER_G_COMPUTE, /* G and D forward, backward through D and G */
    MG_TIMER_G_REDUCE,  /* allreduce of G's gradients */
    MG_TIMER_UPDATE,    /* optimizer steps */
    MG_TIMER_IO,        /* checkpoints and sample snapshots (rank 0 writes, the others wait) */
    MG_TIMER_EVAL,      /* Parzen estimates during training (rank 0, the others wait) */
    MG_TIMER_BN_REDUCE, /* batch norm statistics summed over ranks (sync), inside the compute
                           phases, whose timers leave it out */
    MG_TIMER_BUCKETS,   /* inside the backward passes: starting bucket sums and driving MPI's
                           progress of those in flight (train.bucket_mb; the compute timers
                           leave it out): on one node, the copies and additions themselves */
    MG_TIMER_GATHER,    /* a sharded update's exchange of the updated parameters (its arithmetic
                           stays in MG_TIMER_UPDATE) */
    MG_TIMER_COUNT
};
extern const char *const mg_timer_names[MG_TIMER_COUNT];

/* Statistics of one step, means over the global minibatch (of the last D update). */
typedef struct {
    double d_loss;  /* -log D(x) - log(1 - D(G(z))) */
    double g_loss;  /* the generator's loss as configured */
    double d_real;  /* mean D(x) */
    double d_fake;  /* mean D(G(z)) */
    int stop;       /* some rank asked to stop (mg_trainer.stop_request) during this step */
    int nonfinite;  /* NaN or Inf in this step's allreduced gradients: MG_NET_D and/or MG_NET_G
                       bits; that network was not updated */
    int bad_params; /* an update of this step made that network's parameters NaN or Inf (finite
                       gradients, too large a rate): MG_NET_D and/or MG_NET_G bits. Nothing can
                       be saved of it; a run stops */
} mg_step_stats;

enum { MG_NET_D = 1, MG_NET_G = 2 };

typedef struct {
    mg_gan_spec spec;
    const mg_comm *comm;
    const mg_dataset *data; /* the training split, identical on every rank */
    int rank, nranks;
    int batch;              /* global minibatch B */
    int rows;               /* this rank's rows of it: B / nranks */

    mg_net g, d;
    mg_optim g_opt, d_opt;  /* each over its network's parameters, or with train.sharded_update
                               over this rank's part of them alone */
    int sharded;            /* train.sharded_update on more than one rank */
    int bucketed;           /* the sums through MPI go in buckets during the backward passes */
    double bucket_mb;       /* their size (train.bucket_mb, auto resolved); 0 when not bucketed */
    int prefetch;           /* MG_NET_G, MG_NET_D (sharded, bucketed, train.overlap, and no max
                             * column norms): the gather of that network's updated parameters
                             * runs into the next forward pass through it */
    int gathering;          /* MG_NET_G, MG_NET_D: a sharded update's gather of that network's
                             * parameters is in flight (train.c's update_start) */
    long long gather_step[2]; /* the step whose update it belongs to: G's, D's */
    mg_optim *whole_g, *whole_d;   /* mg_trainer_whole_optims: the whole state for a checkpoint */

    int64_t step;           /* completed steps (generator updates) */
    int64_t minibatch;      /* real minibatches consumed so far */
    int64_t batches_per_epoch;
    int64_t step_epochs;    /* completed epochs when the current step began: every update of a
                               step, D's and G's, uses the momentum of this count, as in the
                               released code, whose momentum changes between epochs only */

    uint32_t *perm;         /* (data->n) data order of the current epoch */
    int64_t perm_epoch;     /* epoch perm belongs to */
    uint64_t *row_id;       /* (2 rows) global row index: real rows, then fake rows */
    int phases;             /* blocks of rows G makes per step: k + 1 (simultaneous: 1) */
    uint64_t *g_row_id;     /* (phases, rows) G's row ids: phase and global fake row */
    /* A conditional GAN (spec.classes > 0) joins the one-hot label to G's noise and to D's
     * input (labels.h): G's rows are (noise_dim + classes) values, D's the example's dim and
     * classes planes of label_plane values (1 for a dense first layer, H W for a conv one). */
    int g_in;               /* G's input values per row: noise_dim (+ classes) */
    size_t d_in;            /* D's input values per row: dim (+ classes label_plane) */
    size_t label_plane;
    int32_t *g_labels;      /* (phases, rows) the fake rows' labels of each phase (conditional) */
    int64_t *label_cum;     /* (classes + 1) the training split's class counts, running, for
                               fake_labels frequency; NULL for uniform */
    mg_real *z;             /* (phases, rows, g_in) noise (and label) of each phase of the step */
    mg_real *xd;            /* (2 rows, d_in) D's input: this rank's real rows, then fake rows */
    mg_real *dlogit;        /* (2 rows) */
    mg_real *dx;            /* (rows, d_in) gradient of D's input on the fake rows */

    double timer[MG_TIMER_COUNT]; /* seconds spent in each phase on this rank */
    double warm[MG_TIMER_COUNT];  /* timer as this process's second step began: what the first
                                     (page faults of fresh buffers, cold caches) cost */
    int64_t steps_run;            /* mg_trainer_step calls of this process */
    double mark;            /* wall clock of the last lap of a step's timers (train.c) */
    mg_reducer *g_sum, *d_sum; /* gradient sums; G's and D's grads are their buffers */
    mg_request *reduce;     /* D's gradient allreduce in flight (train.overlap) */
    int64_t skipped;        /* updates left out for NaN or Inf gradients (train.nonfinite) */

    /* Set by the caller on any rank (a signal arrived): the request travels with the step's
     * generator gradients, so every rank learns of it at the same step, with no extra message. */
    int stop_request;

    int trap_fpe; /* MPIGAN_TRAP_FPE: each step runs with floating-point traps (signals.h) */
} mg_trainer;

/* Builds both networks and optimizers for `data` on communicator `comm`. Parameters are drawn on
 * rank 0 and broadcast. Fails (on every rank alike) if the batch does not split over the ranks,
 * the networks do not fit the data, or MPIGAN_TRAP_FPE asks for traps a build does not have;
 * the message names the configuration key ("train.batch_size 100 does not split over 3 ranks:
 * ..."), and the caller names the file. */
int mg_trainer_init(mg_trainer *t, const mg_gan_spec *spec, const mg_dataset *data,
                    const mg_comm *comm, mg_error *err);
void mg_trainer_free(mg_trainer *t);
/* With t->prefetch a step may end with G's updated parameters still travelling (and D's, in
 * simultaneous mode), for the next forward pass through the network to wait for layer by layer. Before anything else reads the
 * parameters (a checkpoint, samples, an estimate, a checksum), every rank calls this: it waits
 * for whatever is in flight. mg_trainer_check_replicas, mg_trainer_whole_optims,
 * mg_trainer_broadcast_state and mg_trainer_free call it themselves. Collective. */
void mg_trainer_settle(mg_trainer *t);

/* How the gradients are summed: "shared-memory" (a window per node, MPI between nodes: comm.h),
 * "MPI_Allreduce", or "none" on one rank. The two sums train the same up to the rounding of
 * OpenBLAS: with MPI sums and train.overlap, G runs one phase of a step at a time instead of all
 * in one pass, and OpenBLAS rounds a row by the GEMM's row count. */
const char *mg_trainer_sums(const mg_trainer *t);
/* How the update runs: "replicated" (every rank updates every parameter), "sharded" (ZeRO-1),
 * or "sharded, gathers prefetched" (the updated parameters travel while the next forward pass
 * through their network runs, t->prefetch; a network with max column norms waits, and the text
 * says which is prefetched). */
const char *mg_trainer_update_kind(const mg_trainer *t);

/* One step of Algorithm 1 (or one simultaneous update). */
void mg_trainer_step(mg_trainer *t, mg_step_stats *stats);

/* G's output without dropout for z (n, noise_dim) into out (n, dim), in chunks of t->rows through
 * G's training buffers: call between steps only. Not collective. An unconditional G only. */
void mg_trainer_generate(mg_trainer *t, const mg_real *z, int n, mg_real *out);

/* The same for G conditioned on labels (n) (NULL for an unconditional G). */
void mg_trainer_generate_labeled(mg_trainer *t, const mg_real *z, const int32_t *labels, int n,
                                 mg_real *out);

/* Steps the configured run lasts. */
int64_t mg_trainer_total_steps(const mg_trainer *t);
double mg_trainer_epoch(const mg_trainer *t); /* fractional epochs done */

/* Compares a checksum of both networks' parameters over ranks. */
int mg_trainer_check_replicas(mg_trainer *t, mg_error *err);

/* The pieces [lo[i], hi[i]) of a network's parameters (MG_NET_G or MG_NET_D) that this rank
 * updates, one after another in its optimizer's state: all of them in one piece without a sharded
 * update, this rank's part with one (a piece of every bucket with buckets). Returns how many (at
 * most MG_MAX_PIECES). */
#define MG_MAX_PIECES (MG_MAX_LAYERS + 1)
int mg_trainer_pieces(const mg_trainer *t, int net, size_t *lo, size_t *hi);

/* The optimizers' whole state, as a checkpoint holds it. Without a sharded update they are the
 * trainer's own (nothing is made). With one, each rank keeps only its part: this collective call
 * gathers every part into whole copies on rank 0 (load 0: to be written), or makes empty whole
 * copies there for a checkpoint to be read into (load 1: mg_trainer_broadcast_state then hands
 * out the parts). *g and *d are the whole states on rank 0 (NULL elsewhere);
 * mg_trainer_whole_optims_end frees what was made. */
void mg_trainer_whole_optims(mg_trainer *t, int load, mg_optim **g, mg_optim **d);
void mg_trainer_whole_optims_end(mg_trainer *t);

/* Collective: rank 0's parameters, optimizer state and counters to every rank (after rank 0 loaded
 * a checkpoint; with a sharded update, into mg_trainer_whole_optims's copies). */
void mg_trainer_broadcast_state(mg_trainer *t);

/* Collective: each timer's min, mean and max over ranks, in seconds. */
void mg_trainer_timers(const mg_trainer *t, double *min, double *mean, double *max);

/* Charges the seconds since t0 (mg_comm_wtime) to timer `which` and returns them: the time of
 * work outside the step's phases (checkpoints, estimates) or set aside from the phase around it. */
double mg_trainer_charge(mg_trainer *t, enum mg_timer which, double t0);
/* The same for the steady state: the timers of every step of this process after its first,
 * whose first touches of fresh buffers can cost more than a later step (3.5x on the CIFAR-10
 * MLP); *steps is how many (0 after one step or none). Collective. */
void mg_trainer_steady_timers(const mg_trainer *t, double *min, double *mean, double *max,
                              int64_t *steps);
/* Values of optimizer state (momentum; Adam's two moments) this rank keeps, and what a rank of
 * the replicated update keeps (every parameter's): with train.sharded_update about 1/R of it. */
size_t mg_trainer_optim_values(const mg_trainer *t);
size_t mg_trainer_optim_values_whole(const mg_trainer *t);

#endif
