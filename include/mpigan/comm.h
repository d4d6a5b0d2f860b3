/* Communication. This is the only interface to MPI: src/comm.c is the one file that includes
 * mpi.h, so the rest of mpigan reads as plain C over an opaque communicator.
 *
 * MPI errors are fatal (the default handler); a call that returns is a call that worked.
 *
 * Every call below that waits for other ranks (collectives, the gradient sums, the shared
 * window's set-up and broadcast, a request's finish) waits in one place, the stall inspector:
 * when a wait on a communicator lasts longer than its stall setting (mg_comm_watch), every
 * waiting rank tells the communicator's rank 0, which waits a moment for the others' word and
 * prints one line naming the ranks it has not heard from:
 *
 *     mpigan: stall: rank 0 has waited 2 s in the checkpoint of step 200; rank 1 has not reached it
 *
 * Rank 0 answers such words whenever it waits itself. A waiting rank without an answer after
 * three times the setting concludes that rank 0 is the one missing (were rank 0 waiting, it
 * would have answered, and reported on its own wait) and says so:
 *
 *     mpigan: stall: rank 1 has waited 3 s in the checkpoint of step 200; rank 0 has not reached it
 *
 * So a stall gives one line: rank 0's, or with rank 0 missing one per waiting rank. The
 * text after "in" is the communicator's description of what it waits for (mg_comm_waiting_for).
 * A communicator's watch (setting, description, count of waits) is state of the communicator,
 * like MPI's own, and changes through a const mg_comm *: every rank must make the same watched
 * calls on a communicator in the same order, as MPI already asks of collectives.
 *
 * Not watched: MPI_Init and MPI_Finalize themselves (mg_comm_finalize passes a watched barrier
 * first), and MPI's own set-up calls (communicator splits, window allocation and freeing,
 * fences), which pass a watched barrier just before, so that only a rank stopped in the
 * microseconds between the two goes unreported. */
#ifndef MPIGAN_COMM_H
#define MPIGAN_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "mpigan/real.h"

typedef struct mg_comm mg_comm;

/* MPI_Init and MPI_Finalize; world is valid between them. Finalize is collective: a watched
 * barrier ("the end of the run") comes first. */
void mg_comm_init(int *argc, char ***argv);
void mg_comm_finalize(void);
const mg_comm *mg_comm_world(void);

/* The stall setting of every communicator until a configuration says otherwise, so that the
 * waits of a command's set-up are watched too. */
#define MG_STALL_DEFAULT_S 120.0

/* Waits on c longer than stall_s seconds are reported (0: not watched). A new communicator
 * (mg_comm_split) starts with its parent's setting; world with MG_STALL_DEFAULT_S. */
void mg_comm_watch(const mg_comm *c, double stall_s);
/* What c's waits are for from now on, printf-style ("the D gradient sum of step %lld"): the
 * text of a stall report. It stays until the next call; world starts with "the start of the
 * run". */
