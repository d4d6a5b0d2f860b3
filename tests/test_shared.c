/* The training set in each node's shared memory: loaded once, seen whole by every rank.
 * Run by mpiexec on 2 and 4 ranks (all on one node here). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "mpigan/comm.h"
#include "mpigan/config.h"
#include "mpigan/dataset.h"
#include "mpigan/splits.h"
#include "testlib.h"

/* An IDX file of n 4x5 images whose pixel k of image i is (i * 7 + k) % 256, written by rank 0. */
static const char *write_idx(int n)
{
    /* Each process has its own temporary directory: every rank uses rank 0's. */
    static char path[4200];
    snprintf(path, sizeof path, "%s", mg_test_path("shared-idx"));
    mg_comm_bcast(mg_comm_world(), path, sizeof path, 0);
    if (mg_comm_rank(mg_comm_world()) == 0) {
        FILE *f = fopen(path, "wb");
        CU_ASSERT_FATAL(f != NULL);
        unsigned char hdr[16] = {0, 0, 8, 3, 0, 0, (unsigned char)(n >> 8), (unsigned char)n,
                                 0, 0, 0, 4, 0, 0, 0, 5};
        fwrite(hdr, 1, sizeof hdr, f);
        for (int i = 0; i < n; i++)
            for (int k = 0; k < 20; k++)
                fputc((i * 7 + k) % 256, f);
        CU_ASSERT_FATAL(fclose(f) == 0);
    }
    mg_comm_barrier(mg_comm_world());
    return path;
}

