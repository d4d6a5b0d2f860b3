#define _POSIX_C_SOURCE 200809L /* nanosleep */
/* The one file that speaks MPI. Every wait for another rank goes through wait_all, the stall
 * inspector (comm.h): blocking collectives are their non-blocking twins finished there, and MPI's
 * own blocking set-up calls follow a barrier finished there. */
#include "mpigan/comm.h"

#include <mpi.h>
#include <assert.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "mpigan/error.h"
#include "simd.h"

/* The stall inspector's state of a communicator: what its waits are for, and the words of the
 * protocol (comm.h). Waits are numbered alike on every rank (every rank makes the same watched
 * calls), so a word names the wait it is about and a late word cannot count for another wait. */
typedef struct {
    double stall_s;   /* a wait longer than this is a stall; 0: not watched */
    char what[200];   /* what the waits are for, the text of a report */
    long long waits;  /* watched waits so far */
    /* rank 0 */
    long long *heard; /* (size) the newest wait each rank said it was stalled in; -1: none */
    long long *told;  /* (size) the wait of each rank that rank 0 last answered */
    MPI_Request *ack; /* (size) that answer in flight */
    /* the other ranks */
    long long word;   /* the wait this rank last said it was stalled in */
    MPI_Request sent; /* that word in flight */
    long long heard_back; /* the newest wait of this rank that rank 0 answered */
} watch;

struct mg_comm {
    MPI_Comm comm;
    int rank, size, node_size;
    watch *w; /* mutable under a const mg_comm *, as MPI's own state of the communicator is */
};

struct mg_shared {
    const mg_comm *c; /* the communicator it was made over: its waits are watched there */
    MPI_Win win;
    MPI_Comm node;    /* the ranks of this node */
    MPI_Comm leaders; /* every node's first rank (MPI_COMM_NULL on the others) */
    void *base;
    size_t bytes;
};

static struct mg_comm world;

#ifdef MG_REAL_DOUBLE
#define MG_MPI_REAL MPI_DOUBLE
#else
#define MG_MPI_REAL MPI_FLOAT
#endif

/* MPI's default handler already aborts on error; this catches a call that returns one anyway
 * (a handler changed by a library) and says where. */
#define MPI_CHECK(call)                                                                        \
    do {                                                                                       \
        int rc_ = (call);                                                                      \
        if (rc_ != MPI_SUCCESS) {                                                              \
            char msg_[MPI_MAX_ERROR_STRING];                                                   \
            int len_ = 0;                                                                      \
            MPI_Error_string(rc_, msg_, &len_);                                                \
            fprintf(stderr, "mpigan: %s failed (%s:%d): %s\n", #call, __FILE__, __LINE__, msg_); \
            MPI_Abort(MPI_COMM_WORLD, 1);                                                      \
        }                                                                                      \
    } while (0)

/* Counts above INT_MAX go in pieces: MPI counts are ints. */
#define MG_MPI_CHUNK ((size_t)1 << 30)

/* Pieces of at most MG_MPI_CHUNK elements that [0, n) takes. */
static int pieces(size_t n)
{
    return (int)((n + MG_MPI_CHUNK - 1) / MG_MPI_CHUNK);
}

/* Length of piece i of [0, n). */
static int piece_len(size_t n, int i)
{
    const size_t off = (size_t)i * MG_MPI_CHUNK;
    return (int)(n - off < MG_MPI_CHUNK ? n - off : MG_MPI_CHUNK);
}

/* Chunk i of n values over k owners, its bounds on 16-value (64-byte) lines so that no two
 * owners write into one cache line. */
static size_t chunk_start(size_t n, int i, int k)
{
    return i >= k ? n : (size_t)((double)n * i / k) & ~(size_t)15;
}

/* The longest chunk of n values over k owners. */
static size_t chunk_max(size_t n, int k)
{
    size_t m = 0;
    for (int i = 0; i < k; i++)
        if (chunk_start(n, i + 1, k) - chunk_start(n, i, k) > m)
            m = chunk_start(n, i + 1, k) - chunk_start(n, i, k);
    return m;
}

/* Room for n requests: `small` when it holds them, else allocated (free with requests_free). */
enum { SMALL_REQUESTS = 4 };
static MPI_Request *requests(int n, MPI_Request *small)
{
    return n <= SMALL_REQUESTS ? small : mg_xmalloc((size_t)n * sizeof(MPI_Request));
}

static void requests_free(MPI_Request *req, const MPI_Request *small)
{
    if (req != small)
        free(req);
}

/* ---- the stall inspector ---- */

/* Tags of its words on the watched communicator: "I have waited stall_s in wait k" (to rank 0),
 * and "I heard you about wait k, and wait myself" (from rank 0). */
enum { TAG_WAITING = 4711, TAG_HEARD = 4712 };

static watch *watch_new(int rank, int size, const watch *parent)
{
    watch *w = mg_xcalloc(1, sizeof *w);
    w->stall_s = parent ? parent->stall_s : MG_STALL_DEFAULT_S;
    snprintf(w->what, sizeof w->what, "%s", parent ? parent->what : "the start of the run");
    w->sent = MPI_REQUEST_NULL;
    w->heard_back = -1;
    if (rank == 0) {
        w->heard = mg_xmalloc((size_t)size * sizeof *w->heard);
        w->told = mg_xcalloc((size_t)size, sizeof *w->told);
        w->ack = mg_xmalloc((size_t)size * sizeof *w->ack);
        for (int i = 0; i < size; i++) {
            w->heard[i] = -1;
            w->ack[i] = MPI_REQUEST_NULL;
        }
    }
    return w;
}

/* A word of one number that must not block on a receiver that may be stopped: sent in flight,
 * after the previous word to the same rank has gone. 0 (nothing sent) while that one has not. */
static int post_word(long long *buf, MPI_Request *req, long long value, int to, int tag,
                     MPI_Comm comm)
{
    if (*req != MPI_REQUEST_NULL) {
        int gone;
        MPI_CHECK(MPI_Test(req, &gone, MPI_STATUS_IGNORE));
        if (!gone)
            return 0;
    }
    *buf = value;
    MPI_CHECK(MPI_Isend(buf, 1, MPI_LONG_LONG, to, tag, comm, req));
    return 1;
}

/* Every word of `tag` that has arrived (from `from`, or anyone); the newest wait it names for
 * each sender into newest[sender] (rank 0's heard) or newest[0] (the others' heard_back). A word
 * about an older wait than the one in progress is thus taken but counts for nothing. */
static void take_words(const mg_comm *c, int from, int tag, long long *newest)
{
    for (;;) {
        int flag;
        MPI_Status st;
        MPI_CHECK(MPI_Iprobe(from, tag, c->comm, &flag, &st));
        if (!flag)
            return;
        long long k;
        MPI_CHECK(MPI_Recv(&k, 1, MPI_LONG_LONG, st.MPI_SOURCE, tag, c->comm, MPI_STATUS_IGNORE));
        long long *slot = from == MPI_ANY_SOURCE ? &newest[st.MPI_SOURCE] : &newest[0];
        if (k > *slot)
            *slot = k;
    }
}

/* Rank 0, stalled in wait k: the one line naming the ranks it has not heard from there. */
static void report(const mg_comm *c, long long k, double waited)
{
    const watch *w = c->w;
    char list[1024] = "";
    int n = 0, len = 0, shown = 0;
    for (int i = 1; i < c->size; i++) {
        if (w->heard[i] >= k)
            continue;
        if (len < (int)sizeof list - 64) {
            len += snprintf(list + len, sizeof list - len, "%s%d", n ? ", " : "", i);
            shown++;
        }
        n++;
    }
    if (shown < n)
        snprintf(list + len, sizeof list - len, " and %d more", n - shown);
    if (n)
        fprintf(stderr, "mpigan: stall: rank 0 has waited %.0f s in %s; rank%s %s %s not reached "
                        "it\n",
                waited, w->what, n == 1 ? "" : "s", list, n == 1 ? "has" : "have");
    else
        fprintf(stderr, "mpigan: stall: every rank has waited over %.0f s in %s: the MPI library "
                        "or the network does not deliver\n",
                w->stall_s, w->what);
}

/* The one way a rank waits for others: the n requests of wait number ++waits of c (all of one
 * collective, or of c's part of one: a node's barrier, the sum across nodes), watched.
 *
 * After stall_s a waiting rank tells rank 0 (once). Rank 0, while it waits itself, answers
 * every such word: it is there, and reports on its own wait whatever holds it up. After stall_s
 * and up to a second more to collect the others' words, it names in one line the ranks it has
 * not heard from in this wait or a later one (a rank in an earlier wait, say a node barrier
 * before the sum across nodes, has not reached it). A rank with no answer 2 stall_s after its
 * word (3 stall_s into its wait) concludes that rank 0 is not waiting (else it would have
 * answered): rank 0 has not reached the wait, and the rank says so. */
static void wait_all(const mg_comm *c, int n, MPI_Request *req)
{
    watch *w = c->w;
    const long long k = ++w->waits;
    const double stall = w->stall_s;
    if (stall <= 0 || c->size == 1) {
        MPI_CHECK(MPI_Waitall(n, req, MPI_STATUSES_IGNORE));
        return;
    }
    int done;
    MPI_CHECK(MPI_Testall(n, req, &done, MPI_STATUSES_IGNORE));
    if (done)
        return;
    const double t0 = MPI_Wtime();
    double listening = -1; /* rank 0: since when it has collected words for a report */
    double told = -1;      /* the others: when they told rank 0 */
    int reported = 0, said = 0;
    for (;;) {
        MPI_CHECK(MPI_Testall(n, req, &done, MPI_STATUSES_IGNORE));
        if (done)
            return;
        const double now = MPI_Wtime(), waited = now - t0;
        if (waited <= 0.01) /* spin briefly (a normal wait), then nap between tests */
            continue;
        struct timespec nap = {0, 200000};
        nanosleep(&nap, NULL);
        if (c->rank == 0) {
            take_words(c, MPI_ANY_SOURCE, TAG_WAITING, w->heard);
            for (int i = 1; i < c->size; i++)
                if (w->heard[i] >= 0 && w->told[i] != w->heard[i])
                    post_word(&w->told[i], &w->ack[i], w->heard[i], i, TAG_HEARD, c->comm);
            if (waited <= stall)
                continue;
            if (listening < 0)
                listening = now;
            /* The others' word comes within a second of their own threshold. */
            if (!reported && now - listening >= (stall < 1 ? stall : 1)) {
                report(c, k, waited);
                reported = 1;
            }
        } else if (waited > stall) {
            if (told < 0 && post_word(&w->word, &w->sent, k, 0, TAG_WAITING, c->comm))
                told = now;
            take_words(c, 0, TAG_HEARD, &w->heard_back);
            /* 2 stall_s for the answer: also when this rank was stopped in its wait, and tells
             * only now. */
            if (!said && told >= 0 && w->heard_back < k && now - told > 2 * stall) {
                fprintf(stderr, "mpigan: stall: rank %d has waited %.0f s in %s; rank 0 has not "
                                "reached it\n",
                        c->rank, waited, w->what);
                said = 1;
            }
        }
    }
}

/* The words still on their way, received, and the words sent, let go: before a communicator is
 * freed (after a watched barrier, so no wait of it is stalled any more). */
static void watch_free(const mg_comm *c)
{
    watch *w = c->w;
    if (!w)
        return;
    if (c->rank == 0) {
        take_words(c, MPI_ANY_SOURCE, TAG_WAITING, w->heard);
        for (int i = 0; i < c->size; i++)
            if (w->ack[i] != MPI_REQUEST_NULL)
                MPI_CHECK(MPI_Request_free(&w->ack[i])); /* one number: delivered eagerly */
        free(w->heard);
        free(w->told);
        free(w->ack);
    } else {
        take_words(c, 0, TAG_HEARD, &w->heard_back);
        if (w->sent != MPI_REQUEST_NULL)
            MPI_CHECK(MPI_Request_free(&w->sent));
    }
    free(w);
}

void mg_comm_watch(const mg_comm *c, double stall_s)
{
    c->w->stall_s = stall_s > 0 ? stall_s : 0;
}

void mg_comm_waiting_for(const mg_comm *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->w->what, sizeof c->w->what, fmt, ap);
    va_end(ap);
}

