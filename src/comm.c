#define _POSIX_C_SOURCE 200809L /* nanosleep */
/* The one file that speaks MPI. */
#include "mpigan/comm.h"

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "mpigan/error.h"
#include "simd.h"

struct mg_comm {
    MPI_Comm comm;
    int rank, size, node_size;
};

struct mg_shared {
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

/* The one chunking loop: fn(base + off * size, count, arg) over [0, n) in pieces of at most
 * MG_MPI_CHUNK elements of `size` bytes. */
static void for_chunks(void *base, size_t n, size_t size, void (*fn)(void *p, int count, void *arg),
                       void *arg)
{
    for (size_t off = 0; off < n; off += MG_MPI_CHUNK) {
        const size_t len = n - off < MG_MPI_CHUNK ? n - off : MG_MPI_CHUNK;
        fn((char *)base + off * size, (int)len, arg);
    }
}

/* The pieces' operations: a sum of mg_real in place, a broadcast and point-to-point of bytes. */
typedef struct {
    MPI_Comm comm;
    int peer; /* root of a broadcast, source or destination of a message */
    int tag;
} chunk_op;

static void sum_piece(void *p, int count, void *arg)
{
    const chunk_op *op = arg;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, p, count, MG_MPI_REAL, MPI_SUM, op->comm));
}

static void bcast_piece(void *p, int count, void *arg)
{
    const chunk_op *op = arg;
    MPI_CHECK(MPI_Bcast(p, count, MPI_BYTE, op->peer, op->comm));
}

static void send_piece(void *p, int count, void *arg)
{
    const chunk_op *op = arg;
    MPI_CHECK(MPI_Send(p, count, MPI_BYTE, op->peer, op->tag, op->comm));
}

static void recv_piece(void *p, int count, void *arg)
{
    const chunk_op *op = arg;
    MPI_CHECK(MPI_Recv(p, count, MPI_BYTE, op->peer, op->tag, op->comm, MPI_STATUS_IGNORE));
}

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
}

void mg_comm_finalize(void)
{
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
    MPI_CHECK(MPI_Bcast(&ok, 1, MPI_INT, 0, node));
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_LAND, c->comm));
    return ok;
}

/* The one way to make a shared window: collective over c, each rank of `node` giving `mine` bytes
 * (the node `node_bytes` in all). 1 with *win on every rank, or 0 with MPI_WIN_NULL on every rank:
 * no room on some node, or the allocation failed somewhere (asked of every rank before use). */
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
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_LAND, c->comm));
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
    int node_rank;
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

void mg_comm_shared_bcast(const mg_comm *c, mg_shared *s, int root)
{
    /* root is a node's first rank (the loader is world rank 0): leaders carry the data between
     * nodes, then a fence makes the node leader's writes visible to its node. */
    MPI_CHECK(MPI_Win_fence(0, s->win));
    if (s->leaders != MPI_COMM_NULL) {
        int leader_root = c->rank == root, who = -1;
        int me;
        MPI_CHECK(MPI_Comm_rank(s->leaders, &me));
        int cand = leader_root ? me : -1;
        MPI_CHECK(MPI_Allreduce(&cand, &who, 1, MPI_INT, MPI_MAX, s->leaders));
        chunk_op op = {.comm = s->leaders, .peer = who};
        for_chunks(s->base, s->bytes, 1, bcast_piece, &op);
    }
    MPI_CHECK(MPI_Win_fence(0, s->win));
}

void mg_comm_shared_free(mg_shared *s)
{
    if (!s)
        return;
    if (s->win != MPI_WIN_NULL && s->base)
        MPI_Win_free(&s->win);
    if (s->leaders != MPI_COMM_NULL)
        MPI_Comm_free(&s->leaders);
    MPI_Comm_free(&s->node);
    free(s);
}

mg_comm *mg_comm_split(const mg_comm *c, int color)
{
    MPI_Comm sub;
    MPI_CHECK(MPI_Comm_split(c->comm, color < 0 ? MPI_UNDEFINED : color, c->rank, &sub));
    if (sub == MPI_COMM_NULL)
        return NULL;
    mg_comm *s = mg_xmalloc(sizeof *s);
    s->comm = sub;
    describe(s);
    return s;
}

void mg_comm_free(mg_comm *c)
{
    if (!c)
        return;
    MPI_CHECK(MPI_Comm_free(&c->comm));
    free(c);
}

static void sum_double_piece(void *p, int count, void *arg)
{
    const chunk_op *op = arg;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, p, count, MPI_DOUBLE, MPI_SUM, op->comm));
}

void mg_comm_allreduce_double(const mg_comm *c, double *buf, size_t n)
{
    chunk_op op = {.comm = c->comm};
    for_chunks(buf, n, sizeof *buf, sum_double_piece, &op);
}

void mg_comm_allreduce_sum(const mg_comm *c, mg_real *buf, size_t n)
{
    chunk_op op = {.comm = c->comm};
    for_chunks(buf, n, sizeof *buf, sum_piece, &op);
}

