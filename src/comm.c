#define _POSIX_C_SOURCE 200809L /* nanosleep */
/* The one file that speaks MPI. Every wait for another rank goes through wait_all, the stall
 * inspector (comm.h): blocking collectives are their non-blocking twins finished there, and MPI's
 * own blocking set-up calls follow a barrier finished there. */
#include "mpigan/comm.h"

#include <mpi.h>
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

/* Posts a message of n values (to, or from, peer: any n, in pieces) into req; how many. */
static int post_values(mg_real *buf, size_t n, int peer, int recv, MPI_Comm comm, MPI_Request *req)
{
    const int k = pieces(n);
    for (int i = 0; i < k; i++) {
        mg_real *p = buf + (size_t)i * MG_MPI_CHUNK;
        if (recv)
            MPI_CHECK(MPI_Irecv(p, piece_len(n, i), MG_MPI_REAL, peer, 2, comm, &req[i]));
        else
            MPI_CHECK(MPI_Isend(p, piece_len(n, i), MG_MPI_REAL, peer, 2, comm, &req[i]));
    }
    return k;
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
    int me, p;
    MPI_CHECK(MPI_Comm_rank(comm, &me));
    MPI_CHECK(MPI_Comm_size(comm, &p));
    const int right = (me + 1) % p, left = (me + p - 1) % p;
    const size_t most = chunk_max(n, p);
    MPI_Request small[SMALL_REQUESTS];
    MPI_Request *req = requests(2 * pieces(most), small);
    for (int step = 0; step < 2 * (p - 1); step++) {
        const int pass = step >= p - 1; /* the sums round, into place */
        const int t = pass ? step - (p - 1) : step;
        const int out = ((me - t + pass) % p + p) % p, in = ((me - t - 1 + pass) % p + p) % p;
        const size_t out_lo = chunk_start(n, out, p), in_lo = chunk_start(n, in, p);
        const size_t out_n = chunk_start(n, out + 1, p) - out_lo;
        const size_t in_n = chunk_start(n, in + 1, p) - in_lo;
        int k = post_values(pass ? buf + in_lo : tmp, in_n, left, 1, comm, req);
        k += post_values(buf + out_lo, out_n, right, 0, comm, req + k);
        wait_all(c, k, req);
        if (!pass)
            add_into(buf + in_lo, tmp, in_n);
    }
    requests_free(req, small);
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
    r->win = MPI_WIN_NULL;
    r->node = r->across = MPI_COMM_NULL;
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
    MPI_CHECK(MPI_Ibarrier(r->node, &q));
    wait_all(r->c, 1, &q);
    MPI_CHECK(MPI_Win_sync(r->win));
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

void mg_reducer_sum(mg_reducer *r)
{
    if (r->win == MPI_WIN_NULL) {
        if (r->c->size > 1)
            sum_over(r->c, r->c->comm, r->own, r->n, r->tmp);
        return;
    }
    node_barrier(r);
    int bad;
    if (r->across == MPI_COMM_NULL) {
        bad = sum_slots(r->slot, r->node_size, r->lo, r->hi, 1, -1);
    } else {
        sum_slots(r->slot, r->node_size, r->lo, r->hi, 0, r->node_rank);
        sum_over(r->c, r->across, r->own + r->lo, r->hi - r->lo, r->tmp);
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