/* A barrier over c: for itself, and before MPI's own blocking collective calls (set-up, fences,
 * frees), so that a rank that does not come is reported there. */
static void barrier(const mg_comm *c)
{
    MPI_Request q;
    MPI_CHECK(MPI_Ibarrier(c->comm, &q));
    wait_all(c, 1, &q);
}

/* y += x over n values. */
MG_HOT static void add_into(mg_real *restrict y, const mg_real *restrict x, size_t n)
{
    for (size_t j = 0; j < n; j++)
        y[j] += x[j];
}

/* Posts a message of n elements of `size` bytes and MPI type `type` (to, or from, peer: any n,
 * in pieces) into req; how many. */
static int post_pieces(void *buf, size_t n, size_t size, MPI_Datatype type, int tag, int peer,
                       int recv, MPI_Comm comm, MPI_Request *req)
{
    const int k = pieces(n);
    for (int i = 0; i < k; i++) {
        char *p = (char *)buf + (size_t)i * MG_MPI_CHUNK * size;
        if (recv)
            MPI_CHECK(MPI_Irecv(p, piece_len(n, i), type, peer, tag, comm, &req[i]));
        else
            MPI_CHECK(MPI_Isend(p, piece_len(n, i), type, peer, tag, comm, &req[i]));
    }
    return k;
}

/* n values (mg_real) to or from peer. */
static int post_values(mg_real *buf, size_t n, int peer, int recv, MPI_Comm comm, MPI_Request *req)
{
    return post_pieces(buf, n, sizeof *buf, MG_MPI_REAL, 2, peer, recv, comm, req);
}

/* ---- bfloat16 transport (train.gradient_dtype) ---- */

/* x rounded to bfloat16 (the top 16 bits of a float, to nearest even); NaN stays NaN. */
static inline uint16_t to_bf16(mg_real x)
{
    const float f = (float)x;
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline mg_real from_bf16(uint16_t h)
{
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return (mg_real)f;
}

MG_HOT static void pack_bf16(uint16_t *restrict h, const mg_real *restrict x, size_t n)
{
    for (size_t j = 0; j < n; j++)
        h[j] = to_bf16(x[j]);
}

MG_HOT static void add_bf16(mg_real *restrict y, const uint16_t *restrict h, size_t n)
{
    for (size_t j = 0; j < n; j++)
        y[j] += from_bf16(h[j]);
}

MG_HOT static void widen_bf16(mg_real *restrict y, const uint16_t *restrict h, size_t n)
{
    for (size_t j = 0; j < n; j++)
        y[j] = from_bf16(h[j]);
}

/* x becomes what bfloat16 carries of it, and what that leaves out is added to e (error
 * feedback: the rounding a rank does joins its values of the next sum, which enter every sum
 * linearly, so nothing is lost over steps); e NULL: just the rounding. */
MG_HOT static void round_bf16(mg_real *restrict x, mg_real *restrict e, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        const mg_real q = from_bf16(to_bf16(x[j]));
        if (e)
            e[j] += x[j] - q;
        x[j] = q;
    }
}

/* x += e, and e = 0: the feedback joins this sum. */
MG_HOT static void take_feedback(mg_real *restrict x, mg_real *restrict e, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        x[j] += e[j];
        e[j] = 0;
    }
}

/* n bfloat16 values to or from peer. */
static int post_halves(uint16_t *buf, size_t n, int peer, int recv, MPI_Comm comm,
                       MPI_Request *req)
{
    return post_pieces(buf, n, sizeof *buf, MPI_UINT16_T, 5, peer, recv, comm, req);
}

/* How a ring's messages carry values in bfloat16 (NULL: all in mg_real). */
typedef struct {
    size_t exact;      /* values from here on travel in mg_real (the statistics) */
    uint16_t *hs, *hr; /* (chunk_max) one message in bfloat16, out and in */
    mg_real *e;        /* error feedback, indexed as buf, or NULL */
} bf16_ring;

/* Steps [first, last) of that ring: steps 0 to p - 2 sum (a reduce-scatter: rank i then holds
 * the whole sum of chunk ring_part(i)), steps p - 1 to 2 p - 3 pass the sums round (an allgather
 * of those chunks). tmp is needed by the first half only. The chunks are those of n values, and
 * only values below `limit` move: buf may end there (the parameters after a sharded update,
 * whose sums had a tail of statistics).
 *
 * With h, values [0, h->exact) of each message travel in bfloat16 and are added in mg_real: each
 * partial sum is rounded once per hop, so a sum of p values is off by at most (p + 1) 2^-8 of
 * the sum of their magnitudes. Before the second half each owner rounds its chunk's sums to what
 * bfloat16 carries, so that every rank ends with the same values. Every rounding of what this
 * rank sends goes into h->e (error feedback), if not NULL. */
static void ring_steps(const mg_comm *c, MPI_Comm comm, mg_real *buf, size_t n, size_t limit,
                       mg_real *tmp, const bf16_ring *h, int first, int last)
{
    int me, p;
    MPI_CHECK(MPI_Comm_rank(comm, &me));
    MPI_CHECK(MPI_Comm_size(comm, &p));
    const int right = (me + 1) % p, left = (me + p - 1) % p;
    const size_t most = chunk_max(n, p), exact = h ? h->exact : 0;
    MPI_Request small[SMALL_REQUESTS];
    MPI_Request *req = requests(4 * pieces(most), small);
    for (int step = first; step < last; step++) {
        const int pass = step >= p - 1; /* the sums round, into place */
        const int t = pass ? step - (p - 1) : step;
        const int out = ((me - t + pass) % p + p) % p, in = ((me - t - 1 + pass) % p + p) % p;
        /* each chunk: [lo, mid) in bfloat16, [mid, hi) in mg_real, nothing from limit on */
        size_t out_lo = chunk_start(n, out, p), in_lo = chunk_start(n, in, p);
        size_t out_hi = chunk_start(n, out + 1, p), in_hi = chunk_start(n, in + 1, p);
        out_lo = out_lo < limit ? out_lo : limit, out_hi = out_hi < limit ? out_hi : limit;
        in_lo = in_lo < limit ? in_lo : limit, in_hi = in_hi < limit ? in_hi : limit;
        const size_t out_mid = out_hi < exact ? out_hi : out_lo > exact ? out_lo : exact;
        const size_t in_mid = in_hi < exact ? in_hi : in_lo > exact ? in_lo : exact;
        int k = 0;
        if (h) { /* what leaves: a partial sum, or the owner's sums as every rank will have them */
            if (!pass || step == p - 1)
                round_bf16(buf + out_lo, h->e ? h->e + out_lo : NULL, out_mid - out_lo);
            pack_bf16(h->hs, buf + out_lo, out_mid - out_lo);
            k += post_halves(h->hr, in_mid - in_lo, left, 1, comm, req + k);
            k += post_halves(h->hs, out_mid - out_lo, right, 0, comm, req + k);
        }
        k += post_values(pass ? buf + in_mid : tmp, in_hi - in_mid, left, 1, comm, req + k);
        k += post_values(buf + out_mid, out_hi - out_mid, right, 0, comm, req + k);
        wait_all(c, k, req);
        if (h && pass)
            widen_bf16(buf + in_lo, h->hr, in_mid - in_lo);
        else if (h)
            add_bf16(buf + in_lo, h->hr, in_mid - in_lo);
        if (!pass)
            add_into(buf + in_mid, tmp, in_hi - in_mid);
    }
    requests_free(req, small);
}

/* MPI_SUM of bfloat16 values, added in float and rounded once per pair (for the buckets). */
static void bf16_sum(void *in, void *inout, int *len, MPI_Datatype *type)
{
    (void)type;
    const uint16_t *a = in;
    uint16_t *b = inout;
    for (int j = 0; j < *len; j++)
        b[j] = to_bf16((mg_real)((float)from_bf16(a[j]) + (float)from_bf16(b[j])));
}

static MPI_Op bf16_op(void)
{
    static MPI_Op op = MPI_OP_NULL;
    if (op == MPI_OP_NULL)
        MPI_CHECK(MPI_Op_create(bf16_sum, 1, &op));
    return op;
}

/* The chunk whose whole sum rank `me` of p holds after the ring's first half. */
static int ring_part(int me, int p)
{
    return (me + 1) % p;
}

/* In-place sum of n values over the ranks of comm (c itself, or a part of c: the ranks across
 * nodes), each of its steps a watched wait of c; tmp holds chunk_max(n, ranks of comm) values.
 *
 * A ring of point-to-point messages rather than MPI_Iallreduce, which is about twice as slow as
 * MPI_Allreduce on large buffers in Open MPI 4.1 (libnbc), while a blocking MPI_Allreduce cannot
 * be watched: p - 1 steps each send the chunk summed so far to the right and add the chunk from
 * the left, leaving rank i with the whole sum of chunk i + 1; p - 1 more pass the sums round.
 * Every rank moves 2 (p - 1) / p n values and adds (p - 1) / p n, as MPI's own ring and
 * Rabenseifner algorithms for large messages do, and every rank gets the same bits. With two
 * ranks each sum is a + b, which is MPI_Allreduce's b + a bit for bit. */