struct mg_request {
    MPI_Request req;
    int active;
};

mg_request *mg_request_new(void)
{
    mg_request *r = mg_xcalloc(1, sizeof *r);
    r->req = MPI_REQUEST_NULL;
    return r;
}

void mg_request_free(mg_request *r)
{
    if (r && r->active)
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
    r->active = 1;
}

void mg_comm_barrier_start(const mg_comm *c, mg_request *r)
{
    MPI_CHECK(MPI_Ibarrier(c->comm, &r->req));
    r->active = 1;
}

void mg_comm_progress(mg_request *r)
{
    int done = 0;
    if (r->active) {
        MPI_CHECK(MPI_Test(&r->req, &done, MPI_STATUS_IGNORE));
        r->active = !done;
    }
}

void mg_comm_finish(mg_request *r)
{
    if (r->active)
        MPI_CHECK(MPI_Wait(&r->req, MPI_STATUS_IGNORE));
    r->active = 0;
}

struct mg_reducer {
    const mg_comm *c;
    size_t n;
    mg_real *own;     /* (n) this rank's buffer: its slot in the window, or private */
    int owns;         /* own was allocated here (a private buffer the caller did not give) */
    MPI_Win win;      /* MPI_WIN_NULL: private buffer, MPI_Allreduce */
    MPI_Comm node;    /* the ranks sharing the window */
    MPI_Comm across;  /* the ranks of the same node index on every node (MPI_COMM_NULL: 1 node) */
    int node_rank, node_size;
    mg_real **slot;   /* (node_size) every slot of the node */
    size_t lo, hi;    /* this rank's chunk of every slot */
    size_t flag;      /* where in its own slot an owner says whether its chunk's sums are finite */
    int finite;       /* every value of the last shared sum is finite */
};

/* Chunk i of n values over k owners, its bounds on 16-value (64-byte) lines so that no two
 * owners write into one cache line. */
static size_t chunk_start(size_t n, int i, int k)
{
    return i >= k ? n : (size_t)((double)n * i / k) & ~(size_t)15;
}

/* Tries the shared window; 0 (on every rank alike) when it cannot be had. */
static int reducer_share(mg_reducer *r, int group)
{
    const mg_comm *c = r->c;
    MPI_Comm node;
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
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, sizes, 2, MPI_INT, MPI_MAX, c->comm));
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
    if (nodes > 1)
        MPI_CHECK(MPI_Comm_split(c->comm, r->node_rank, c->rank, &r->across));
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
    }
    return r;
}

