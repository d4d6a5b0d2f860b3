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
 * --path sharded: the current step (src/train.c, src/comm.c with their defaults: ZeRO-1 sharded
 * update, buckets, shared sums in nodes of --node ranks, bf16 between nodes with --bf16 1). Per
 * network: the forward pass (--d-fwd flops, with the batch norm sums), then
 *   --node 1: the backward pass in slices (--d-bwd "flops:floats,...", in the order the pass runs
 *     them); after a slice whose floats are not 0 a bucket of that many floats starts its
 *     reduce-scatter (every piece straight to its owner, all posted at once: direct() below;
 *     MPI_Testall after every slice); then the wait for all of them and a small sum of the
 *     statistics (5 doubles), the update of this rank's part (--d-update flops), the gather of
 *     every bucket's pieces (float32, the same pattern, the first layers' bucket first), and
 *     another small sum (the verdict that all is finite). With --d-pre and --g-pre
 *     ("flops:buckets,...": the layers of the pass through that network that waits for its
 *     prefetched gather, each with the number of buckets it needs; train.overlap) the gathers
 *     are left in flight: G's until the pass through G that starts the next step, D's (the last
 *     D update's) until the G update's pass through D; --d-fwd and --g-fwd are then the rest of
 *     the forward passes;
 *   --node R > 1 (R consecutive ranks per host) with --node-buckets 1 (mpigan's default between
 *     nodes): the backward pass in slices as for --node 1; after a slice that completes a bucket
 *     a node barrier, this rank's share of the node's sum in shared memory (the bucket's share of
 *     --d-node-sum flops: the model's memory time, not simulated) and the reduce-scatter of its
 *     chunk of the bucket (1/R of it) among the ranks of the same node index on every host
 *     (direct(), over `across`); the rest of the node sum (the statistics') after the pass, the
 *     wait, a small sum, the update, the gather of every bucket's chunk pieces among the same
 *     ranks as for --node 1 (a bucket at a time, the verdict's small sum, then waited for or,
 *     with --d-pre and --g-pre, left in flight), each wait followed by a node barrier. (comm.c
 *     tests each bucket's node barrier at the next progress call without blocking; here it is a
 *     blocking MPI_Barrier, the same for ranks that run alike.);
 *   --node R > 1 with --node-buckets 0 (bucket_mb: 0): the backward pass, a node barrier, the
 *     node's sum in shared memory (--d-node-sum flops), a ring reduce-scatter of this rank's
 *     chunk (1/R of the buffer) over the ranks of the same node index on every node, a small
 *     sum, the update, a ring allgather (float32), a node barrier and a small sum.
 *   bf16 halves the count of every gradient message (MPI_FLOAT, half as many): the bytes, not the
 *   arithmetic, are what the network sees. Parameters and statistics stay full size.
 * Printed then: d_sum_s/g_sum_s (the wait for the reduce-scatters after the backward pass, or the
 * ring's reduce-scatter), d_gather_s/g_gather_s (the parameters' gather), small_s (the small
 * sums), progress_s (the MPI_Testall calls between slices).
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

#define MAX_SLICES 64
#define STATS_DOUBLES 5 // a step's statistics and the verdict (comm.c tail_and_verdict)

struct options {
    long d_floats, g_floats;  // gradient buffer lengths: parameters + mpigan's 4 stats slots
    double d_flops, g_flops;  // per rank, per D step and per G step
    double update_flops;      // per rank per step, both networks (SGD is replicated, not split)
    double update_d_share;    // the D update's part of update_flops, by parameter count
    double host_speed;        // real MPI only: flop/s that a spin of flops / host_speed stands for
    int k, steps, warmup;
    int d_small, g_small;     // small allreduces (batch norm sums) per D and per G update ...
    long d_small_n, g_small_n; // ... of this many doubles
    int sharded;              // --path sharded: the current step (above)
    int node, bf16;           // ranks per host; gradients in bfloat16 between nodes
    int node_buckets;         // --node R > 1: buckets during the backward pass (mpigan's way)
    struct plan {             // per network, for --path sharded
        double fwd, update, node_sum; // flops
        int slices;
        double bwd[MAX_SLICES];       // flops of each slice of the backward pass
        long bucket[MAX_SLICES];      // floats of the bucket that starts after it (0: none)
        int pre_slices;               // --d-pre: the forward pass that waits for a prefetched
        double pre[MAX_SLICES];       // gather of this network's parameters, layer by layer:
        long pre_need[MAX_SLICES];    // flops, and the buckets (in the gather's order) it needs
    } d, g;
};

struct timers {
    double d_reduce, g_reduce, compute; // simulated seconds summed over timed steps
    double small;                        // the small allreduces
    double d_sum, g_sum, d_gather, g_gather, stats; // --path sharded
    double progress;                     // --path sharded: MPI_Testall between slices
};

static void usage(void)
{
    fprintf(stderr, "usage: skeleton --d-floats N --g-floats N --d-flops F --g-flops F "
                    "[--update-flops F] [--k 1] [--steps 3] [--warmup 1] [--host-speed F] "
                    "[--d-small N --d-small-doubles N] [--g-small N --g-small-doubles N] "
                    "[--path replicated|sharded --node R --node-buckets 0|1 --bf16 0|1 "
                    "--d-fwd F --d-bwd F:N,... "
                    "--d-update F --d-node-sum F (and --g-...)]\n");
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

/* "flops:count,flops:count,..." into slices (flops[i], count[i]), *n of them; 0 on success. */
static int parse_slices(const char *opt, const char *text, double *flops, long *count, int *n_out)
{
    const char *at = text;
    int n_slices = 0;
    while (*at) {
        char *end = NULL;
        errno = 0;
        double f = strtod(at, &end);
        if (errno || end == at || *end != ':' || !(f >= 0) || n_slices == MAX_SLICES)
            goto bad;
        at = end + 1;
        double n = strtod(at, &end);
        if (errno || end == at || (*end != ',' && *end != '\0') || !(n >= 0) || n > INT_MAX)
            goto bad;
        flops[n_slices] = f;
        count[n_slices++] = (long)n;
        at = *end ? end + 1 : end;
    }
    *n_out = n_slices;
    if (n_slices > 0)
        return 0;
bad:
    fprintf(stderr, "skeleton: %s: '%s' is not a list of flops:count (at most %d)\n", opt, text,
            MAX_SLICES);
    return -1;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){.d_floats = -1, .g_floats = -1, .d_flops = -1, .g_flops = -1,
                          .k = 1, .steps = 3, .warmup = 1, .host_speed = 1e11, .node = 1};
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (i + 1 >= argc) {
            fprintf(stderr, "skeleton: %s needs a value\n", opt);
            return -1;
        }
        const char *val = argv[++i];
        double v;
        if (!strcmp(opt, "--path")) {
            if (strcmp(val, "replicated") && strcmp(val, "sharded")) {
                fprintf(stderr, "skeleton: --path is replicated or sharded, not '%s'\n", val);
                return -1;
            }
            o->sharded = !strcmp(val, "sharded");
            continue;
        }
        if (!strcmp(opt, "--d-bwd") || !strcmp(opt, "--g-bwd")) {
            struct plan *p = opt[2] == 'd' ? &o->d : &o->g;
            if (parse_slices(opt, val, p->bwd, p->bucket, &p->slices) != 0)
                return -1;
            continue;
        }
        if (!strcmp(opt, "--d-pre") || !strcmp(opt, "--g-pre")) {
            struct plan *p = opt[2] == 'd' ? &o->d : &o->g;
            if (parse_slices(opt, val, p->pre, p->pre_need, &p->pre_slices) != 0)
                return -1;
            continue;
        }
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
        else if (!strcmp(opt, "--node") && v >= 1 && v <= 1e6)
            o->node = (int)v;
        else if (!strcmp(opt, "--bf16") && (v == 0 || v == 1))
            o->bf16 = (int)v;
        else if (!strcmp(opt, "--node-buckets") && (v == 0 || v == 1))
            o->node_buckets = (int)v;
        else if (!strcmp(opt, "--d-fwd"))
            o->d.fwd = v;
        else if (!strcmp(opt, "--g-fwd"))
            o->g.fwd = v;
        else if (!strcmp(opt, "--d-update"))
            o->d.update = v;
        else if (!strcmp(opt, "--g-update"))
            o->g.update = v;
        else if (!strcmp(opt, "--d-node-sum"))
            o->d.node_sum = v;
        else if (!strcmp(opt, "--g-node-sum"))
            o->g.node_sum = v;
        else {
            fprintf(stderr, "skeleton: %s %s: unknown option or value out of range\n", opt, val);
            return -1;
        }
    }
    if (o->sharded && (o->d.slices == 0 || o->g.slices == 0)) {
        usage();
        return -1;
    }
    if (o->sharded) /* the compute is the plan's: the replicated flops are not needed */
        o->d_flops = o->d_flops < 0 ? 0 : o->d_flops, o->g_flops = o->g_flops < 0 ? 0 : o->g_flops;
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

/* ---- --path sharded ---- */

/* Communicators and buffers of the sharded step. */
struct sharded {
    MPI_Comm node, across;   // the ranks of this host; the ranks of this node index on every host
    int hosts;
    float *send, *recv, *params; // (max floats) each: gradients, pieces summed, parameters
    float *ring;                  // (max floats / node / hosts + 1) a ring step's message in
    MPI_Request *req;             // (MAX_SLICES, 2 ranks) each bucket's messages
    double stats[STATS_DOUBLES];
    struct pending {              // a gather of D's, G's parameters in flight
        MPI_Request *req;         // (MAX_SLICES, 2 ranks) its messages, bucket after bucket
        int at[MAX_SLICES + 1];   // bucket b's are req[at[b], at[b + 1])
        long floats[MAX_SLICES];  // each bucket's floats, the first layers' first
        int buckets, posted, waited; // buckets [0, waited) are in
        MPI_Comm comm;            // among these ranks (all, or those of one node index) ...
        int me, ranks;
        MPI_Comm node;            // ... and with a node barrier after a wait (or MPI_COMM_NULL)
    } pending[2];
};

/* Values [i n / k, (i + 1) n / k) are chunk i of n among k (comm.c's chunk_start, near enough). */
static long chunk_start(long n, int i, int k)
{
    return (long)((double)n * i / k);
}

static void small_sum(struct sharded *z, double *seconds)
{
    double t0 = MPI_Wtime();
    CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, z->stats, STATS_DOUBLES, MPI_DOUBLE, MPI_SUM,
                            MPI_COMM_WORLD));
    *seconds += MPI_Wtime() - t0;
}

/* The steps of a ring over z->across, of a buffer of n floats: hosts - 1 steps of n / hosts. */
static void ring(struct sharded *z, float *buf, long n)
{
    int me;
    CHECK_MPI(MPI_Comm_rank(z->across, &me));
    const int right = (me + 1) % z->hosts, left = (me + z->hosts - 1) % z->hosts;
    for (int step = 0; step < z->hosts - 1; step++) {
        const int out = ((me - step) % z->hosts + z->hosts) % z->hosts;
        const int in = ((me - step - 1) % z->hosts + z->hosts) % z->hosts;
        const long lo = chunk_start(n, out, z->hosts), hi = chunk_start(n, out + 1, z->hosts);
        const long rlo = chunk_start(n, in, z->hosts), rhi = chunk_start(n, in + 1, z->hosts);
        MPI_Request q[2];
        CHECK_MPI(MPI_Irecv(z->ring, (int)(rhi - rlo), MPI_FLOAT, left, 7, z->across, &q[0]));
        CHECK_MPI(MPI_Isend(buf + lo, (int)(hi - lo), MPI_FLOAT, right, 7, z->across, &q[1]));
        CHECK_MPI(MPI_Waitall(2, q, MPI_STATUSES_IGNORE));
    }
}

/* A bucket of len floats among ranks, every message posted at once into req (2 (ranks - 1)
 * requests, returned): the reduce-scatter (gather 0) sends piece q to rank q and receives this
 * rank's piece from every other rank; the allgather (gather 1) sends this rank's piece to every
 * other rank and receives theirs. What mpigan's reduce-scatter of a bucket does (comm.c
 * exchange_start), and Open MPI's MPI_Iallgatherv (libnbc's linear one), written out so that the
 * skeleton says which messages travel; Open MPI 4.1's MPI_Ireduce_scatter is another algorithm
 * (docs/scaling.md). */
static int direct(struct sharded *z, MPI_Comm comm, int me, int ranks, long len, int gather,
                  MPI_Request *req)
{
    int k = 0;
    const long mine = chunk_start(len, me + 1, ranks) - chunk_start(len, me, ranks);
    for (int q = 0; q < ranks; q++) {
        if (q == me)
            continue;
        const long theirs = chunk_start(len, q + 1, ranks) - chunk_start(len, q, ranks);
        CHECK_MPI(MPI_Irecv(z->recv, (int)(gather ? theirs : mine), MPI_FLOAT, q, 8, comm,
                            &req[k++]));
        CHECK_MPI(MPI_Isend(z->send, (int)(gather ? mine : theirs), MPI_FLOAT, q, 8, comm,
                            &req[k++]));
    }
    return k;
}

/* The next bucket of a gather, posted (comm.c posts one at a time, each when the one before it
 * is in). */
static void post_next(struct sharded *z, struct pending *q)
{
    const int b = q->posted++;
    q->at[b + 1] = q->at[b] + direct(z, q->comm, q->me, q->ranks, q->floats[b], 1,
                                     q->req + q->at[b]);
}

/* Waits for buckets [waited, need) of a gather, posting each next one as the one before it is
 * in; the time to *gather. */
static void wait_buckets(struct sharded *z, struct pending *q, int need, double *gather)
{
    double t0 = MPI_Wtime();
    while (q->posted < need) /* all needed now: in flight together */
        post_next(z, q);
    const int was = q->waited;
    while (q->waited < need) {
        const int b = q->waited++;
        CHECK_MPI(MPI_Waitall(q->at[b + 1] - q->at[b], q->req + q->at[b], MPI_STATUSES_IGNORE));
    }
    if (q->node != MPI_COMM_NULL && q->waited > was) /* every rank's pieces in the node's copy */
        CHECK_MPI(MPI_Barrier(q->node));
    *gather += MPI_Wtime() - t0;
}

/* comm.c's mg_reducer_progress: the next bucket posted if the last one posted is in. */
static void progress_buckets(struct sharded *z, struct pending *q)
{
    if (q->waited < q->buckets && q->posted == q->waited)
        post_next(z, q);
    while (q->posted < q->buckets) {
        int done;
        const int b = q->posted - 1;
        CHECK_MPI(MPI_Testall(q->at[b + 1] - q->at[b], q->req + q->at[b], &done,
                              MPI_STATUSES_IGNORE));
        if (!done)
            break;
        post_next(z, q);
    }
}

/* The forward pass through a network whose gather may still be in flight (--d-pre, --g-pre):
 * before each layer the progress call and the wait for the buckets it needs; whatever is left
 * at the end. */
static void pre_pass(const struct options *o, struct sharded *z, struct pending *q,
                     const struct plan *p, double *gather, struct timers *t)
{
    for (int i = 0; i < p->pre_slices; i++) {
        progress_buckets(z, q);
        wait_buckets(z, q, (int)(p->pre_need[i] < q->buckets ? p->pre_need[i] : q->buckets),
                     gather);
        progress_buckets(z, q);
        compute(o, p->pre[i], &t->compute);
    }
    wait_buckets(z, q, q->buckets, gather);
    q->buckets = q->posted = q->waited = 0;
}

/* One network's update on the sharded path: forward, backward with its sums, update, gather.
 * With `leave` (a --d-pre or --g-pre plan) the gather is left in flight in *q, for
 * that network's next pass (pre_pass) to wait for. */
static void sharded_update(const struct options *o, struct sharded *z, const struct plan *p,
                           long floats, int small, long small_n, double *bn, double *sum,
                           double *gather, struct timers *t, struct pending *q, int leave)
{
    int ranks;
    CHECK_MPI(MPI_Comm_size(MPI_COMM_WORLD, &ranks));
    compute_with_sums(o, p->fwd, small, small_n, bn, t);
    const long grad = o->bf16 ? (floats + 1) / 2 : floats; // floats' worth of what travels
    if (o->node == 1 || (o->node_buckets && z->hosts > 1)) {
        /* Buckets among all ranks (nodes of 1), or among the ranks of one node index, each
         * after a node barrier and this rank's share of the node's sum, its chunk of it. */
        const int shared = o->node > 1;
        MPI_Comm comm = shared ? z->across : MPI_COMM_WORLD;
        int me, n, posted = 0;
        CHECK_MPI(MPI_Comm_rank(comm, &me));
        CHECK_MPI(MPI_Comm_size(comm, &n));
        double spent = 0; /* the node sum's flops spent on buckets */
        for (int i = 0; i < p->slices; i++) {
            compute(o, p->bwd[i], &t->compute);
            if (p->bucket[i] > 0) {
                long len = p->bucket[i];
                if (shared) {
                    CHECK_MPI(MPI_Barrier(z->node)); /* every rank of the host has written it */
                    const double f = p->node_sum * (double)p->bucket[i] / (double)floats;
                    compute(o, f, &t->compute);
                    spent += f;
                    len = len / o->node + 1; /* this rank's chunk of it */
                }
                posted += direct(z, comm, me, n, o->bf16 ? (len + 1) / 2 : len, 0,
                                 z->req + posted);
            }
            int done;
            double t0 = MPI_Wtime();
            if (posted > 0)
                CHECK_MPI(MPI_Testall(posted, z->req, &done, MPI_STATUSES_IGNORE));
            t->progress += MPI_Wtime() - t0;
        }
        if (shared)
            compute(o, p->node_sum - spent, &t->compute); /* the statistics' part */
        double t0 = MPI_Wtime();
        CHECK_MPI(MPI_Waitall(posted, z->req, MPI_STATUSES_IGNORE));
        *sum += MPI_Wtime() - t0;
        small_sum(z, &t->stats);
        compute(o, p->update, &t->compute);
        t0 = MPI_Wtime();
        /* the parameters (float32), the first layers' bucket first (the slices run from the
         * last layer), one bucket at a time; in nodes, each wait then a node barrier (all of the
         * node's copy is in) */
        q->buckets = q->posted = q->waited = 0;
        q->at[0] = 0;
        q->comm = comm, q->me = me, q->ranks = n, q->node = shared ? z->node : MPI_COMM_NULL;
        for (int i = p->slices - 1; i >= 0; i--)
            if (p->bucket[i] > 0)
                q->floats[q->buckets++] = shared ? p->bucket[i] / o->node + 1 : p->bucket[i];
        post_next(z, q);
        *gather += MPI_Wtime() - t0;
        small_sum(z, &t->stats); /* the verdict, which the step waits for */
        if (!leave) {
            wait_buckets(z, q, q->buckets, gather);
            q->buckets = q->posted = q->waited = 0;
        }
        return;
    }
    for (int i = 0; i < p->slices; i++)
        compute(o, p->bwd[i], &t->compute);
    CHECK_MPI(MPI_Barrier(z->node));
    compute(o, p->node_sum, &t->compute);
    const long chunk = floats / o->node + 1, gchunk = grad / o->node + 1;
    if (z->hosts > 1) {
        double t0 = MPI_Wtime();
        ring(z, z->send, gchunk);
        *sum += MPI_Wtime() - t0;
        small_sum(z, &t->stats);
    }
    compute(o, p->update, &t->compute);
    if (z->hosts > 1) {
        double t0 = MPI_Wtime();
        ring(z, z->params, chunk);
        *gather += MPI_Wtime() - t0;
    }
    CHECK_MPI(MPI_Barrier(z->node));
    if (z->hosts > 1)
        small_sum(z, &t->stats);
}

/* k D updates, then the G update. With prefetched gathers (--d-pre, --g-pre; nodes of one rank,
 * or of R with --node-buckets 1)
 * the step starts with the pass through G for the fakes, which waits for the last step's G
 * gather, and the G update with its pass through D, which waits for the last D update's. */
static void sharded_step(const struct options *o, struct sharded *z, double *bn, struct timers *t)
{
    struct pending *qd = &z->pending[0], *qg = &z->pending[1];
    const int pre = (o->node == 1 || (o->node_buckets && z->hosts > 1)) && o->d.pre_slices &&
                    o->g.pre_slices;
    if (pre)
        pre_pass(o, z, qg, &o->g, &t->g_gather, t);
    for (int j = 0; j < o->k; j++)
        sharded_update(o, z, &o->d, o->d_floats, o->d_small, o->d_small_n, bn, &t->d_sum,
                       &t->d_gather, t, qd, pre && j == o->k - 1);
    if (pre)
        pre_pass(o, z, qd, &o->d, &t->d_gather, t);
    sharded_update(o, z, &o->g, o->g_floats, o->g_small, o->g_small_n, bn, &t->g_sum,
                   &t->g_gather, t, qg, pre);
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

    struct sharded z = {.node = MPI_COMM_NULL, .across = MPI_COMM_NULL};
    if (o.sharded) {
        if (ranks % o.node != 0) {
            if (rank == 0)
                fprintf(stderr, "skeleton: --node %d does not divide %d ranks\n", o.node, ranks);
            MPI_Finalize();
            return 2;
        }
        // ranks numbered host by host, --node of them on each (the hostfile's order)
        CHECK_MPI(MPI_Comm_split(MPI_COMM_WORLD, rank / o.node, rank, &z.node));
        CHECK_MPI(MPI_Comm_split(MPI_COMM_WORLD, rank % o.node, rank, &z.across));
        z.hosts = ranks / o.node;
        const long most = o.d_floats > o.g_floats ? o.d_floats : o.g_floats;
        z.send = SMPI_SHARED_MALLOC((size_t)most * sizeof(float));
        z.recv = SMPI_SHARED_MALLOC((size_t)most * sizeof(float));
        z.params = SMPI_SHARED_MALLOC((size_t)most * sizeof(float));
        z.ring = SMPI_SHARED_MALLOC((size_t)(most / o.node / z.hosts + 2) * sizeof(float));
        z.req = calloc(2 * (size_t)MAX_SLICES * ranks, sizeof *z.req);
        for (int i = 0; i < 2; i++)
            z.pending[i].req = calloc(2 * (size_t)MAX_SLICES * ranks, sizeof *z.req);
        if (!z.send || !z.recv || !z.params || !z.ring || !z.req || !z.pending[0].req ||
            !z.pending[1].req) {
            fprintf(stderr, "skeleton: rank %d: out of memory for the sharded buffers\n", rank);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }

    struct timers warm = {0}, t = {0};
    for (int s = 0; s < o.warmup; s++) {
        if (o.sharded)
            sharded_step(&o, &z, sums, &warm);
        else
            step(&o, d_grads, g_grads, sums, &warm);
    }
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    double t0 = MPI_Wtime();
    for (int s = 0; s < o.steps; s++) {
        if (o.sharded)
            sharded_step(&o, &z, sums, &t);
        else
            step(&o, d_grads, g_grads, sums, &t);
    }
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    double elapsed = MPI_Wtime() - t0;
    if (o.sharded) { /* the last step's G gather, outside the timed steps */
        struct timers rest = {0};
        pre_pass(&o, &z, &z.pending[1], &(struct plan){0}, &rest.g_gather, &rest);
    }

    // Times per step; the allreduces' as the slowest rank saw them, like run.json's "max", and
    // as the fastest did: on a real machine that is the one that waited least for the others.
    double mine[10] = {t.d_reduce / o.steps, t.g_reduce / o.steps, t.compute / o.steps,
                      t.small / o.steps, t.d_sum / o.steps, t.g_sum / o.steps,
                      t.d_gather / o.steps, t.g_gather / o.steps, t.stats / o.steps, t.progress / o.steps};
    double max[10], min[2];
    CHECK_MPI(MPI_Reduce(mine, max, 10, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD));
    CHECK_MPI(MPI_Reduce(mine, min, 2, MPI_DOUBLE, MPI_MIN, 0, MPI_COMM_WORLD));
    if (rank == 0)
        printf("ranks=%d steps=%d step_s=%.6g d_allreduce_s=%.6g g_allreduce_s=%.6g "
               "compute_s=%.6g d_allreduce_min_s=%.6g g_allreduce_min_s=%.6g bn_allreduce_s=%.6g "
               "d_sum_s=%.6g g_sum_s=%.6g d_gather_s=%.6g g_gather_s=%.6g small_s=%.6g progress_s=%.6g simulated=%d\n",
               ranks, o.steps, elapsed / o.steps, max[0], max[1], max[2], min[0], min[1], max[3],
               max[4], max[5], max[6], max[7], max[8], max[9], SIMULATED);

    SMPI_SHARED_FREE(d_grads);
    SMPI_SHARED_FREE(g_grads);
    free(sums);
    if (o.sharded) {
        SMPI_SHARED_FREE(z.send);
        SMPI_SHARED_FREE(z.recv);
        SMPI_SHARED_FREE(z.params);
        SMPI_SHARED_FREE(z.ring);
        free(z.req);
        free(z.pending[0].req);
        free(z.pending[1].req);
        CHECK_MPI(MPI_Comm_free(&z.node));
        CHECK_MPI(MPI_Comm_free(&z.across));
    }
    CHECK_MPI(MPI_Finalize());
    return 0;
}