static void sum_over(const mg_comm *c, MPI_Comm comm, mg_real *buf, size_t n, mg_real *tmp)
{
    int p;
    MPI_CHECK(MPI_Comm_size(comm, &p));
    ring_steps(c, comm, buf, n, n, tmp, NULL, 0, 2 * (p - 1));
}

/* Bytes from root to all over comm (c, or a part of c), watched on c. */
static void bcast_over(const mg_comm *c, MPI_Comm comm, void *buf, size_t bytes, int root)
{
    MPI_Request small[SMALL_REQUESTS];
    const int k = pieces(bytes);
    MPI_Request *req = requests(k, small);
    for (int i = 0; i < k; i++)
        MPI_CHECK(MPI_Ibcast((char *)buf + (size_t)i * MG_MPI_CHUNK, piece_len(bytes, i),
                             MPI_BYTE, root, comm, &req[i]));
    wait_all(c, k, req);
    requests_free(req, small);
}

/* ---- communicators ---- */

static void describe(struct mg_comm *c)
{
    MPI_CHECK(MPI_Comm_rank(c->comm, &c->rank));
    MPI_CHECK(MPI_Comm_size(c->comm, &c->size));
    MPI_Comm node;
    MPI_CHECK(MPI_Comm_split_type(c->comm, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node));
    MPI_CHECK(MPI_Comm_size(node, &c->node_size));
    MPI_CHECK(MPI_Comm_free(&node));
}

void mg_comm_init(int *argc, char ***argv)
{
    MPI_CHECK(MPI_Init(argc, argv));
    world.comm = MPI_COMM_WORLD;
    describe(&world);
    world.w = watch_new(world.rank, world.size, NULL);
}

void mg_comm_finalize(void)
{
    /* MPI_Finalize waits for every rank unwatched: a rank still writing its last file would
     * leave the others there in silence. */
    mg_comm_waiting_for(&world, "the end of the run");
    barrier(&world);
    watch_free(&world);
    world.w = NULL;
    MPI_Finalize();
}

const mg_comm *mg_comm_world(void)
{
    return &world;
}

int mg_comm_rank(const mg_comm *c)
{
    return c->rank;
}

int mg_comm_size(const mg_comm *c)
{
    return c->size;
}

int mg_comm_node_size(const mg_comm *c)
{
    return c->node_size;
}

/* Open MPI backs a shared window with a file in its osc_sm_backing_directory (/dev/shm by
 * default), which the node's first rank creates. When that fails, that rank returns an error while
 * the node's others wait in the window's own broadcast: the job hangs instead of failing (Open MPI
 * 4.1). So the node's first rank first checks that the directory has room for `bytes` and a margin,
 * and no rank of c tries unless every node has it. (With another MPI the directory may not exist:
 * then no window is tried, and the callers keep private buffers.) Collective over c. */
static int nodes_have_room(const mg_comm *c, MPI_Comm node, size_t bytes)
{
    int node_rank, ok = 1;
    MPI_CHECK(MPI_Comm_rank(node, &node_rank));
    if (node_rank == 0) {
        const char *dir = getenv("OMPI_MCA_osc_sm_backing_directory");
        struct statvfs st;
        ok = statvfs(dir && *dir ? dir : "/dev/shm", &st) == 0 &&
             (double)st.f_bavail * (double)st.f_frsize >= 1.05 * (double)bytes + (16 << 20);
    }
    MPI_Request q;
    MPI_CHECK(MPI_Ibcast(&ok, 1, MPI_INT, 0, node, &q));
    wait_all(c, 1, &q);
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_LAND, c->comm, &q));
    wait_all(c, 1, &q);
    return ok;
}

/* The one way to make a shared window: collective over c, each rank of `node` giving `mine` bytes
 * (the node `node_bytes` in all). 1 with *win on every rank, or 0 with MPI_WIN_NULL on every rank:
 * no room on some node, or the allocation failed somewhere (asked of every rank before use). The
 * agreement on room just before is the watched barrier of the allocation. */
static int window_alloc(const mg_comm *c, MPI_Comm node, size_t mine, int disp_unit,
                        size_t node_bytes, MPI_Win *win)
{
    *win = MPI_WIN_NULL;
    if (!nodes_have_room(c, node, node_bytes))
        return 0;
    MPI_CHECK(MPI_Comm_set_errhandler(node, MPI_ERRORS_RETURN));
    void *base = NULL;
    int rc = MPI_Win_allocate_shared((MPI_Aint)mine, disp_unit, MPI_INFO_NULL, node, &base, win);
    int ok = rc == MPI_SUCCESS;
    MPI_Request q;
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_LAND, c->comm, &q));
    wait_all(c, 1, &q);
    MPI_CHECK(MPI_Comm_set_errhandler(node, MPI_ERRORS_ARE_FATAL));
    if (!ok) {
        if (rc == MPI_SUCCESS)
            MPI_Win_free(win);
        *win = MPI_WIN_NULL;
    }
    return ok;
}

mg_shared *mg_comm_shared_alloc(const mg_comm *c, size_t bytes, void **base)
{
    mg_shared *s = mg_xcalloc(1, sizeof *s);
    s->c = c;
    s->win = MPI_WIN_NULL;
    int node_rank;
    barrier(c);
    MPI_CHECK(MPI_Comm_split_type(c->comm, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &s->node));
    MPI_CHECK(MPI_Comm_rank(s->node, &node_rank));
    MPI_CHECK(MPI_Comm_split(c->comm, node_rank == 0 ? 0 : MPI_UNDEFINED, c->rank, &s->leaders));
    /* One block per node, held by its first rank. */
    if (!window_alloc(c, s->node, node_rank == 0 ? bytes : 0, 1, bytes, &s->win)) {
        mg_comm_shared_free(s);
        return NULL;
    }
    MPI_Aint size;
    int disp;
    MPI_CHECK(MPI_Win_shared_query(s->win, 0, &size, &disp, &s->base));
    s->bytes = bytes;
    *base = s->base;
    return s;
}

/* A fence of the window (a blocking collective of its node) after a watched barrier. */
static void fence(const mg_shared *s)
{
    barrier(s->c);
    MPI_CHECK(MPI_Win_fence(0, s->win));
}

void mg_comm_shared_bcast(const mg_comm *c, mg_shared *s, int root)
{
    /* root is a node's first rank (the loader is world rank 0): leaders carry the data between
     * nodes, then a fence makes the node leader's writes visible to its node. The others count
     * the leaders' two waits as done, so that every rank of c counts the same waits. */
    fence(s);
    if (s->leaders != MPI_COMM_NULL) {
        int me, who = -1;
        MPI_CHECK(MPI_Comm_rank(s->leaders, &me));
        int cand = c->rank == root ? me : -1;
        MPI_Request q;
        MPI_CHECK(MPI_Iallreduce(&cand, &who, 1, MPI_INT, MPI_MAX, s->leaders, &q));
        wait_all(c, 1, &q);
        bcast_over(c, s->leaders, s->base, s->bytes, who);
    } else {
        wait_all(c, 0, NULL);
        wait_all(c, 0, NULL);
    }
    fence(s);
}

void mg_comm_shared_free(mg_shared *s)
{
    if (!s)
        return;
    if (s->win != MPI_WIN_NULL) {
        barrier(s->c); /* MPI_Win_free waits for the node */
        MPI_Win_free(&s->win);
    }
    if (s->leaders != MPI_COMM_NULL)
        MPI_Comm_free(&s->leaders);
    MPI_Comm_free(&s->node);
    free(s);
}

mg_comm *mg_comm_split(const mg_comm *c, int color)
{
    MPI_Comm sub;
    barrier(c);
    MPI_CHECK(MPI_Comm_split(c->comm, color < 0 ? MPI_UNDEFINED : color, c->rank, &sub));
    if (sub == MPI_COMM_NULL)
        return NULL;
    mg_comm *s = mg_xcalloc(1, sizeof *s);
    s->comm = sub;
    describe(s);
    s->w = watch_new(s->rank, s->size, c->w);
    return s;
}

void mg_comm_free(mg_comm *c)
{
    if (!c)
        return;
    watch_free(c);
    MPI_CHECK(MPI_Comm_free(&c->comm));
    free(c);
}

/* Sums of doubles: batch norms' statistics, a few per channel. All pieces in flight, watched. */
void mg_comm_allreduce_double(const mg_comm *c, double *buf, size_t n)
{
    const int k = pieces(n);
    MPI_Request small[SMALL_REQUESTS];
    MPI_Request *req = requests(k, small);
    size_t at = 0;
    for (int i = 0; i < k; i++) {
        const int len = piece_len(n, i);
        MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buf + at, len, MPI_DOUBLE, MPI_SUM, c->comm,
                                 &req[i]));
        at += (size_t)len;
    }
    wait_all(c, k, req);
    requests_free(req, small);
}

void mg_comm_allreduce_sum(const mg_comm *c, mg_real *buf, size_t n)
{
    mg_real *tmp = mg_xmalloc((chunk_max(n, c->size) + 1) * sizeof *tmp);
    sum_over(c, c->comm, buf, n, tmp);
    free(tmp);
}

struct mg_request {
    MPI_Request req;
    const mg_comm *c; /* where it was started: its finish is a wait of c */
    int started;      /* started and not finished: a wait to count, even if MPI_Test completed it */
};

mg_request *mg_request_new(void)
{
    mg_request *r = mg_xcalloc(1, sizeof *r);
    r->req = MPI_REQUEST_NULL;
    return r;
}

void mg_request_free(mg_request *r)
{
    if (r && r->started)
        mg_comm_finish(r);
    free(r);
}

void mg_comm_allreduce_start(const mg_comm *c, mg_real *buf, size_t n, mg_request *r)
{
    if (n > MG_MPI_CHUNK) { /* one request carries an int count: the rare huge net blocks */
        mg_comm_allreduce_sum(c, buf, n);
        return;
    }
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MG_MPI_REAL, MPI_SUM, c->comm, &r->req));
    r->c = c;
    r->started = 1;
}

void mg_comm_progress(mg_request *r)
{
    int done;
    if (r->req != MPI_REQUEST_NULL)
        MPI_CHECK(MPI_Test(&r->req, &done, MPI_STATUS_IGNORE));
}