static mg_config config_for(const char *path)
{
    char text[8192];
    snprintf(text, sizeof text,
             "data: {train_images: %s, train_count: 250, valid_count: 50}\n"
             "generator: {layers: [{type: sigmoid, units: 20}]}\n"
             "discriminator: {layers: [{type: sigmoid, units: 1}]}\n",
             path);
    mg_config cfg;
    mg_error err;
    int rc = mg_config_parse(&cfg, text, "shared.yaml", NULL, 0, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    CU_ASSERT_FATAL(rc == 0);
    return cfg;
}

/* Rows whose values (through mg_dataset_row) are not those write_idx wrote. */
static int rows_that_differ(const mg_dataset *ds)
{
    int bad = 0;
    mg_real row[20];
    for (int i = 0; i < ds->n; i++) {
        mg_dataset_row(ds, (size_t)i, row);
        for (int k = 0; k < 20; k++)
            if (row[k] != (mg_real)((i * 7 + k) % 256) / 255) {
                bad++;
                break;
            }
    }
    return bad;
}

/* GCN'd examples are not bytes: they stay values, shared the same way. */
static void test_values_shared(void)
{
    mg_config cfg = config_for(write_idx(300));
    cfg.data.preprocess = MG_PREPROCESS_GCN;
    mg_dataset ds;
    mg_error err;
    CU_ASSERT_FATAL(mg_split_load_train(&ds, &cfg, mg_comm_world(), &err) == 0);
    CU_ASSERT(ds.shared != NULL);
    CU_ASSERT_FATAL(ds.x != NULL && ds.bytes == NULL);
    /* Each example centred: its values sum to 0. */
    double sum = 0;
    for (int k = 0; k < 20; k++)
        sum += ds.x[7 * 20 + k];
    MG_ASSERT_CLOSE(sum, 0, 1e-4);
    mg_dataset_unload(&ds);
}

static void test_one_copy_per_node(void)
{
    const mg_comm *world = mg_comm_world();
    const int rank = mg_comm_rank(world);
    mg_config cfg = config_for(write_idx(300));
    mg_dataset ds;
    mg_error err;
    CU_ASSERT_FATAL(mg_split_load_train(&ds, &cfg, world, &err) == 0);
    CU_ASSERT(ds.shared != NULL);
    CU_ASSERT_EQUAL(ds.n, 250);
    CU_ASSERT_EQUAL(ds.dim, 20);
    /* Pixel bytes stay bytes: a quarter of the memory. */
    CU_ASSERT_FATAL(ds.bytes != NULL && ds.x == NULL);
    CU_ASSERT_EQUAL(rows_that_differ(&ds), 0);
    /* One allocation per node: a value rank 0 writes is the value every rank reads. */
    mg_comm_barrier(world);
    if (rank == 0)
        ds.bytes[123] = 42;
    mg_comm_barrier(world);
    CU_ASSERT(mg_comm_all_same(world, ds.bytes[123] == 42));
    CU_ASSERT(ds.bytes[123] == 42);
    mg_comm_barrier(world);
    mg_dataset_unload(&ds);
}

/* Labels live beside the examples in the node's window (or in each private copy): every rank sees
 * label (i * 3) % 7 of example i, and the label of the example it gathers. */
static void test_labels_shared(void)
{
    const mg_comm *world = mg_comm_world();
    const char *images = write_idx(300);
    char path[4300];
    snprintf(path, sizeof path, "%s-labels", images);
    if (mg_comm_rank(world) == 0) {
        FILE *f = fopen(path, "wb");
        CU_ASSERT_FATAL(f != NULL);
        unsigned char hdr[8] = {0, 0, 8, 1, 0, 0, 300 >> 8, 300 & 0xff};
        fwrite(hdr, 1, sizeof hdr, f);
        for (int i = 0; i < 300; i++)
            fputc((i * 3) % 7, f);
        CU_ASSERT_FATAL(fclose(f) == 0);
    }
    mg_comm_barrier(world);
    for (int shared = 1; shared >= 0; shared--) {
        char text[17000];
        snprintf(text, sizeof text,
                 "data: {train_images: %s, train_labels: %s, classes: 7, train_count: 250,\n"
                 "       valid_count: 50, shared_memory: %s}\n"
                 "generator: {layers: [{type: sigmoid, units: 20}]}\n"
                 "discriminator: {layers: [{type: sigmoid, units: 1}]}\n",
                 images, path, shared ? "true" : "false");
        mg_config cfg;
        mg_error err;
        CU_ASSERT_FATAL(mg_config_parse(&cfg, text, "shared.yaml", NULL, 0, &err) == 0);
        mg_dataset ds;
        CU_ASSERT_FATAL(mg_split_load_train(&ds, &cfg, world, &err) == 0);
        CU_ASSERT_EQUAL((ds.shared != NULL), shared);
        CU_ASSERT_EQUAL(ds.classes, 7);
        CU_ASSERT_FATAL(ds.labels != NULL);
        int bad = 0;
        for (int i = 0; i < ds.n; i++)
            bad += ds.labels[i] != (i * 3) % 7;
        CU_ASSERT_EQUAL(bad, 0);
        CU_ASSERT_EQUAL(rows_that_differ(&ds), 0); /* the labels did not overwrite a pixel */
        mg_dataset_unload(&ds);
    }
}

static void test_private_copies_when_turned_off(void)
{
    mg_config cfg = config_for(write_idx(300));
    cfg.data.shared_memory = 0;
    mg_dataset ds;
    mg_error err;
    CU_ASSERT_FATAL(mg_split_load_train(&ds, &cfg, mg_comm_world(), &err) == 0);
    CU_ASSERT(ds.shared == NULL);
    CU_ASSERT_EQUAL(ds.n, 250);
    CU_ASSERT_FATAL(ds.bytes != NULL);
    CU_ASSERT_EQUAL(rows_that_differ(&ds), 0);
    /* A private copy: rank 0's write stays its own. */
    mg_comm_barrier(mg_comm_world());
    if (mg_comm_rank(mg_comm_world()) == 0)
        ds.bytes[123] = 42;
    mg_comm_barrier(mg_comm_world());
    CU_ASSERT((ds.bytes[123] == 42) == (mg_comm_rank(mg_comm_world()) == 0));
    mg_dataset_unload(&ds);
}

/* Byte b in [-1, 1]: -1 + 2 (b / 255 in mg_real), in double, rounded once. */
static mg_real ranged(int b)
{
    return (mg_real)(-1 + 2 * (double)((mg_real)b / 255));
}

/* data.range [-1, 1]: the shared and the private training set stay bytes (a quarter of the
 * memory) and stand for -1 + 2 b / 255 on every rank; the validation split, read as values, holds
 * the same values; the pixel means move with them. */
static void test_range_on_every_rank(void)
{
    const char *path = write_idx(300); /* once: rewriting it would race with ranks reading it */
    for (int shared = 0; shared < 2; shared++) {
        mg_config cfg = config_for(path);
        cfg.data.shared_memory = shared;
        cfg.data.range[0] = -1;
        cfg.data.range[1] = 1;
        mg_dataset ds;
        mg_error err;
        CU_ASSERT_FATAL(mg_split_load_train(&ds, &cfg, mg_comm_world(), &err) == 0);
        CU_ASSERT_FATAL(ds.bytes != NULL && ds.x == NULL);
        CU_ASSERT((ds.shared != NULL) == shared);
        int bad = 0;
        mg_real row[20];
        for (int i = 0; i < ds.n; i++) {
            mg_dataset_row(&ds, (size_t)i, row);
            for (int k = 0; k < 20; k++)
                bad += row[k] != ranged((i * 7 + k) % 256);
        }
        CU_ASSERT(mg_comm_all_same(mg_comm_world(), bad == 0));
        CU_ASSERT_EQUAL(bad, 0);
        double mean[20];
        mg_dataset_pixel_mean(&ds, mean);
        double want = 0;
        for (int i = 0; i < 250; i++)
            want += -1 + 2.0 * ((i * 7) % 256) / 255;
        MG_ASSERT_CLOSE(mean[0], want / 250, 1e-6);
        mg_dataset_unload(&ds);

        mg_dataset valid;
        CU_ASSERT_FATAL(mg_split_read(&valid, &cfg, MG_SPLIT_VALID, 0, &err) == 0);
        CU_ASSERT_FATAL(valid.x != NULL && valid.n == 50);
        bad = 0;
        for (int i = 0; i < valid.n; i++)
            for (int k = 0; k < 20; k++)
                bad += valid.x[i * 20 + k] != ranged(((250 + i) * 7 + k) % 256);
        CU_ASSERT_EQUAL(bad, 0);
        mg_dataset_free(&valid);
    }
}

static void test_load_errors_on_every_rank(void)
{
    mg_config cfg = config_for(write_idx(300));
    cfg.data.train_count = 290; /* + 50 validation > 300 */
    mg_dataset ds;
    mg_error err = {{0}};
    CU_ASSERT(mg_split_load_train(&ds, &cfg, mg_comm_world(), &err) == -1);
    if (mg_comm_rank(mg_comm_world()) == 0) {
        char want[8192];
        snprintf(want, sizeof want,
                 "%s: data.train_count 290 + data.valid_count 50 is more than the 300 examples "
                 "of the file",
                 cfg.data.train_images);
        CU_ASSERT_STRING_EQUAL(err.msg, want);
    }
}

/* ---- gradient sums (mg_reducer) ---- */

/* Value i of rank r: integers times a power of two, so every sum is exact in float whatever the
 * order of the additions, and a value summed twice, missed or taken from a stale round shows. */
static mg_real exact_value(int r, size_t i, int round)
{
    return (mg_real)((double)((i * 31 + (size_t)r * 7 + (size_t)round * 5) % 1000) / 64);
}

/* Sums of `rounds` rounds in one reducer against the exact sums; the buffer is rewritten each
 * round as a backward pass would, so a missing barrier shows as a stale or half-summed value. */
/* Buckets at a third and two thirds of [0, n - tail), started from the top as a backward pass
 * would (mg_reducer_ready after each); whether they are used into *used. */
static void cut_thirds(mg_reducer *r, size_t n, size_t tail, int *used)
{
    const size_t cuts[2] = {(n - tail) / 3, 2 * (n - tail) / 3};
    *used = n - tail > 2 && mg_reducer_buckets(r, tail, cuts, 2);
}

static void ready_thirds(mg_reducer *r, size_t n, size_t tail)
{
    mg_reducer_ready(r, 2 * (n - tail) / 3);
    mg_reducer_ready(r, (n - tail) / 3);
}

static void check_exact_sums(const mg_comm *c, size_t n, int shared, int group, int want_shared,
                             int buckets)
{
    const int rank = mg_comm_rank(c), size = mg_comm_size(c);
    const size_t tail = 4;
    mg_reducer *r = mg_reducer_new(c, n, shared, group, NULL);
    CU_ASSERT_EQUAL(mg_reducer_shared(r), want_shared);
    int used = 0;
    if (buckets && n > tail) {
        cut_thirds(r, n, tail, &used);
        CU_ASSERT_EQUAL(used, size > 1 && n - tail > 2 && (!want_shared || group > 0));
    }
    size_t bad = 0;
    for (int round = 0; round < 3; round++) {
        mg_real *x = mg_reducer_buffer(r);
        for (size_t i = 0; i < n; i++)
            x[i] = exact_value(rank, i, round);
        if (used)
            ready_thirds(r, n, tail);
        mg_reducer_sum(r);
        for (size_t i = 0; i < n; i++) {
            double want = 0;
            for (int q = 0; q < size; q++)
                want += exact_value(q, i, round);
            bad += x[i] != (mg_real)want;
        }
    }
    if (bad)
        printf("\n  n %zu, shared %d, group %d, buckets %d: %zu wrong sums on rank %d", n, shared,
               group, used, bad, rank);
    CU_ASSERT_EQUAL(bad, 0);
    mg_reducer_free(r);
}

static void test_reducer_exact(void)
{
    const mg_comm *w = mg_comm_world();
    const int size = mg_comm_size(w);
    /* Sizes: empty chunks (fewer values than 16 per rank), a ragged end, a model-sized buffer. */
    const size_t sizes[] = {1, 17, 1000, 123457};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        for (int b = 0; b < 2; b++) { /* after the pass; in buckets where they go through MPI */
            check_exact_sums(w, sizes[k], 1, 0, size > 1, b); /* one node: shared memory */
            check_exact_sums(w, sizes[k], 0, 0, 0, b);        /* MPI_Allreduce */
            check_exact_sums(w, sizes[k], 1, 1, 0, b); /* nodes of one rank: MPI between them */
            if (size == 4) {
                check_exact_sums(w, sizes[k], 1, 2, 1, b); /* 2 nodes of 2: shared, then MPI */
                check_exact_sums(w, sizes[k], 1, 3, 0, b); /* nodes of 3 and 1: MPI alone */
            }
        }
    }
}

