/* The training set in each node's shared memory: loaded once, seen whole by every rank.
 * Run by mpiexec on 2 and 4 ranks (all on one node here). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "mpigan/comm.h"
#include "mpigan/config.h"
#include "mpigan/data.h"
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
    CU_ASSERT_FATAL(mg_dataset_load_train(&ds, &cfg, mg_comm_world(), &err) == 0);
    CU_ASSERT(ds.shared != NULL);
    CU_ASSERT_FATAL(ds.x != NULL && ds.bytes == NULL);
    /* Each example centred: its values sum to 0. */
    double sum = 0;
    for (int k = 0; k < 20; k++)
        sum += ds.x[7 * 20 + k];
    MG_ASSERT_CLOSE(sum, 0, 1e-4);
    mg_dataset_free(&ds);
}

static void test_one_copy_per_node(void)
{
    const mg_comm *world = mg_comm_world();
    const int rank = mg_comm_rank(world);
    mg_config cfg = config_for(write_idx(300));
    mg_dataset ds;
    mg_error err;
    CU_ASSERT_FATAL(mg_dataset_load_train(&ds, &cfg, world, &err) == 0);
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
    mg_dataset_free(&ds);
}

static void test_private_copies_when_turned_off(void)
{
    mg_config cfg = config_for(write_idx(300));
    cfg.data.shared_memory = 0;
    mg_dataset ds;
    mg_error err;
    CU_ASSERT_FATAL(mg_dataset_load_train(&ds, &cfg, mg_comm_world(), &err) == 0);
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
    mg_dataset_free(&ds);
}

static void test_load_errors_on_every_rank(void)
{
    mg_config cfg = config_for(write_idx(300));
    cfg.data.train_count = 290; /* + 50 validation > 300 */
    mg_dataset ds;
    mg_error err = {{0}};
    CU_ASSERT(mg_dataset_load_train(&ds, &cfg, mg_comm_world(), &err) == -1);
    if (mg_comm_rank(mg_comm_world()) == 0) {
        char want[8192];
        snprintf(want, sizeof want,
                 "%s: data.train_count 290 + data.valid_count 50 is more than the 300 examples "
                 "of the file",
                 cfg.data.train_images);
        CU_ASSERT_STRING_EQUAL(err.msg, want);
    }
}

int main(int argc, char **argv)
{
    mg_comm_init(&argc, &argv);
    static const mg_test tests[] = {
        {"one_copy_per_node", test_one_copy_per_node},
        {"values_shared", test_values_shared},
        {"private_copies_when_turned_off", test_private_copies_when_turned_off},
        {"load_errors_on_every_rank", test_load_errors_on_every_rank},
        {NULL, NULL},
    };
    int rc = mg_test_main("shared", tests, argc, argv);
    int all_ok = mg_comm_all_ok(mg_comm_world(), rc == 0);
    mg_comm_finalize();
    return all_ok ? rc : (rc ? rc : 1);
}