void mg_comm_finish(mg_request *r)
{
    if (r->started)
        wait_all(r->c, 1, &r->req);
    r->started = 0;
}

/* ---- gradient sums ---- */

struct mg_reducer {
    const mg_comm *c;
    size_t n;
    mg_real *own;     /* (n) this rank's buffer: its slot in the window, or private */
    int owns;         /* own was allocated here (a private buffer the caller did not give) */
    MPI_Win win;      /* MPI_WIN_NULL: private buffer, summed through MPI */
    MPI_Comm node;    /* the ranks sharing the window */
    MPI_Comm across;  /* the ranks of the same node index on every node (MPI_COMM_NULL: 1 node) */
    int node_rank, node_size;
    mg_real **slot;   /* (node_size) every slot of the node */
    size_t lo, hi;    /* this rank's chunk of every slot */
    size_t flag;      /* where in its own slot an owner says whether its chunk's sums are finite */
    mg_real *tmp;     /* (chunk_max) one chunk of a sum through MPI (sum_over) */
    int finite;       /* every value of the last shared sum is finite */

    /* A sharded update (mg_reducer_shard): */
    int sharded;
    int *counts, *displs; /* (c->size) every rank's part, for gather_parts */
    size_t main_n;    /* n - tail: the values that are parted; the tail is summed onto every rank */
    size_t part_lo, part_hi; /* this rank's part of [0, main_n) */
    MPI_Win pwin;     /* the node's one copy of the parameters; MPI_WIN_NULL: the caller's */
    mg_real *params;  /* (main_n) the parameters the parts are gathered into */
    double *verdict;  /* (tail + 1) the tail's sums and a count of bad parts: one small sum */

    /* Buckets (mg_reducer_buckets), for a private buffer or shared sums between nodes: */
    int n_buckets;    /* 0: the sums run after the backward pass (the ring) */
    MPI_Comm group;   /* the buckets' messages go between its ranks: c->comm, or across */
    int gp, gme;      /* its size and this rank's place in it */
    MPI_Request *nreq; /* shared: (n_buckets) each bucket's node barrier, before its node sum */
    int launched;     /* buckets sent between ranks, from the top (shared: node sums done) */
    size_t *cut;      /* (n_buckets + 1) bucket b is [cut[b], cut[b + 1]); cut[n_buckets] = main_n */
    MPI_Request *breq; /* (n_buckets + 1) each bucket's sum or gather in flight, then the
                        * gather's verdict */
    int started;      /* buckets started, from the top: b >= n_buckets - started */
    MPI_Comm gathers; /* a sharded update's gathers of buckets (mg_reducer_gather_start) */
    MPI_Comm judges;  /* their verdict among all ranks: gathers, or with shared sums (whose
                       * gathers are among the ranks of one node index) a dup of c's */
    int gathered, posted; /* mg_reducer_gather_start's buckets [0, gathered) are in and
                           * [gathered, posted) in flight; n_buckets both when none is */
    int judging;      /* its verdict is in flight */
    int all_ok;       /* the verdict: every rank's update left its part finite */
    int *bcounts, *bdispls; /* sharded: (n_buckets, size) every rank's piece of each bucket */
    void *xin;        /* sharded: every other rank's values of this rank's piece of one bucket
                       * (float, or bfloat16 with bf16): room for the largest bucket's */
    int summed;       /* buckets, from the top, whose piece is summed (their receives done) */
    int receiving;    /* the receives of bucket n_buckets - 1 - summed are posted */
    MPI_Request *xreq; /* (n_buckets, 2 (size - 1)) each bucket's exchange: its receives, then
                        * its sends */

    /* bfloat16 between nodes (mg_reducer_compress): */
    int bf16;
    size_t exact;     /* values from here on (the statistics) travel in full precision */
    mg_real *residual; /* (n) error feedback: what rounding left out of the last sum, or NULL */
    uint16_t *hs, *hr; /* the ring's messages in bfloat16 (chunk_max) */
    uint16_t *b16;    /* (exact) the buckets' values in bfloat16 */
};


/* Tries the shared window; 0 (on every rank alike) when it cannot be had. */
static int reducer_share(mg_reducer *r, int group)
{
    const mg_comm *c = r->c;
    MPI_Comm node;
    barrier(c); /* before MPI's splits, which wait for every rank of c */
    MPI_CHECK(MPI_Comm_split_type(c->comm, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node));
    if (group > 0) { /* test hook: nodes of `group` ranks */
        int nr;
        MPI_CHECK(MPI_Comm_rank(node, &nr));
        MPI_Comm sub;
        MPI_CHECK(MPI_Comm_split(node, nr / group, nr, &sub));
        MPI_CHECK(MPI_Comm_free(&node));
        node = sub;
    }
    MPI_CHECK(MPI_Comm_rank(node, &r->node_rank));
    MPI_CHECK(MPI_Comm_size(node, &r->node_size));
    int sizes[2] = {r->node_size, -r->node_size}; /* max and -min in one call */
    MPI_Request q;
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, sizes, 2, MPI_INT, MPI_MAX, c->comm, &q));
    wait_all(c, 1, &q);
    if (sizes[0] != -sizes[1] || r->node_size < 2) {
        MPI_CHECK(MPI_Comm_free(&node));
        return 0;
    }
    /* Each rank's slot is its own part of the window, padded to whole cache lines, then one
     * line for its flag. */
    const size_t padded = (r->n + 15) & ~(size_t)15;
    r->flag = padded;
    const size_t slot_bytes = (padded + 16) * sizeof(mg_real);
    MPI_Win win;
    if (!window_alloc(c, node, slot_bytes, sizeof(mg_real), (size_t)r->node_size * slot_bytes,
                      &win)) {
        MPI_CHECK(MPI_Comm_free(&node));
        return 0;
    }
    r->win = win;
    r->node = node;
    r->slot = mg_xcalloc((size_t)r->node_size, sizeof *r->slot);
    for (int i = 0; i < r->node_size; i++) {
        MPI_Aint bytes;
        int disp;
        MPI_CHECK(MPI_Win_shared_query(win, i, &bytes, &disp, &r->slot[i]));
    }
    r->own = r->slot[r->node_rank];
    r->lo = chunk_start(r->n, r->node_rank, r->node_size);
    r->hi = chunk_start(r->n, r->node_rank + 1, r->node_size);
    /* Ranks of one node index across nodes; with a single node there is nobody to talk to. */
    int nodes = c->size / r->node_size;
    r->across = MPI_COMM_NULL;
    if (nodes > 1) {
        barrier(c);
        MPI_CHECK(MPI_Comm_split(c->comm, r->node_rank, c->rank, &r->across));
        r->tmp = mg_xmalloc((chunk_max(r->hi - r->lo, nodes) + 1) * sizeof *r->tmp);
    }
    /* One passive-target epoch for the window's life: MPI_Win_sync then orders the loads and
     * stores around each node barrier (MPI-3's unified model). */
    MPI_CHECK(MPI_Win_lock_all(MPI_MODE_NOCHECK, win));
    return 1;
}

mg_reducer *mg_reducer_new(const mg_comm *c, size_t n, int shared, int group, mg_real *buffer)
{
    mg_reducer *r = mg_xcalloc(1, sizeof *r);
    r->c = c;
    r->n = n;
    r->win = r->pwin = MPI_WIN_NULL;
    r->node = r->across = r->gathers = r->judges = MPI_COMM_NULL;
    if (!(shared && c->size > 1 && reducer_share(r, group))) {
        r->owns = buffer == NULL;
        r->own = buffer ? buffer : mg_xcalloc(n, sizeof *r->own);
        if (c->size > 1)
            r->tmp = mg_xmalloc((chunk_max(n, c->size) + 1) * sizeof *r->tmp);
    }
    return r;
}

void mg_reducer_free(mg_reducer *r)
{
    if (!r)
        return;
    if (r->pwin != MPI_WIN_NULL) {
        barrier(r->c);
        MPI_Win_unlock_all(r->pwin);
        MPI_Win_free(&r->pwin);
    }
    if (r->judges != MPI_COMM_NULL && r->judges != r->gathers)
        MPI_Comm_free(&r->judges);
    if (r->gathers != MPI_COMM_NULL)
        MPI_Comm_free(&r->gathers);
    free(r->verdict);
    free(r->counts);
    free(r->cut);
    free(r->breq);
    free(r->nreq);
    free(r->bcounts);
    free(r->xin);
    free(r->xreq);
    free(r->residual);
    free(r->hs);
    free(r->hr);
    free(r->b16);
    if (r->win != MPI_WIN_NULL) {
        barrier(r->c); /* MPI_Win_free waits for the node */
        MPI_Win_unlock_all(r->win);
        MPI_Win_free(&r->win);
        MPI_Comm_free(&r->node);
        if (r->across != MPI_COMM_NULL)
            MPI_Comm_free(&r->across);
        free(r->slot);
    } else if (r->owns) {
        free(r->own);
    }
    free(r->tmp);
    free(r);
}

mg_real *mg_reducer_buffer(const mg_reducer *r)
{
    return r->own;
}

int mg_reducer_shared(const mg_reducer *r)
{
    return r->win != MPI_WIN_NULL;
}

/* Every rank of the node has written what it wrote before this, and sees the others' writes.
 * A wait of the reducer's communicator, watched there. */
static void node_barrier(const mg_reducer *r)
{
    MPI_Request q;
    MPI_CHECK(MPI_Win_sync(r->win));
    if (r->pwin != MPI_WIN_NULL)
        MPI_CHECK(MPI_Win_sync(r->pwin));
    MPI_CHECK(MPI_Ibarrier(r->node, &q));
    wait_all(r->c, 1, &q);
    MPI_CHECK(MPI_Win_sync(r->win));
    if (r->pwin != MPI_WIN_NULL)
        MPI_CHECK(MPI_Win_sync(r->pwin));
}

/* slot[0] + slot[1] + ... over [lo, hi), a block at a time so the sum stays in L1, written back
 * into every slot (all) or only into slot `to`. Returns non-zero if a sum is not finite. */