/* A sharded round, as the trainer makes it: every rank's part of the sums and the tail's sums
 * exact; each rank then writes its part of the parameters (the part's sums plus the round), and
 * after the gather every rank sees all of them, whether they live in the node's window or in a
 * copy per rank; parts cover [0, n - tail) once. */
static void check_sharded_sums(const mg_comm *c, size_t n, int shared, int group, int want_window,
                               int buckets)
{
    const int rank = mg_comm_rank(c), size = mg_comm_size(c);
    const size_t tail = 4, main_n = n - tail;
    mg_reducer *r = mg_reducer_new(c, n, shared, group, NULL);
    int used = 0;
    if (buckets)
        cut_thirds(r, n, tail, &used);
    /* buckets < 0: no room for the parameters' window (its directory gone after the sums' window
     * was made): the buckets of shared sums between nodes are dropped, the sums after the pass */
    if (buckets < 0)
        setenv("OMPI_MCA_osc_sm_backing_directory", "/nonexistent/mpigan-test", 1);
    mg_real *own = mg_xcalloc(main_n + 1, sizeof *own);
    mg_real *params = mg_reducer_shard(r, tail, own);
    if (buckets < 0) {
        unsetenv("OMPI_MCA_osc_sm_backing_directory");
        CU_ASSERT(mg_reducer_bucketed(r) == (used && !mg_reducer_shared(r)));
        used = mg_reducer_bucketed(r);
    }
    CU_ASSERT_EQUAL(params != own, want_window);
    size_t bad = 0;
    /* this rank's pieces; they tile [0, main_n): their lengths sum to it, none overlaps another */
    unsigned char *mine = mg_xcalloc(main_n + 1, 1);
    size_t len = 0;
    for (int k = 0; k < mg_reducer_pieces(r); k++) {
        size_t lo, hi;
        mg_reducer_piece(r, k, &lo, &hi);
        CU_ASSERT(lo <= hi && hi <= main_n);
        for (size_t i = lo; i < hi; i++)
            bad += mine[i]++;
        len += hi - lo;
    }
    double total, min, max;
    mg_comm_minmaxsum(c, (double)len, &min, &max, &total);
    CU_ASSERT_EQUAL((size_t)total, main_n);
    for (int round = 0; round < 3; round++) {
        mg_real *x = mg_reducer_buffer(r);
        for (size_t i = 0; i < n; i++)
            x[i] = exact_value(rank, i, round);
        if (used)
            ready_thirds(r, n, tail);
        CU_ASSERT(mg_reducer_scatter(r));
        for (size_t i = 0; i < n; i++) {
            if (i < main_n && !mine[i])
                continue; /* another rank's part */
            double want = 0;
            for (int q = 0; q < size; q++)
                want += exact_value(q, i, round);
            bad += x[i] != (mg_real)want;
        }
        for (size_t i = 0; i < main_n; i++)
            if (mine[i])
                params[i] = x[i] + (mg_real)round;
        mg_reducer_gather_start(r, 1); /* as the trainer does: start, then finish */
        CU_ASSERT(mg_reducer_gather_finish(r));
        for (size_t i = 0; i < main_n; i++) {
            double want = round;
            for (int q = 0; q < size; q++)
                want += exact_value(q, i, round);
            bad += params[i] != (mg_real)want;
        }
    }
    /* one rank's update went wrong: every rank hears it */
    mg_reducer_scatter(r);
    CU_ASSERT_EQUAL(mg_reducer_gather(r, rank != size - 1), 0);
    /* root's parameters to all */
    if (rank == 0)
        for (size_t i = 0; i < main_n; i++)
            params[i] = (mg_real)i;
    mg_reducer_bcast_params(r, 0);
    for (size_t i = 0; i < main_n; i++)
        bad += params[i] != (mg_real)i;
    if (bad)
        printf("\n  sharded: n %zu, shared %d, group %d, buckets %d: %zu wrong values on rank %d",
               n, shared, group, used, bad, rank);
    CU_ASSERT_EQUAL(bad, 0);
    mg_reducer_free(r);
    free(own);
    free(mine);
}