void mg_reducer_free(mg_reducer *r)
{
    if (!r)
        return;
    if (r->win != MPI_WIN_NULL) {
        MPI_Win_unlock_all(r->win);
        MPI_Win_free(&r->win);
        MPI_Comm_free(&r->node);
        if (r->across != MPI_COMM_NULL)
            MPI_Comm_free(&r->across);
        free(r->slot);
    } else if (r->owns) {
        free(r->own);
    }
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

/* Every rank of the node has written what it wrote before this, and sees the others' writes. */
static void node_barrier(const mg_reducer *r)
{
    MPI_CHECK(MPI_Win_sync(r->win));
    MPI_CHECK(MPI_Barrier(r->node));
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
            mg_comm_allreduce_sum(r->c, r->own, r->n);
        return;
    }
    node_barrier(r);
    int bad;
    if (r->across == MPI_COMM_NULL) {
        bad = sum_slots(r->slot, r->node_size, r->lo, r->hi, 1, -1);
    } else {
        sum_slots(r->slot, r->node_size, r->lo, r->hi, 0, r->node_rank);
        chunk_op op = {.comm = r->across};
        for_chunks(r->own + r->lo, r->hi - r->lo, sizeof *r->own, sum_piece, &op);
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

/* Tag of "I am waiting in a collective" messages to rank 0. */
#define STALL_TAG 4711

/* Rank 0: take any word of waiting ranks left from a stall that resolved itself. */
static void drain_stall_words(const mg_comm *c, char *arrived)
{
    int flag = 1;
    while (flag) {
        MPI_Status st;
        MPI_CHECK(MPI_Iprobe(MPI_ANY_SOURCE, STALL_TAG, c->comm, &flag, &st));
        if (flag) {
            int who;
            MPI_CHECK(MPI_Recv(&who, 1, MPI_INT, st.MPI_SOURCE, STALL_TAG, c->comm,
                               MPI_STATUS_IGNORE));
            if (arrived && who >= 0 && who < c->size)
                arrived[who] = 1;
        }
    }
}

int mg_comm_finish_watched(const mg_comm *c, mg_request *r, double stall_s, const char *what,
                           int *late, int late_n)
{
    if (!r->active || stall_s <= 0) {
        mg_comm_finish(r);
        return -1;
    }
    const double t0 = MPI_Wtime();
    int done = 0, told = 0, said = 0, reported = -1;
    char *arrived = NULL;
    double first_word = 0;
    while (!done) {
        MPI_CHECK(MPI_Test(&r->req, &done, MPI_STATUS_IGNORE));
        if (done)
            break;
        const double waited = MPI_Wtime() - t0;
        if (waited > 0.01) { /* spin briefly (a normal wait), then nap between tests */
            struct timespec nap = {0, 200000};
            nanosleep(&nap, NULL);
        }
        if (waited <= stall_s)
            continue;
        if (c->rank != 0 && !told) {
            MPI_CHECK(MPI_Send(&c->rank, 1, MPI_INT, 0, STALL_TAG, c->comm));
            told = 1;
        } else if (c->rank == 0 && reported < 0) {
            if (!arrived) {
                arrived = calloc((size_t)c->size, 1);
                if (!arrived)
                    break; /* cannot inspect; keep waiting below */
                arrived[0] = 1;
                first_word = MPI_Wtime();
            }
            drain_stall_words(c, arrived);
            /* The others' word arrives within a second of their own threshold. */
            if (MPI_Wtime() - first_word < (stall_s < 1 ? stall_s : 1))
                continue;
            char list[1024] = "";
            int n = 0, len = 0;
            for (int i = 1; i < c->size; i++) {
                if (arrived[i])
                    continue;
                if (late && n < late_n)
                    late[n] = i;
                if (len < (int)sizeof list - 16)
                    len += snprintf(list + len, sizeof list - len, "%s%d", n ? ", " : "", i);
                n++;
            }
            if (n)
                fprintf(stderr, "mpigan: stall: rank 0 has waited %.0f s in %s; rank%s %s %s not "
                                "reached it\n",
                        MPI_Wtime() - t0, what, n == 1 ? "" : "s", list, n == 1 ? "has" : "have");
            else
                fprintf(stderr, "mpigan: stall: every rank has waited over %.0f s in %s: the MPI "
                                "library or the network does not deliver\n",
                        stall_s, what);
            reported = n;
        } else if (c->rank != 0 && !said && waited > 3 * stall_s) {
            fprintf(stderr, "mpigan: stall: rank %d has waited %.0f s in %s; rank 0 has not "
                            "reported on it and may itself be late\n",
                    c->rank, waited, what);
            said = 1;
        }
    }
    r->active = 0;
    if (c->rank == 0)
        drain_stall_words(c, NULL);
    free(arrived);
    return reported;
}

void mg_comm_bcast(const mg_comm *c, void *buf, size_t bytes, int root)
{
    chunk_op op = {.comm = c->comm, .peer = root};
    for_chunks(buf, bytes, 1, bcast_piece, &op);
}

/* Point to point in rank order rather than MPI_Gatherv, whose int counts and displacements cap
 * the whole gather at 2^31 values. */
void mg_comm_gather(const mg_comm *c, const void *send, size_t bytes, void *recv, int root)
{
    if (c->rank != root) {
        unsigned long long n = bytes;
        MPI_CHECK(MPI_Send(&n, 1, MPI_UNSIGNED_LONG_LONG, root, 0, c->comm));
        chunk_op op = {.comm = c->comm, .peer = root, .tag = 1};
        for_chunks((void *)send, bytes, 1, send_piece, &op);
        return;
    }
    char *at = recv;
    for (int r = 0; r < c->size; r++) {
        unsigned long long n = bytes;
        if (r != root)
            MPI_CHECK(MPI_Recv(&n, 1, MPI_UNSIGNED_LONG_LONG, r, 0, c->comm, MPI_STATUS_IGNORE));
        else if (bytes)
            memcpy(at, send, bytes);
        chunk_op op = {.comm = c->comm, .peer = r, .tag = 1};
        if (r != root)
            for_chunks(at, n, 1, recv_piece, &op);
        at += n;
    }
}

int mg_comm_all_ok(const mg_comm *c, int ok)
{
    int all = ok != 0;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &all, 1, MPI_INT, MPI_LAND, c->comm));
    return all;
}

int mg_comm_all_same(const mg_comm *c, uint64_t value)
{
    uint64_t v[2] = {value, ~value}; /* max of v and max of ~v: min and max in one call */
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_UINT64_T, MPI_MAX, c->comm));
    return v[0] == ~v[1];
}

void mg_comm_minmaxsum(const mg_comm *c, double v, double *min, double *max, double *sum)
{
    double in[2] = {v, -v}, out[2], s;
    MPI_CHECK(MPI_Allreduce(in, out, 2, MPI_DOUBLE, MPI_MAX, c->comm));
    MPI_CHECK(MPI_Allreduce(&v, &s, 1, MPI_DOUBLE, MPI_SUM, c->comm));
    *max = out[0];
    *min = -out[1];
    *sum = s;
}

void mg_comm_barrier(const mg_comm *c)
{
    MPI_CHECK(MPI_Barrier(c->comm));
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