MG_HOT static int sum_slots(mg_real *const *slot, int k, size_t lo, size_t hi, int all, int to)
{
    enum { BLOCK = 1024 };
    mg_real acc[BLOCK];
    int bad = 0;
    for (size_t b = lo; b < hi; b += BLOCK) {
        const size_t m = hi - b < BLOCK ? hi - b : BLOCK;
        memcpy(acc, slot[0] + b, m * sizeof *acc);
        for (int i = 1; i < k; i++) {
            const mg_real *restrict x = slot[i] + b;
            for (size_t j = 0; j < m; j++)
                acc[j] += x[j];
        }
        bad |= !mg_finite_bits(acc, m);
        for (int i = 0; i < k; i++)
            if (all || i == to)
                memcpy(slot[i] + b, acc, m * sizeof *acc);
    }
    return bad;
}

/* Slot `from`'s [lo, hi) into every other slot; non-zero if a value is not finite. */
MG_HOT static int spread_slots(mg_real *const *slot, int k, size_t lo, size_t hi, int from)
{
    enum { BLOCK = 1024 };
    int bad = 0;
    for (size_t b = lo; b < hi; b += BLOCK) {
        const size_t m = hi - b < BLOCK ? hi - b : BLOCK;
        bad |= !mg_finite_bits(slot[from] + b, m);
        for (int i = 0; i < k; i++)
            if (i != from)
                memcpy(slot[i] + b, slot[from] + b, m * sizeof **slot);
    }
    return bad;
}

static int buckets_finish(mg_reducer *r);
static void private_ring(mg_reducer *r, int first, int last);
static void across_ring(mg_reducer *r, int first, int last);

void mg_reducer_sum(mg_reducer *r)
{
    if (r->n_buckets) {
        buckets_finish(r);
        return;
    }
    if (r->win == MPI_WIN_NULL) {
        if (r->c->size > 1)
            private_ring(r, 0, 2 * (r->c->size - 1));
        return;
    }
    node_barrier(r);
    int bad;
    if (r->across == MPI_COMM_NULL) {
        bad = sum_slots(r->slot, r->node_size, r->lo, r->hi, 1, -1);
    } else {
        sum_slots(r->slot, r->node_size, r->lo, r->hi, 0, r->node_rank);
        int nodes;
        MPI_CHECK(MPI_Comm_size(r->across, &nodes));
        across_ring(r, 0, 2 * (nodes - 1));
        bad = spread_slots(r->slot, r->node_size, r->lo, r->hi, r->node_rank);
    }
    /* Every chunk's sums are the same on every node, so is every owner's word, and every rank
     * reads the same verdict after the barrier. */
    r->own[r->flag] = (mg_real)bad;
    node_barrier(r);
    r->finite = 1;
    for (int i = 0; i < r->node_size; i++)
        r->finite &= r->slot[i][r->flag] == 0;
}

int mg_reducer_finite(const mg_reducer *r)
{
    return r->finite;
}

/* ---- bfloat16 between nodes ---- */

void mg_reducer_compress(mg_reducer *r, size_t tail, int feedback)
{
    const mg_comm *c = r->c;
    if (c->size == 1 || (r->win != MPI_WIN_NULL && r->across == MPI_COMM_NULL))
        return; /* nothing travels, or only within a node */
    r->bf16 = 1;
    r->exact = r->n - tail;
    if (feedback)
        r->residual = mg_xcalloc(r->n, sizeof *r->residual);
    size_t most;
    if (r->win == MPI_WIN_NULL) {
        most = chunk_max(r->n, c->size);
    } else {
        int nodes;
        MPI_CHECK(MPI_Comm_size(r->across, &nodes));
        most = chunk_max(r->hi - r->lo, nodes);
    }
    r->hs = mg_xmalloc((most + 1) * sizeof *r->hs);
    r->hr = mg_xmalloc((most + 1) * sizeof *r->hr);
    if (r->n_buckets)
        r->b16 = mg_xmalloc((r->exact + 1) * sizeof *r->b16);
}

/* The ring over c of this rank's own values (a private buffer), steps [first, last), through
 * bfloat16 when compressing (error feedback on the rank's own values first). */
static void private_ring(mg_reducer *r, int first, int last)
{
    const mg_comm *c = r->c;
    if (!r->bf16) {
        ring_steps(c, c->comm, r->own, r->n, r->n, r->tmp, NULL, first, last);
        return;
    }
    if (first == 0 && r->residual)
        take_feedback(r->own, r->residual, r->exact);
    const bf16_ring h = {.exact = r->exact, .hs = r->hs, .hr = r->hr, .e = r->residual};
    ring_steps(c, c->comm, r->own, r->n, r->n, r->tmp, &h, first, last);
}

/* The same for a node chunk's sums between nodes (a shared reducer's ring across). */
static void across_ring(mg_reducer *r, int first, int last)
{
    const mg_comm *c = r->c;
    const size_t len = r->hi - r->lo;
    if (!r->bf16) {
        ring_steps(c, r->across, r->own + r->lo, len, len, r->tmp, NULL, first, last);
        return;
    }
    const size_t exact = r->exact > r->lo ? (r->exact - r->lo < len ? r->exact - r->lo : len) : 0;
    mg_real *e = r->residual ? r->residual + r->lo : NULL;
    if (first == 0 && e)
        take_feedback(r->own + r->lo, e, exact);
    const bf16_ring h = {.exact = exact, .hs = r->hs, .hr = r->hr, .e = e};
    ring_steps(c, r->across, r->own + r->lo, len, len, r->tmp, &h, first, last);
}

/* ---- buckets ---- */

int mg_reducer_buckets(mg_reducer *r, size_t tail, const size_t *cuts, int n_cuts)
{
    if (r->c->size == 1 || (r->win != MPI_WIN_NULL && r->across == MPI_COMM_NULL))
        return 0; /* one node's shared sums are its ranks' own work after the pass */
    for (int i = 0; i < n_cuts; i++)
        if (cuts[i] > INT_MAX || (i > 0 && cuts[i] - cuts[i - 1] > INT_MAX))
            return 0; /* a bucket over MPI's int count: the ring's pieces instead */
    r->main_n = r->n - tail;
    if (r->main_n - (n_cuts ? cuts[n_cuts - 1] : 0) > INT_MAX)
        return 0;
    if (!r->verdict)
        r->verdict = mg_xcalloc(tail + 1, sizeof *r->verdict);
    r->n_buckets = n_cuts + 1;
    r->cut = mg_xmalloc(((size_t)r->n_buckets + 1) * sizeof *r->cut);
    r->cut[0] = 0;
    for (int i = 0; i < n_cuts; i++)
        r->cut[i + 1] = cuts[i];
    r->cut[r->n_buckets] = r->main_n;
    r->breq = mg_xmalloc(((size_t)r->n_buckets + 1) * sizeof *r->breq);
    for (int b = 0; b <= r->n_buckets; b++)
        r->breq[b] = MPI_REQUEST_NULL;
    r->started = r->launched = 0;
    r->gathered = r->posted = r->n_buckets;
    /* With shared sums a bucket goes between nodes once the node has summed it: each rank its
     * piece of it, with the ranks of its node index (buckets_launch). */
    r->group = r->win == MPI_WIN_NULL ? r->c->comm : r->across;
    MPI_CHECK(MPI_Comm_size(r->group, &r->gp));
    MPI_CHECK(MPI_Comm_rank(r->group, &r->gme));
    if (r->win != MPI_WIN_NULL) {
        r->nreq = mg_xmalloc((size_t)r->n_buckets * sizeof *r->nreq);
        for (int b = 0; b < r->n_buckets; b++)
            r->nreq[b] = MPI_REQUEST_NULL;
    }
    /* The gathers of a sharded update post their buckets as the earlier ones arrive, a moment
     * that differs from rank to rank: on a communicator of their own, where nothing else is
     * posted in between. */
    MPI_CHECK(MPI_Comm_dup(r->group, &r->gathers));
    r->judges = r->gathers;
    if (r->win != MPI_WIN_NULL)
        MPI_CHECK(MPI_Comm_dup(r->c->comm, &r->judges));
    return 1;
}

int mg_reducer_bucketed(const mg_reducer *r)
{
    return r->n_buckets > 0;
}

/* Node rank q's chunk [*lo, *hi) of bucket b: with shared sums the values it sums over the
 * node's slots and sends between nodes; from a private buffer the whole bucket. */
static void bucket_chunk(const mg_reducer *r, int b, int q, size_t *lo, size_t *hi)
{
    *lo = r->cut[b];
    *hi = r->cut[b + 1];
    if (r->win == MPI_WIN_NULL)
        return;
    *lo = r->cut[b] + chunk_start(r->cut[b + 1] - r->cut[b], q, r->node_size);
    *hi = r->cut[b] + chunk_start(r->cut[b + 1] - r->cut[b], q + 1, r->node_size);
}

/* Where this rank's chunk of bucket b starts, and its length. */
static size_t bucket_lo(const mg_reducer *r, int b)
{
    size_t lo, hi;
    bucket_chunk(r, b, r->node_rank, &lo, &hi);
    return lo;
}

static size_t bucket_len(const mg_reducer *r, int b)
{
    size_t lo, hi;
    bucket_chunk(r, b, r->node_rank, &lo, &hi);
    return hi - lo;
}

/* Every rank's piece of bucket b when sharded: chunk q of the bucket's values for rank q. */
static void bucket_pieces(mg_reducer *r)
{
    const int p = r->gp;
    r->bcounts = mg_xmalloc(2 * (size_t)r->n_buckets * p * sizeof *r->bcounts);
    r->bdispls = r->bcounts + (size_t)r->n_buckets * p;
    for (int b = 0; b < r->n_buckets; b++) {
        const size_t len = bucket_len(r, b);
        for (int q = 0; q < p; q++) {
            r->bdispls[(size_t)b * p + q] = (int)chunk_start(len, q, p);
            r->bcounts[(size_t)b * p + q] = (int)(chunk_start(len, q + 1, p) - chunk_start(len, q, p));
        }
    }
    /* room for what the others send of this rank's piece of one bucket, the largest
     * (exchange_drain) */
    const int me = r->gme;
    size_t in = 0;
    for (int b = 0; b < r->n_buckets; b++)
        if ((size_t)(p - 1) * (size_t)r->bcounts[(size_t)b * p + me] > in)
            in = (size_t)(p - 1) * (size_t)r->bcounts[(size_t)b * p + me];
    r->xin = mg_xmalloc((in + 1) * (r->bf16 ? sizeof(uint16_t) : sizeof(mg_real)));
    r->summed = r->receiving = 0;
    r->xreq = mg_xmalloc((size_t)r->n_buckets * 2 * (p - 1) * sizeof *r->xreq);
    for (size_t i = 0; i < (size_t)r->n_buckets * 2 * (p - 1); i++)
        r->xreq[i] = MPI_REQUEST_NULL;
}