static void test_reducer_sharded(void)
{
    const mg_comm *w = mg_comm_world();
    const int size = mg_comm_size(w);
    /* tails split by a chunk boundary (4098), empty parts, a ragged end, a model-sized buffer */
    const size_t sizes[] = {5, 21, 1004, 4098, 123461};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        for (int b = 0; b < 2; b++) { /* the ring; buckets where the sums go through MPI */
            check_sharded_sums(w, sizes[k], 1, 0, size > 1, b); /* one node: the window */
            check_sharded_sums(w, sizes[k], 0, 0, 0, b);        /* a copy per rank */
            check_sharded_sums(w, sizes[k], 1, 1, 0, b);        /* nodes of one rank */
            if (size == 4) {
                check_sharded_sums(w, sizes[k], 1, 2, 1, b); /* 2 nodes of 2: windows */
                check_sharded_sums(w, sizes[k], 1, 3, 0, b); /* nodes of 3 and 1: no window */
            }
        }
        if (size == 4) /* 2 nodes of 2 with no room for the parameters' window */
            check_sharded_sums(w, sizes[k], 1, 2, 0, -1);
    }
}

/* Values with no short binary form: each rank's rounding to bfloat16 shows. */
static mg_real rough_value(int r, size_t i)
{
    return (mg_real)(0.1 + 0.37 * sin(0.7 * (double)i + 1.3 * r));
}