void mg_comm_waiting_for(const mg_comm *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

int mg_comm_rank(const mg_comm *c);
int mg_comm_size(const mg_comm *c);
int mg_comm_node_size(const mg_comm *c); /* ranks of c on this node */

/* Memory shared by the ranks of one node (an MPI-3 shared-memory window). */
typedef struct mg_shared mg_shared;

/* Collective over c: one block of `bytes` per node, allocated by the node's first rank; every rank
 * of the node gets the address of that one block. Returns NULL (on every rank) if the MPI library
 * cannot make one; the caller then keeps a private copy. */
mg_shared *mg_comm_shared_alloc(const mg_comm *c, size_t bytes, void **base);
/* Collective over c: root's block (its node's) is copied to every other node's block; afterwards
 * every rank sees the contents. */
void mg_comm_shared_bcast(const mg_comm *c, mg_shared *s, int root);
/* Collective over the c it was allocated over. */
void mg_comm_shared_free(mg_shared *s);

/* A new communicator of the ranks that pass the same color (color < 0: none, returns NULL).
 * Collective over c. */
mg_comm *mg_comm_split(const mg_comm *c, int color);
void mg_comm_free(mg_comm *c);

/* In-place sum over ranks (the ring of mg_reducer_sum; allocates one chunk). */
void mg_comm_allreduce_sum(const mg_comm *c, mg_real *buf, size_t n);
/* The same for doubles (a batch norm's statistics). */
void mg_comm_allreduce_double(const mg_comm *c, double *buf, size_t n);

/* The same, in flight while the caller works (MPI_Iallreduce): start it, call mg_comm_progress
 * now and then (MPI progresses only inside MPI calls), and mg_comm_finish (watched, on the
 * communicator it was started on) before using buf. A request is made once and reused. */
typedef struct mg_request mg_request;
mg_request *mg_request_new(void);
void mg_request_free(mg_request *r);
void mg_comm_allreduce_start(const mg_comm *c, mg_real *buf, size_t n, mg_request *r);
void mg_comm_progress(mg_request *r);
void mg_comm_finish(mg_request *r);

/* Gradient sums over ranks: one buffer of n values per rank, summed in place.
 *
 * Shared: where every node holds the same number of ranks (more than one), each rank's buffer is
 * its slot in one MPI-3 shared-memory window of its node, and a sum sends no message inside a
 * node. After a node barrier, the rank of node index i adds up chunk i (n / ranks per node
 * values) of every slot, in rank order, and writes the sum into chunk i of every slot; between
 * nodes, the ranks of index i allreduce their chunk with MPI first. That is a hierarchical
 * allreduce (reduce-scatter in shared memory, allreduce across nodes, allgather for free), and
 * each rank reads n values and writes n however many ranks share the node, against about 2n
 * moved through MPI's buffers by a shared-memory MPI_Allreduce. A second node barrier ends it.
 * Otherwise (shared == 0, one rank, unequal nodes, or no window to be had) the buffer is private
 * and summed through MPI. Sums through MPI (of the whole buffer, or of the chunks between nodes)
 * are a ring of non-blocking point-to-point messages (comm.c's sum_over): watched like every
 * wait, and as fast as MPI_Allreduce, which cannot be watched, on 2 ranks here. The node barriers
 * (MPI_Ibarrier) and the ring's steps are waits of c.
 *
 * Sums of two ranks are bit for bit those of MPI_Allreduce (a + b = b + a); with more ranks the
 * order of the additions may differ from MPI's. `group` > 0 treats every `group` consecutive
 * ranks of a node as a node of their own (tests of the path between nodes on one machine); 0
 * takes the nodes as they are. A private buffer is `buffer` when not NULL (the caller's, say a
 * network's own gradients), else one allocated here. Collective over c. */
typedef struct mg_reducer mg_reducer;
mg_reducer *mg_reducer_new(const mg_comm *c, size_t n, int shared, int group, mg_real *buffer);
void mg_reducer_free(mg_reducer *r);
mg_real *mg_reducer_buffer(const mg_reducer *r); /* (n) this rank's values, then their sum */
int mg_reducer_shared(const mg_reducer *r);
/* The sum, blocking. Collective over c. */
void mg_reducer_sum(mg_reducer *r);
/* After a shared sum: non-zero iff every summed value is finite (no NaN, no +-Inf), the same
 * answer on every rank. The owners check their chunks as they sum them, in L1, so a caller needs
 * no pass of its own over the buffer. Meaningless for a private buffer (check it yourself). */
int mg_reducer_finite(const mg_reducer *r);
/* The sum in flight: MPI_Iallreduce into q (finish with mg_comm_finish) for a private buffer;
 * a shared buffer is summed at once, since its sum is the ranks' own work. */
void mg_reducer_start(mg_reducer *r, mg_request *q);

/* Buckets (train.bucket_mb), for sums that go through MPI (a private buffer, or shared sums
 * between nodes): the values below n - tail cut at `cuts` (n_cuts ascending offsets: the first
 * parameter of a layer, say) into buckets. Returns 1 if they are used, 0 if not (one rank, one
 * node's shared sums, a bucket over MPI's int counts).
 * Each bucket's sum starts (MPI_Iallreduce; sharded, each rank's values of piece q sent straight
 * to rank q, which adds them in rank order: comm.c exchange_start) as soon as
 * mg_reducer_ready says the backward pass has written it, and runs while the pass goes on, which
 * drives MPI's progress between its layers; mg_reducer_sum and mg_reducer_scatter start what is
 * left and wait for all of it. The last `tail` values (a step's statistics, written after the
 * pass) are summed then. Sharded, each rank's part is a piece of every bucket (chunk q of it for
 * rank q: mg_reducer_pieces, mg_reducer_piece). With shared sums between nodes, a bucket written
 * by every rank of the node (a node barrier, MPI_Ibarrier, driven like the sums) is summed over
 * the node's slots by chunks, rank i chunk i, and each rank's chunk then goes between nodes as
 * a private bucket would, with the ranks of its node index; sharded, each rank's part is a piece
 * of its chunk of every bucket, in the node's one copy of the parameters, gathered among the
 * ranks of its node index (each wait for them then ends in a node barrier, so that the whole
 * copy is in before anyone reads it). Within one node shared sums take no buckets: a node's sum is its
 * ranks' own memory traffic, done after the pass. Call before mg_reducer_shard. The sums are bit
 * for bit those of the ring on 2 ranks or nodes (a + b = b + a), not beyond (MPI's order, or
 * rank order). With bf16 (mg_reducer_compress) a sharded bucket's values travel in bfloat16 and
 * are added in float. */
int mg_reducer_buckets(mg_reducer *r, size_t tail, const size_t *cuts, int n_cuts);
/* Whether the buckets are used (mg_reducer_shard drops them where a node has no room for its
 * copy of the parameters). */
int mg_reducer_bucketed(const mg_reducer *r);
/* The backward pass has written every value from `from` on. */
void mg_reducer_ready(mg_reducer *r, size_t from);
/* The pieces of this rank's part: one, [lo, hi) of mg_reducer_part, unless sharded in buckets. */
int mg_reducer_pieces(const mg_reducer *r);
void mg_reducer_piece(const mg_reducer *r, int i, size_t *lo, size_t *hi);

/* bfloat16 between nodes (train.gradient_dtype: bf16): the values below n - tail travel in
 * bfloat16 wherever they go by MPI (a private buffer's ring and buckets, a shared reducer's ring
 * across nodes; within a node's window they stay mg_real) and are added in mg_real (float), the
 * last `tail` values (statistics) at full precision. Each rank's own values are rounded before
 * they leave; with `feedback` what the rounding leaves out is added to the rank's values of the
 * next sum (error feedback), so that nothing is lost over steps. Partial sums are rounded again
 * at every hop of the ring (or pair of MPI's reduction), so a sum of p values is off by about
 * (p - 1) 2^-9 of its magnitude at most. Call after mg_reducer_buckets, before
 * mg_reducer_shard. */
void mg_reducer_compress(mg_reducer *r, size_t tail, int feedback);

/* A sharded update (ZeRO stage 1; train.sharded_update): instead of every rank getting the whole
 * sum and updating every parameter, each rank gets the sum of its part of the values, updates
 * that part of the parameters (keeping optimizer state for it alone), and the updated parts go
 * to every rank. The last `tail` values (a step's statistics) are not parted: every rank gets
 * their sums.
 *
 * Parts: with a private buffer, the chunks of the ring's first half (a reduce-scatter; the
 * second half then passes the updated parameters round instead of the sums). With a shared
 * buffer, node index i's chunk of the node, summed in shared memory by its owner as for a whole
 * sum; between nodes that chunk is parted again over the ranks of node index i by the same ring.
 * The parameters then live in one block of a window per node (returned by mg_reducer_shard, the
 * node's first rank holding it), which every rank of the node reads whole and writes only in its
 * part: a node's update touches one copy of the parameters instead of one per rank, and needs no
 * message inside the node. With no room for that window every rank keeps its own copy and the
 * parts go round by an allgather.
 *
 * The sums of a part are those of mg_reducer_sum bit for bit (the same additions in the same
 * order), so a sharded run computes what a replicated one does; only the tail's sums (of doubles)
 * may differ in their last bits. */

/* Makes r sharded for parameters `params` (n - tail values, this rank's copy, which is also what
 * the window starts from). Returns where the parameters live from now on: the node's window, or
 * params itself. Collective over c. */
mg_real *mg_reducer_shard(mg_reducer *r, size_t tail, mg_real *params);
/* This rank's part [lo, hi) of the parted values (possibly empty). */
void mg_reducer_part(const mg_reducer *r, size_t *lo, size_t *hi);
/* The sums of this rank's part (in its buffer at [lo, hi)) and of the tail (at [n - tail, n)).
 * Returns non-zero iff every one of them, on every rank, is finite: the same answer everywhere.
 * Collective over c. */
int mg_reducer_scatter(mg_reducer *r);
/* After each rank has updated its part of the parameters: every rank's part to every rank (a
 * node barrier with the parameters' window). `ok`: this rank's update left its part finite.
 * Returns non-zero iff ok on every rank. Collective over c. */
int mg_reducer_gather(mg_reducer *r, int ok);
/* mg_reducer_gather in parts, so that work which does not read these parameters runs while they
 * travel (FSDP's and ZeRO's prefetch). With buckets, start posts the first bucket's gather (the
 * first parameters') and the verdict's sum, and returns; each later bucket is posted when the one
 * before it is in (found by wait or progress), so the network carries the bucket needed next
 * rather than all at a fraction of the speed. verdict waits for the verdict alone and returns it;
 * wait(end) waits for the buckets that hold any of parameters [0, end) (and returns non-zero once
 * every bucket is in); progress lets MPI move them and posts the next (between layers); finish
 * is verdict and wait for all. Without buckets start does the whole gather. With shared sums
 * between nodes each rank gathers its pieces into the node's one copy, and a wait that took any
 * bucket in ends in a node barrier. Every rank makes the same calls with the same arguments,
 * and each wait is watched (mg_comm_watch); the gathers go on a communicator of their own,
 * since ranks post them at different moments (and the verdict on one of all ranks). */
void mg_reducer_gather_start(mg_reducer *r, int ok);
int mg_reducer_gather_verdict(mg_reducer *r);
int mg_reducer_gather_wait(mg_reducer *r, size_t end);
void mg_reducer_progress(mg_reducer *r);
int mg_reducer_gather_finish(mg_reducer *r);
/* Root's parameters (its node's window, or its copy) to every rank: start and resume. Collective
 * over c; root must be rank 0. */
void mg_reducer_bcast_params(mg_reducer *r, int root);
/* Work on the parameters that must not overlap between the ranks sharing one copy (max column
 * norms): this rank takes share `part` of `parts`, then mg_reducer_sync makes everyone's writes
 * seen (a node barrier). With a copy per rank: part 0 of 1, and no barrier. */
void mg_reducer_share_of(const mg_reducer *r, int *part, int *parts);
void mg_reducer_sync(mg_reducer *r);

/* Bytes from root to all, any size. */
void mg_comm_bcast(const mg_comm *c, void *buf, size_t bytes, int root);
/* Rank r's `bytes` bytes to root, placed in rank order into recv (root only; the sum of all ranks'
 * bytes). Any sizes, different on each rank. */
void mg_comm_gather(const mg_comm *c, const void *send, size_t bytes, void *recv, int root);
/* Parts of one buffer that lives whole on root: rank r's `bytes` bytes go to (gather_at) or
 * come from (scatter_at) byte `offset` of root's `whole` (root only). Any sizes and offsets,
 * different on each rank; root's own part is copied. */
void mg_comm_gather_at(const mg_comm *c, const void *mine, size_t bytes, size_t offset,
                       void *whole, int root);
void mg_comm_scatter_at(const mg_comm *c, void *mine, size_t bytes, size_t offset,
                        const void *whole, int root);
/* Non-zero on every rank iff ok was non-zero on every rank. */
int mg_comm_all_ok(const mg_comm *c, int ok);
/* Non-zero iff every rank passed the same value. */
int mg_comm_all_same(const mg_comm *c, uint64_t value);
/* min, max and sum over ranks of a value (for timers). */
void mg_comm_minmaxsum(const mg_comm *c, double v, double *min, double *max, double *sum);

void mg_comm_barrier(const mg_comm *c);
double mg_comm_wtime(void);
/* Ends every rank of the job at once: for errors that one rank finds alone. */
_Noreturn void mg_comm_abort(const mg_comm *c, int code);

#endif