/* Where the values from rank q (not me) go among a piece's p - 1 others in xin. */
static int peer_slot(int q, int me)
{
    return q < me ? q : q - 1;
}

/* The requests of buckets [first, n_buckets)' sums: one each, or a sharded exchange's
 * 2 (size - 1) each; their count into *n. */
static MPI_Request *sum_requests(const mg_reducer *r, int first, int *n)
{
    const int per = r->sharded ? 2 * (r->gp - 1) : 1;
    *n = (r->n_buckets - first) * per;
    return (r->sharded ? r->xreq : r->breq) + (size_t)first * per;
}

/* Bucket b's reduce-scatter with a sharded update, as point-to-point messages (on r->gathers,
 * tag b): this rank sends piece q of its values (float, or bfloat16 from `h`) to rank q, all at
 * once, and receives every other rank's values of its own piece into xin once xin is free
 * (exchange_drain: one bucket at a time, in the order they started). MPI_Ireduce_scatter
 * would be the one call, but Open MPI 4.1's (libnbc) reduces the whole bucket to rank 0 by a
 * binomial tree and then scatters it: (log2 N + 1) times the bytes of this exchange, which moves
 * (N - 1) / N of the bucket each way, like a ring, without a ring's N - 1 steps that would each
 * need a progress call (docs/scaling.md section 9). Partners go round from the next rank on, so
 * that no rank is everyone's first. */
static void exchange_start(mg_reducer *r, int b, const void *values)
{
    const int p = r->gp, me = r->gme;
    const size_t k = (size_t)b * p;
    const MPI_Datatype type = r->bf16 ? MPI_UINT16_T : MG_MPI_REAL;
    const size_t size = r->bf16 ? sizeof(uint16_t) : sizeof(mg_real);
    MPI_Request *q = r->xreq + (size_t)b * 2 * (p - 1) + (p - 1);
    for (int i = 1; i < p; i++) {
        const int to = (me + i) % p;
        MPI_CHECK(MPI_Isend((const char *)values + (size_t)r->bdispls[k + to] * size,
                            r->bcounts[k + to], type, to, b, r->gathers, q++));
    }
}

/* The receives of bucket b's exchange into xin, from every other rank (the next one first). */
static void exchange_receive(mg_reducer *r, int b)
{
    const int p = r->gp, me = r->gme;
    const MPI_Datatype type = r->bf16 ? MPI_UINT16_T : MG_MPI_REAL;
    const size_t size = r->bf16 ? sizeof(uint16_t) : sizeof(mg_real);
    const int mine = r->bcounts[(size_t)b * p + me];
    MPI_Request *q = r->xreq + (size_t)b * 2 * (p - 1);
    for (int i = 1; i < p; i++) {
        const int from = (me + i) % p;
        char *into = (char *)r->xin + (size_t)peer_slot(from, me) * mine * size;
        MPI_CHECK(MPI_Irecv(into, mine, type, from, b, r->gathers, q++));
    }
    r->receiving = 1;
}

/* This rank's piece of bucket b summed, in rank order, from its own values (at `at`, float, or
 * bfloat16 at `h`) and the others' in xin: written as float at the piece's place in `at`. */
MG_HOT static void exchange_sum(mg_reducer *r, int b, mg_real *at, const uint16_t *h)
{
    const int p = r->gp, me = r->gme;
    const size_t k = (size_t)b * p, off = (size_t)r->bdispls[k + me];
    const size_t n = (size_t)r->bcounts[k + me];
    mg_real *own = at + off;
    if (r->bf16) {
        const uint16_t *in = (const uint16_t *)r->xin;
        for (size_t j = 0; j < n; j++) {
            mg_real sum = 0;
            for (int q = 0; q < p; q++)
                sum += from_bf16(q == me ? h[off + j] : in[(size_t)peer_slot(q, me) * n + j]);
            own[j] = sum;
        }
        return;
    }
    const mg_real *in = (const mg_real *)r->xin;
    for (size_t j = 0; j < n; j++) {
        mg_real sum = me == 0 ? own[j] : in[j];
        for (int q = 1; q < p; q++)
            sum += q == me ? own[j] : in[(size_t)peer_slot(q, me) * n + j];
        own[j] = sum;
    }
}

/* Bucket b's values (this rank's piece of the node's sums, with shared sums) sent between the
 * ranks of the group: summed by MPI_Iallreduce, or sharded, exchanged (exchange_start). */
static void bucket_send(mg_reducer *r, int b)
{
    const size_t lo = bucket_lo(r, b), len = bucket_len(r, b);
    mg_real *at = r->own + lo;
    if (r->bf16) {
        /* this rank's rounding fed back; MPI's own, pair by pair in its reduction, is not */
        uint16_t *h = r->b16 + lo;
        if (r->residual) {
            take_feedback(at, r->residual + lo, len);
            round_bf16(at, r->residual + lo, len);
        }
        pack_bf16(h, at, len);
        if (r->sharded)
            exchange_start(r, b, h);
        else
            MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, h, (int)len, MPI_UINT16_T, bf16_op(), r->group,
                                     &r->breq[b]));
        return;
    }
    if (r->sharded)
        exchange_start(r, b, at);
    else
        MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, at, (int)len, MG_MPI_REAL, MPI_SUM, r->group,
                                 &r->breq[b]));
}

/* Bucket b written by this rank's backward pass: sent, or with shared sums first the node
 * barrier that tells when every rank of the node has written it. */
static void bucket_start(mg_reducer *r, int b)
{
    if (r->win == MPI_WIN_NULL) {
        bucket_send(r, b);
        return;
    }
    MPI_CHECK(MPI_Win_sync(r->win));
    MPI_CHECK(MPI_Ibarrier(r->node, &r->nreq[b]));
}

/* Shared sums between nodes: each started bucket, in order, whose node barrier is done: this
 * rank's piece of it summed over the node's slots (in slot order, as mg_reducer_sum does), then
 * sent between nodes. */
static void buckets_launch(mg_reducer *r)
{
    while (r->launched < r->started) {
        const int b = r->n_buckets - 1 - r->launched;
        if (r->win != MPI_WIN_NULL) {
            int done;
            MPI_CHECK(MPI_Test(&r->nreq[b], &done, MPI_STATUS_IGNORE));
            if (!done)
                return;
            MPI_CHECK(MPI_Win_sync(r->win));
            const size_t lo = bucket_lo(r, b);
            sum_slots(r->slot, r->node_size, lo, lo + bucket_len(r, b), 0, r->node_rank);
            bucket_send(r, b);
        }
        r->launched++;
    }
}

/* The sharded exchanges' receives, a bucket at a time in the order the buckets were sent: the
 * next bucket's posted once xin is free, each bucket summed as soon as its values are in. With
 * `finish` every bucket is sent and each one's receives are waited for, one watched wait per
 * bucket on every rank (the stall inspector numbers them), then the sends'. */
static void exchange_drain(mg_reducer *r, int finish)
{
    const int p = r->gp;
    for (int k = finish ? 0 : r->summed; k < r->launched; k++) {
        const int b = r->n_buckets - 1 - k;
        MPI_Request *q = r->xreq + (size_t)b * 2 * (p - 1);
        if (k == r->summed && !r->receiving)
            exchange_receive(r, b);
        int done = 1;
        if (finish)
            wait_all(r->c, p - 1, q); /* (done already for k < summed) */
        else
            MPI_CHECK(MPI_Testall(p - 1, q, &done, MPI_STATUSES_IGNORE));
        if (!done)
            return;
        if (k == r->summed) {
            const size_t lo = bucket_lo(r, b);
            exchange_sum(r, b, r->own + lo, r->bf16 ? r->b16 + lo : NULL);
            r->receiving = 0;
            r->summed++;
        }
    }
    if (finish) {
        int n;
        MPI_Request *all = sum_requests(r, 0, &n);
        wait_all(r->c, n, all); /* the sends */
    }
}

void mg_reducer_ready(mg_reducer *r, size_t from)
{
    if (r->n_buckets == 0)
        return;
    while (r->started < r->n_buckets && r->cut[r->n_buckets - 1 - r->started] >= from) {
        bucket_start(r, r->n_buckets - 1 - r->started);
        r->started++;
    }
    buckets_launch(r);
    /* MPI progresses its messages only inside its calls */
    int done, n;
    MPI_Request *q = sum_requests(r, r->n_buckets - r->launched, &n);
    MPI_CHECK(MPI_Testall(n, q, &done, MPI_STATUSES_IGNORE));
    if (r->sharded)
        exchange_drain(r, 0);
}

/* The rest of the buckets started, every one finished (one watched wait), and the tail's sums
 * and the verdict of this rank's values, which every rank adds its own tail to. */
static int buckets_finish(mg_reducer *r)
{
    mg_reducer_ready(r, 0);
    if (r->win != MPI_WIN_NULL) {
        /* One wait on every rank (the stall inspector numbers them), whatever came in before */
        wait_all(r->c, r->n_buckets, r->nreq);
        buckets_launch(r);
    }
    if (r->sharded) {
        exchange_drain(r, 1);
    } else {
        int n;
        MPI_Request *sums = sum_requests(r, 0, &n);
        wait_all(r->c, n, sums);
    }
    r->started = r->launched = r->summed = 0;
    int bad = 0;
    for (int b = 0; b < r->n_buckets; b++) {
        const size_t lo = bucket_lo(r, b), len = bucket_len(r, b);
        mg_real *at = r->own + lo;
        if (!r->sharded) {
            if (r->bf16)
                widen_bf16(at, r->b16 + lo, len);
            bad |= !mg_finite_bits(at, len);
            continue;
        }
        const size_t i = (size_t)b * r->gp + r->gme; /* summed by exchange_drain */
        bad |= !mg_finite_bits(at + r->bdispls[i], (size_t)r->bcounts[i]);
    }
    if (r->win != MPI_WIN_NULL && !r->sharded) {
        /* Every rank's slot needs every sum: the other ranks' pieces, once they have them. */
        node_barrier(r);
        for (int b = 0; b < r->n_buckets; b++)
            for (int q = 0; q < r->node_size; q++) {
                size_t lo, hi;
                bucket_chunk(r, b, q, &lo, &hi);
                if (q != r->node_rank)
                    memcpy(r->own + lo, r->slot[q] + lo, (hi - lo) * sizeof *r->own);
            }
    }
    const size_t tail = r->n - r->main_n;
    for (size_t k = 0; k < tail; k++)
        r->verdict[k] = r->own[r->main_n + k];
    r->verdict[tail] = bad;
    MPI_Request q;
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, r->verdict, (int)tail + 1, MPI_DOUBLE, MPI_SUM,
                             r->c->comm, &q));
    wait_all(r->c, 1, &q);
    for (size_t k = 0; k < tail; k++)
        r->own[r->main_n + k] = (mg_real)r->verdict[k];
    /* (Shared: every rank has read the others' slots before any writes its own again, since the
     * sum above finished on each rank only once every rank had come to it.) */
    if (r->win != MPI_WIN_NULL)
        MPI_CHECK(MPI_Win_sync(r->win));
    r->finite = r->verdict[tail] == 0 && mg_finite_bits(r->own + r->main_n, tail);
    return r->finite;
}