/* bfloat16 transport (comm.h): every rank's sums within (p + 1) 2^-8 of the sum of the
 * magnitudes of the summed values (twice that with error feedback), the same on every rank (replicated); the statistics (the tail) exact;
 * and with error feedback, what rounding drops comes back: over 20 rounds of the same values the
 * sums add up to 20 exact sums within one round's error, while without feedback they drift. */
static void check_bf16_sums(const mg_comm *c, size_t n, int shared, int group, double mb,
                            int sharded, const char *what)
{
    const int rank = mg_comm_rank(c), size = mg_comm_size(c);
    const size_t tail = 4, main_n = n - tail;
    size_t bad = 0, off = 0;
    double drift[2] = {0, 0};
    for (int feedback = 0; feedback < 2; feedback++) {
        /* with feedback a sum also carries the last sum's rounding back: twice the bound */
        const double bound = (feedback ? 2 : 1) * (size + 1.0) * pow(2, -8);
        mg_reducer *r = mg_reducer_new(c, n, shared, group, NULL);
        const size_t cut = main_n / 2;
        if (mb > 0)
            mg_reducer_buckets(r, tail, &cut, 1);
        mg_reducer_compress(r, tail, feedback);
        mg_real *own = mg_xcalloc(main_n + 1, sizeof *own);
        mg_real *params = sharded ? mg_reducer_shard(r, tail, own) : NULL;
        double *total = mg_xcalloc(n, sizeof *total);
        const int rounds = 20;
        for (int round = 0; round < rounds; round++) {
            mg_real *x = mg_reducer_buffer(r);
            for (size_t i = 0; i < n; i++)
                x[i] = i < main_n ? rough_value(rank, i) : exact_value(rank, i, 0);
            if (mb > 0)
                mg_reducer_ready(r, 0);
            size_t lo = 0, hi = main_n;
            if (sharded) {
                CU_ASSERT(mg_reducer_scatter(r));
            } else {
                mg_reducer_sum(r);
            }
            for (int k = 0; k < mg_reducer_pieces(r) && sharded; k++) {
                mg_reducer_piece(r, k, &lo, &hi);
                for (size_t i = lo; i < hi; i++)
                    total[i] += x[i];
            }
            for (size_t i = 0; i < n; i++) {
                if (sharded && i < main_n)
                    continue;
                double exact = 0, mag = 0;
                for (int q = 0; q < size; q++) {
                    const double v = i < main_n ? rough_value(q, i) : exact_value(q, i, 0);
                    exact += v;
                    mag += fabs(v);
                }
                if (i >= main_n)
                    bad += x[i] != (mg_real)exact; /* the statistics at full precision */
                else if (!(fabs(x[i] - exact) <= bound * mag))
                    bad++;
                if (!sharded)
                    total[i] += x[i];
            }
            if (sharded)
                CU_ASSERT(mg_reducer_gather(r, 1));
        }
        /* error feedback: 20 rounds' sums against 20 exact sums */
        for (size_t i = 0; i < main_n; i++) {
            if (total[i] == 0)
                continue; /* another rank's part */
            double exact = 0;
            for (int q = 0; q < size; q++)
                exact += rough_value(q, i);
            drift[feedback] = fmax(drift[feedback], fabs(total[i] - rounds * exact));
        }
        if (!sharded) /* every rank the same sums */
            CU_ASSERT(mg_comm_all_same(c, crc32(0, (const unsigned char *)mg_reducer_buffer(r),
                                                (unsigned)(n * sizeof(mg_real)))));
        free(total);
        free(own);
        mg_reducer_free(r);
        (void)params;
        off++;
    }
    double lo, hi, sum;
    mg_comm_minmaxsum(c, drift[0], &lo, &hi, &sum);
    drift[0] = hi;
    mg_comm_minmaxsum(c, drift[1], &lo, &hi, &sum);
    drift[1] = hi;
    if (rank == 0)
        printf("\n  bf16 %s on %d ranks: drift of 20 sums without error feedback %.3g, with it "
               "%.3g",
               what, size, drift[0], drift[1]);
    /* MPI's own roundings in a replicated bucket's reduction (MPI_Iallreduce adding bfloat16
     * pairs) are not fed back, only this rank's; a sharded bucket's exchange rounds only each
     * rank's own values and adds them in float, as the ring does */
    CU_ASSERT(mb > 0 && !sharded ? drift[1] < drift[0] : drift[1] < drift[0] / 4);
    if (bad)
        printf("\n  bf16 %s: %zu sums out of bound on rank %d", what, bad, rank);
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_reducer_bf16(void)
{
    const mg_comm *w = mg_comm_world();
    const int size = mg_comm_size(w);
    if (size < 2)
        return;
    for (int sharded = 0; sharded < 2; sharded++) {
        check_bf16_sums(w, 10004, 0, 0, 0, sharded, sharded ? "ring, sharded" : "ring");
        check_bf16_sums(w, 10004, 0, 0, 1, sharded, sharded ? "buckets, sharded" : "buckets");
        if (size == 4) {
            check_bf16_sums(w, 10004, 1, 2, 0, sharded,
                            sharded ? "2 nodes of 2, sharded" : "2 nodes of 2");
            check_bf16_sums(w, 10004, 1, 2, 1, sharded,
                            sharded ? "2 nodes of 2, buckets, sharded" : "2 nodes of 2, buckets");
        }
    }
}

/* The finite verdict of a shared sum: one NaN, +Inf or -Inf put by one rank at one position
 * (first, a chunk boundary, the last) makes every rank see "not finite"; a clean round after it
 * "finite" again. Also on 2 nodes of 2 (4 ranks). */
static void test_reducer_finite(void)
{
    const mg_comm *w = mg_comm_world();
    const int rank = mg_comm_rank(w), size = mg_comm_size(w);
    if (size < 2)
        return;
    const size_t n = 5003;
    const mg_real bad_values[3] = {NAN, INFINITY, -INFINITY};
    /* The first value, both sides of the boundary between the first two chunks (comm.c's
     * chunk_start: n i / ranks rounded down to 16 values), the last value. */
    const size_t edge = (size_t)((double)n / size) & ~(size_t)15;
    const size_t at[4] = {0, edge - 1, edge, n - 1};
    for (int group = 0; group <= (size == 4 ? 2 : 0); group += 2) {
        mg_reducer *r = mg_reducer_new(w, n, 1, group, NULL);
        CU_ASSERT_FATAL(mg_reducer_shared(r));
        mg_real *x = mg_reducer_buffer(r);
        int wrong = 0;
        for (int v = 0; v < 3; v++)
            for (int p = 0; p < 4; p++) {
                const int who = (v + p) % size;
                for (size_t i = 0; i < n; i++)
                    x[i] = exact_value(rank, i, 0);
                if (rank == who)
                    x[at[p]] = bad_values[v];
                mg_reducer_sum(r);
                wrong += mg_reducer_finite(r) != 0;
                for (size_t i = 0; i < n; i++)
                    x[i] = exact_value(rank, i, 1);
                mg_reducer_sum(r);
                wrong += mg_reducer_finite(r) != 1;
            }
        CU_ASSERT_EQUAL(wrong, 0);
        mg_reducer_free(r);
    }
}

static mg_real inexact_value(int r, size_t i)
{
    return (mg_real)(sin((double)(i + 1) * (r + 1) * 0.37) * 1e-3);
}

/* Inexact sums: the shared path gives what MPI_Allreduce gives, bit for bit on 2 ranks (a sum
 * of two does not depend on order); on more, two orders of size - 1 float additions differ by at
 * most 2 (size - 1) FLT_EPSILON times the sum of the magnitudes (Higham, Sec. 4.2). */
static void test_reducer_matches_mpi(void)
{
    const mg_comm *w = mg_comm_world();
    const int rank = mg_comm_rank(w), size = mg_comm_size(w);
    const size_t n = 50003;
    mg_reducer *a = mg_reducer_new(w, n, 1, 0, NULL), *b = mg_reducer_new(w, n, 0, 0, NULL);
    mg_real *x = mg_reducer_buffer(a), *y = mg_reducer_buffer(b);
    for (size_t i = 0; i < n; i++)
        x[i] = y[i] = inexact_value(rank, i);
    mg_reducer_sum(a);
    mg_reducer_sum(b);
    double worst = 0, differ = 0;
    for (size_t i = 0; i < n; i++) {
        double mag = 0;
        for (int q = 0; q < size; q++)
            mag += fabs((double)inexact_value(q, i));
        const double d = fabs((double)x[i] - y[i]);
        worst = fmax(worst, d / (2.0 * (size - 1) * (sizeof(mg_real) == 4 ? FLT_EPSILON : DBL_EPSILON) * mag));
        differ += d > 0;
    }
    if (rank == 0)
        printf("\n  %d ranks: shared vs MPI_Allreduce: %.0f of %zu sums differ; worst difference "
               "%.3g of the bound",
               size, differ, n, worst);
    if (size == 2)
        CU_ASSERT(differ == 0);
    CU_ASSERT(worst <= 1);
    mg_reducer_free(a);
    mg_reducer_free(b);
}

/* ---- stalls in these waits (comm.h's inspector) ---- */

/* The last rank 2.4 s late at a sum watched with 0.8 s (a rank of 4 on 2 busy cores can lag
 * behind the others by a few tenths of a second from scheduling alone): rank 0 names it (alone where every
 * rank waits in the same wait; with 2 nodes of 2, the late rank's node partner waits in the node
 * barrier, before rank 0's sum across nodes, and is named too). Everybody else stays quiet. */
static void check_sum_stall(int shared, int group, int exact)
{
    const mg_comm *w = mg_comm_world();
    const int rank = mg_comm_rank(w), size = mg_comm_size(w);
    mg_reducer *r = mg_reducer_new(w, 50003, shared, group, NULL);
    mg_real *x = mg_reducer_buffer(r);
    for (size_t i = 0; i < 50003; i++)
        x[i] = exact_value(rank, i, 0);
    mg_comm_barrier(w);
    mg_comm_watch(w, 0.8);
    mg_comm_waiting_for(w, "the test sum (shared %d, group %d)", shared, group);
    char what[64], text[4096];
    snprintf(what, sizeof what, "the test sum (shared %d, group %d)", shared, group);
    mg_test_stderr_begin();
    if (rank == size - 1)
        mg_test_sleep(2.4);
    mg_reducer_sum(r);
    mg_test_stderr_end(text, sizeof text);
    mg_comm_watch(w, MG_STALL_DEFAULT_S);
    CU_ASSERT(rank == 0 ? mg_test_stall_report(text, 0, what, size - 1, exact)
                        : strcmp(text, "") == 0);
    CU_ASSERT(x[50002] == (mg_real)(exact_value(0, 50002, 0) + exact_value(size - 1, 50002, 0)) ||
              size != 2);
    mg_reducer_free(r);
}

static void test_sum_stall_reported(void)
{
    const int size = mg_comm_size(mg_comm_world());
    if (size < 2)
        return;
    check_sum_stall(1, 0, 1); /* one node: both node barriers */
    check_sum_stall(0, 0, 1); /* MPI */
    if (size == 4)
        check_sum_stall(1, 2, 0); /* 2 nodes of 2: the sum across nodes */
}

/* The last rank late at loading the training set: rank 0 names it, in "loading the training
 * set" (splits.c), whichever wait of the load (the shape, the window, its broadcast) it hits. */
static void test_load_stall_reported(void)
{
    const mg_comm *w = mg_comm_world();
    const int rank = mg_comm_rank(w), size = mg_comm_size(w);
    if (size < 2)
        return;
    mg_config cfg = config_for(write_idx(300));
    mg_dataset ds;
    mg_error err;
    char text[4096];
    mg_comm_watch(w, 0.8);
    mg_test_stderr_begin();
    if (rank == size - 1)
        mg_test_sleep(2.4);
    CU_ASSERT_FATAL(mg_split_load_train(&ds, &cfg, w, &err) == 0);
    mg_test_stderr_end(text, sizeof text);
    mg_comm_watch(w, MG_STALL_DEFAULT_S);
    CU_ASSERT(rank == 0 ? mg_test_stall_report(text, 0, "loading the training set", size - 1, 1)
                        : strcmp(text, "") == 0);
    CU_ASSERT(ds.shared != NULL && rows_that_differ(&ds) == 0);
    mg_dataset_unload(&ds);
}

int main(int argc, char **argv)
{
    mg_comm_init(&argc, &argv);
    static const mg_test tests[] = {
        {"one_copy_per_node", test_one_copy_per_node},
        {"values_shared", test_values_shared},
        {"private_copies_when_turned_off", test_private_copies_when_turned_off},
        {"labels_shared", test_labels_shared},
        {"load_errors_on_every_rank", test_load_errors_on_every_rank},
        {"range_on_every_rank", test_range_on_every_rank},
        {"reducer_exact", test_reducer_exact},
        {"reducer_sharded", test_reducer_sharded},
        {"reducer_bf16", test_reducer_bf16},
        {"reducer_matches_mpi", test_reducer_matches_mpi},
        {"reducer_finite", test_reducer_finite},
        {"sum_stall_reported", test_sum_stall_reported},
        {"load_stall_reported", test_load_stall_reported},
        {NULL, NULL},
    };
    int rc = mg_test_main("shared", tests, argc, argv);
    int all_ok = mg_comm_all_ok(mg_comm_world(), rc == 0);
    mg_comm_finalize();
    return all_ok ? rc : (rc ? rc : 1);
}