int mg_reducer_pieces(const mg_reducer *r)
{
    return r->sharded && r->n_buckets ? r->n_buckets : 1;
}

void mg_reducer_piece(const mg_reducer *r, int i, size_t *lo, size_t *hi)
{
    if (!(r->sharded && r->n_buckets)) {
        mg_reducer_part(r, lo, hi);
        return;
    }
    const size_t k = (size_t)i * r->gp + r->gme;
    *lo = bucket_lo(r, i) + (size_t)r->bdispls[k];
    *hi = *lo + (size_t)r->bcounts[k];
}

/* ---- the sharded update ---- */

/* Every rank's part of r->params to every rank, for parts that are not the ring's. */
static void gather_parts(mg_reducer *r)
{
    const mg_comm *c = r->c;
    MPI_Request q;
    MPI_CHECK(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, r->params, r->counts, r->displs,
                              MG_MPI_REAL, c->comm, &q));
    wait_all(c, 1, &q);
}

/* One copy of the parameters per node, in the node's first rank's part of a window, with the
 * values of `params` (rank 0 of the node's): r->params. 0 (on every rank alike) when the node
 * has no room for it. */
static int node_params(mg_reducer *r, const mg_real *params)
{
    const size_t bytes = r->main_n * sizeof(mg_real);
    MPI_Win win;
    if (!window_alloc(r->c, r->node, r->node_rank == 0 ? bytes : 0, sizeof(mg_real), bytes, &win))
        return 0;
    MPI_Aint size;
    int disp;
    void *base;
    MPI_CHECK(MPI_Win_shared_query(win, 0, &size, &disp, &base));
    MPI_CHECK(MPI_Win_lock_all(MPI_MODE_NOCHECK, win));
    r->pwin = win;
    r->params = base;
    if (r->node_rank == 0)
        memcpy(r->params, params, bytes);
    node_barrier(r);
    return 1;
}

mg_real *mg_reducer_shard(mg_reducer *r, size_t tail, mg_real *params)
{
    const mg_comm *c = r->c;
    r->sharded = 1;
    r->main_n = r->n - tail;
    if (!r->verdict)
        r->verdict = mg_xcalloc(tail + 1, sizeof *r->verdict);
    r->params = params;
    if (r->n_buckets && r->win == MPI_WIN_NULL) {
        bucket_pieces(r);
        return params;
    }
    if (r->n_buckets) {
        /* Shared sums in buckets between nodes: each rank's part of the node's piece of each
         * bucket, in the node's one copy of the parameters. */
        if (node_params(r, params)) {
            bucket_pieces(r);
            return r->params;
        }
        /* No room for that copy: the sums after the pass (every rank alike). */
        r->n_buckets = r->started = r->launched = r->gathered = r->posted = 0;
        MPI_CHECK(MPI_Comm_free(&r->judges));
        MPI_CHECK(MPI_Comm_free(&r->gathers));
    }
    /* The parts are those of the whole sum's chunks (of all n values, the tail's too), so each
     * value is summed in the same order as by mg_reducer_sum, bit for bit on any rank count. */
    if (r->win == MPI_WIN_NULL) {
        /* The ring's first half leaves rank i with chunk ring_part(i) summed. */
        const int k = ring_part(c->rank, c->size);
        r->part_lo = chunk_start(r->n, k, c->size);
        r->part_hi = chunk_start(r->n, k + 1, c->size);
        return params;
    }
    /* The node's chunk, parted again between nodes by the same ring over the ranks of one node
     * index. */
    r->part_lo = r->lo;
    r->part_hi = r->hi;
    if (r->across != MPI_COMM_NULL) {
        int a, nodes;
        MPI_CHECK(MPI_Comm_rank(r->across, &a));
        MPI_CHECK(MPI_Comm_size(r->across, &nodes));
        const int k = ring_part(a, nodes);
        r->part_lo = r->lo + chunk_start(r->hi - r->lo, k, nodes);
        r->part_hi = r->lo + chunk_start(r->hi - r->lo, k + 1, nodes);
    }
    if (!node_params(r, params)) {
        /* No room: every rank keeps its own copy, and learns where the others' parts are. */
        if (r->main_n > INT_MAX)
            mg_comm_abort(c, 1); /* MPI_Allgatherv's int counts; never with room for the sums */
        size_t lo, hi;
        mg_reducer_part(r, &lo, &hi);
        int mine[2] = {(int)lo, (int)(hi - lo)};
        int *all = mg_xmalloc(2 * (size_t)c->size * sizeof *all);
        MPI_Request q;
        MPI_CHECK(MPI_Iallgather(mine, 2, MPI_INT, all, 2, MPI_INT, c->comm, &q));
        wait_all(c, 1, &q);
        r->counts = mg_xmalloc(2 * (size_t)c->size * sizeof *r->counts);
        r->displs = r->counts + c->size;
        for (int i = 0; i < c->size; i++) {
            r->displs[i] = all[2 * i];
            r->counts[i] = all[2 * i + 1];
        }
        free(all);
        return params;
    }
    return r->params;
}

void mg_reducer_part(const mg_reducer *r, size_t *lo, size_t *hi)
{
    *lo = r->part_lo < r->main_n ? r->part_lo : r->main_n;
    *hi = r->part_hi < r->main_n ? r->part_hi : r->main_n;
}

/* The tail's sums and the count of bad parts over every rank: one small sum of doubles, to which
 * each tail value's owner gives its sum and the other ranks 0 (so the sums are exact). Returns
 * the count; the tail's sums go into the tail of this rank's buffer. */
static int tail_and_verdict(mg_reducer *r, int bad)
{
    const size_t tail = r->n - r->main_n;
    for (size_t i = 0; i < tail; i++) {
        const size_t at = r->main_n + i;
        r->verdict[i] = at >= r->part_lo && at < r->part_hi ? r->own[at] : 0;
    }
    r->verdict[tail] = bad;
    if (r->c->size > 1) {
        MPI_Request q;
        MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, r->verdict, (int)tail + 1, MPI_DOUBLE, MPI_SUM,
                                 r->c->comm, &q));
        wait_all(r->c, 1, &q);
    }
    for (size_t i = 0; i < tail; i++)
        r->own[r->main_n + i] = (mg_real)r->verdict[i];
    return r->verdict[tail] != 0;
}

/* One node's sharded sums: the owners' words (their parts finite, their updates finite) and the
 * tail's sums go through the slots, read after a node barrier, with no message. */
static int one_node(const mg_reducer *r)
{
    return r->win != MPI_WIN_NULL && r->across == MPI_COMM_NULL;
}

int mg_reducer_scatter(mg_reducer *r)
{
    const mg_comm *c = r->c;
    int bad = 0;
    if (r->n_buckets)
        return buckets_finish(r);
    if (one_node(r)) {
        node_barrier(r);
        r->own[r->flag] = (mg_real)sum_slots(r->slot, r->node_size, r->lo, r->hi, 0, r->node_rank);
        node_barrier(r);
        r->finite = 1;
        for (int i = 0; i < r->node_size; i++)
            r->finite &= r->slot[i][r->flag] == 0;
        /* Each tail value from the slot of its chunk's owner. */
        for (size_t at = r->main_n; at < r->n; at++) {
            int owner = 0;
            while (owner + 1 < r->node_size && chunk_start(r->n, owner + 1, r->node_size) <= at)
                owner++;
            if (owner != r->node_rank)
                r->own[at] = r->slot[owner][at];
        }
        return r->finite;
    }
    if (r->win == MPI_WIN_NULL) {
        if (c->size > 1)
            private_ring(r, 0, c->size - 1);
        bad = !mg_finite_bits(r->own + r->part_lo, r->part_hi - r->part_lo);
    } else {
        node_barrier(r);
        bad = sum_slots(r->slot, r->node_size, r->lo, r->hi, 0, r->node_rank);
        if (r->across != MPI_COMM_NULL) {
            int nodes;
            MPI_CHECK(MPI_Comm_size(r->across, &nodes));
            across_ring(r, 0, nodes - 1);
            bad = !mg_finite_bits(r->own + r->part_lo, r->part_hi - r->part_lo);
        }
    }
    r->finite = !tail_and_verdict(r, bad);
    return r->finite;
}

/* Bucket b of the gather, posted. */
static void gather_post(mg_reducer *r, int b)
{
    const int p = r->gp;
    MPI_CHECK(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, r->params + bucket_lo(r, b),
                              r->bcounts + (size_t)b * p, r->bdispls + (size_t)b * p,
                              MG_MPI_REAL, r->gathers, &r->breq[b]));
}

void mg_reducer_gather_start(mg_reducer *r, int ok)
{
    assert(r->gathered == r->n_buckets && !r->judging);
    if (!r->n_buckets) { /* the ring and the node's window: the whole gather, now */
        r->all_ok = mg_reducer_gather(r, ok);
        return;
    }
    /* The first layers' bucket and the verdict now; each later bucket when the one before it is
     * in, so that the network carries one bucket at a time, the next one the pass will need,
     * instead of sharing itself among all of them. */
    gather_post(r, 0);
    r->all_ok = ok != 0;
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, &r->all_ok, 1, MPI_INT, MPI_LAND, r->judges,
                             &r->breq[r->n_buckets]));
    r->judging = 1;
    r->gathered = 0;
    r->posted = 1;
}

int mg_reducer_gather_verdict(mg_reducer *r)
{
    if (r->judging)
        wait_all(r->c, 1, &r->breq[r->n_buckets]);
    r->judging = 0;
    return r->all_ok;
}

int mg_reducer_gather_wait(mg_reducer *r, size_t end)
{
    if (r->gathered == r->n_buckets)
        return 1;
    int upto = r->gathered; /* the buckets that hold any of [0, end) */
    while (upto < r->n_buckets && r->cut[upto] < end)
        upto++;
    while (r->posted < upto) /* all needed now: in flight together */
        gather_post(r, r->posted++);
    const int was = r->gathered;
    while (r->gathered < upto) {
        wait_all(r->c, 1, &r->breq[r->gathered]);
        r->gathered++;
    }
    /* The node's one copy: every rank of the node has its pieces of them in (its ranks call
     * this at the same points with the same `end`, so they meet here alike). */
    if (r->pwin != MPI_WIN_NULL && r->gathered > was)
        node_barrier(r);
    mg_reducer_progress(r);
    return r->gathered == r->n_buckets;
}

void mg_reducer_progress(mg_reducer *r)
{
    int done; /* MPI progresses non-blocking collectives only inside its calls */
    if (r->judging)
        MPI_CHECK(MPI_Test(&r->breq[r->n_buckets], &done, MPI_STATUS_IGNORE));
    if (r->gathered == r->n_buckets)
        return;
    if (r->posted == r->gathered) /* the last wait took the bucket in flight */
        gather_post(r, r->posted++);
    while (r->posted < r->n_buckets) {
        MPI_CHECK(MPI_Test(&r->breq[r->posted - 1], &done, MPI_STATUS_IGNORE));
        if (!done)
            break;
        gather_post(r, r->posted++);
    }
}

int mg_reducer_gather_finish(mg_reducer *r)
{
    const int ok = mg_reducer_gather_verdict(r);
    mg_reducer_gather_wait(r, SIZE_MAX);
    return ok;
}

int mg_reducer_gather(mg_reducer *r, int ok)
{
    const mg_comm *c = r->c;
    if (r->n_buckets) {
        mg_reducer_gather_start(r, ok);
        return mg_reducer_gather_finish(r);
    }
    if (r->pwin == MPI_WIN_NULL) {
        /* Every rank's own copy: the ring's second half passes the updated parts round; parts
         * made by a shared reducer (with no room for the parameters' window) are not the ring's,
         * and go round by an allgather. */
        if (c->size > 1 && r->win == MPI_WIN_NULL)
            ring_steps(c, c->comm, r->params, r->n, r->main_n, NULL, NULL, c->size - 1,
                       2 * (c->size - 1));
        else if (c->size > 1)
            gather_parts(r);
    } else if (one_node(r)) {
        r->own[r->flag + 1] = (mg_real)!ok;
        node_barrier(r);
        int all = 1;
        for (int i = 0; i < r->node_size; i++)
            all &= r->slot[i][r->flag + 1] == 0;
        return all;
    } else {
        if (r->across != MPI_COMM_NULL) {
            int nodes;
            MPI_CHECK(MPI_Comm_size(r->across, &nodes));
            const size_t limit = r->main_n > r->lo ? r->main_n - r->lo : 0;
            ring_steps(c, r->across, r->params + r->lo, r->hi - r->lo,
                       limit < r->hi - r->lo ? limit : r->hi - r->lo, NULL, NULL, nodes - 1,
                       2 * (nodes - 1));
        }
        node_barrier(r);
    }
    return mg_comm_all_ok(c, ok);
}

void mg_reducer_share_of(const mg_reducer *r, int *part, int *parts)
{
    const int window = r->pwin != MPI_WIN_NULL;
    *part = window ? r->node_rank : 0;
    *parts = window ? r->node_size : 1;
}

void mg_reducer_sync(mg_reducer *r)
{
    if (r->pwin != MPI_WIN_NULL)
        node_barrier(r);
}

void mg_reducer_bcast_params(mg_reducer *r, int root)
{
    const mg_comm *c = r->c;
    const size_t bytes = r->main_n * sizeof(mg_real);
    if (r->pwin == MPI_WIN_NULL) {
        bcast_over(c, c->comm, r->params, bytes, root);
        return;
    }
    /* The root's node holds it; the first ranks of the other nodes copy it (root is rank 0 of
     * its node and of the ranks across nodes that share its node index, as the splits order
     * them by rank). */
    /* (The other node indices pass an empty one: every rank counts the same waits of c, which
     * the stall inspector numbers.) */
    if (r->across != MPI_COMM_NULL)
        bcast_over(c, r->across, r->params, r->node_rank == 0 ? bytes : 0, 0);
    node_barrier(r);
}

void mg_reducer_start(mg_reducer *r, mg_request *q)
{
    if (r->win == MPI_WIN_NULL && r->c->size > 1)
        mg_comm_allreduce_start(r->c, r->own, r->n, q);
    else
        mg_reducer_sum(r);
}

/* ---- collectives ---- */

void mg_comm_bcast(const mg_comm *c, void *buf, size_t bytes, int root)
{
    bcast_over(c, c->comm, buf, bytes, root);
}

/* Point to point in rank order rather than MPI_Gatherv, whose int counts and displacements cap
 * the whole gather at 2^31 values: the sizes first, then every piece in flight at once. */
void mg_comm_gather(const mg_comm *c, const void *send, size_t bytes, void *recv, int root)
{
    const int me = c->rank == root;
    unsigned long long mine = bytes, *sizes = me ? mg_xmalloc((size_t)c->size * sizeof *sizes) : NULL;
    MPI_Request q;
    MPI_CHECK(MPI_Igather(&mine, 1, MPI_UNSIGNED_LONG_LONG, sizes, 1, MPI_UNSIGNED_LONG_LONG,
                          root, c->comm, &q));
    wait_all(c, 1, &q);
    int k = me ? 0 : pieces(bytes);
    for (int r = 0; me && r < c->size; r++)
        if (r != root)
            k += pieces(sizes[r]);
    MPI_Request small[SMALL_REQUESTS];
    MPI_Request *req = requests(k, small);
    k = 0;
    if (!me) {
        for (int i = 0; i < pieces(bytes); i++)
            MPI_CHECK(MPI_Isend((const char *)send + (size_t)i * MG_MPI_CHUNK,
                                piece_len(bytes, i), MPI_BYTE, root, 1, c->comm, &req[k++]));
    } else {
        char *at = recv;
        for (int r = 0; r < c->size; r++) {
            if (r == root && bytes)
                memcpy(at, send, bytes);
            for (int i = 0; r != root && i < pieces(sizes[r]); i++)
                MPI_CHECK(MPI_Irecv(at + (size_t)i * MG_MPI_CHUNK, piece_len(sizes[r], i),
                                    MPI_BYTE, r, 1, c->comm, &req[k++]));
            at += sizes[r];
        }
    }
    wait_all(c, k, req);
    requests_free(req, small);
    free(sizes);
}

/* Rank r's `bytes` at its byte `offset` of root's `whole`: gathered there (scatter 0) or handed
 * out from there (scatter 1). The places first, then every piece in flight at once. */
static void place_parts(const mg_comm *c, void *mine, size_t bytes, size_t offset, void *whole,
                        int root, int scatter)
{
    const int me = c->rank == root;
    unsigned long long place[2] = {offset, bytes};
    unsigned long long *all = me ? mg_xmalloc(2 * (size_t)c->size * sizeof *all) : NULL;
    MPI_Request q;
    MPI_CHECK(MPI_Igather(place, 2, MPI_UNSIGNED_LONG_LONG, all, 2, MPI_UNSIGNED_LONG_LONG, root,
                          c->comm, &q));
    wait_all(c, 1, &q);
    int k = me ? 0 : pieces(bytes);
    for (int r = 0; me && r < c->size; r++)
        if (r != root)
            k += pieces(all[2 * r + 1]);
    MPI_Request small[SMALL_REQUESTS];
    MPI_Request *req = requests(k, small);
    k = 0;
    for (int r = 0; r < c->size; r++) {
        if (me ? r == root : r > 0)
            continue;
        /* this rank's exchange with root, or root's with rank r */
        char *local = me ? (char *)whole + all[2 * r] : mine;
        const size_t n = me ? all[2 * r + 1] : bytes;
        const int peer = me ? r : root, send = me == scatter;
        for (int i = 0; i < pieces(n); i++) {
            char *p = local + (size_t)i * MG_MPI_CHUNK;
            if (send)
                MPI_CHECK(MPI_Isend(p, piece_len(n, i), MPI_BYTE, peer, 3, c->comm, &req[k++]));
            else
                MPI_CHECK(MPI_Irecv(p, piece_len(n, i), MPI_BYTE, peer, 3, c->comm, &req[k++]));
        }
    }
    if (me && bytes) { /* root's own part */
        if (scatter)
            memmove(mine, (char *)whole + offset, bytes);
        else
            memmove((char *)whole + offset, mine, bytes);
    }
    wait_all(c, k, req);
    requests_free(req, small);
    free(all);
}

void mg_comm_gather_at(const mg_comm *c, const void *mine, size_t bytes, size_t offset,
                       void *whole, int root)
{
    place_parts(c, (void *)mine, bytes, offset, whole, root, 0);
}

void mg_comm_scatter_at(const mg_comm *c, void *mine, size_t bytes, size_t offset,
                        const void *whole, int root)
{
    place_parts(c, mine, bytes, offset, (void *)whole, root, 1);
}

int mg_comm_all_ok(const mg_comm *c, int ok)
{
    int all = ok != 0;
    MPI_Request q;
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, &all, 1, MPI_INT, MPI_LAND, c->comm, &q));
    wait_all(c, 1, &q);
    return all;
}

int mg_comm_all_same(const mg_comm *c, uint64_t value)
{
    uint64_t v[2] = {value, ~value}; /* max of v and max of ~v: min and max in one call */
    MPI_Request q;
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, v, 2, MPI_UINT64_T, MPI_MAX, c->comm, &q));
    wait_all(c, 1, &q);
    return v[0] == ~v[1];
}

void mg_comm_minmaxsum(const mg_comm *c, double v, double *min, double *max, double *sum)
{
    double in[2] = {v, -v}, out[2], s;
    MPI_Request q[2];
    MPI_CHECK(MPI_Iallreduce(in, out, 2, MPI_DOUBLE, MPI_MAX, c->comm, &q[0]));
    MPI_CHECK(MPI_Iallreduce(&v, &s, 1, MPI_DOUBLE, MPI_SUM, c->comm, &q[1]));
    wait_all(c, 2, q);
    *max = out[0];
    *min = -out[1];
    *sum = s;
}

void mg_comm_barrier(const mg_comm *c)
{
    barrier(c);
}

double mg_comm_wtime(void)
{
    return MPI_Wtime();
}

void mg_comm_abort(const mg_comm *c, int code)
{
    MPI_Abort(c->comm, code);
    exit(code); /* MPI_Abort does not return; this satisfies _Noreturn */
}
