/* Sampling a generator outside training (generate.h). */
#include "mpigan/generate.h"

#include <stdlib.h>
#include <string.h>

#include "mpigan/blas.h"
#include "mpigan/checkpoint.h"
#include "mpigan/labels.h"

/* The sub-stream of sample-set noise, apart from the noise of any training phase. */
#define SAMPLE_NOISE_SUB 0xffffu

void mg_sample_noise(mg_real *z, const mg_config *cfg, int64_t first, int n, uint64_t set)
{
    const int nz = cfg->generator.noise_dim;
    const mg_rng_key key = {.seed = cfg->seed,
                            .stream = mg_rng_stream(MG_STREAM_NOISE, SAMPLE_NOISE_SUB),
                            .step = set};
    for (int i = 0; i < n; i++)
        mg_rng_prior(z + (size_t)i * nz, (size_t)nz, cfg->generator.prior, &key,
                     (uint64_t)(first + i));
}

int mg_generator_load(mg_net *g, const mg_config *cfg, int max_rows, const char *path,
                      const mg_comm *comm, mg_error *err)
{
    const int rank = mg_comm_rank(comm), classes = mg_config_gan_classes(cfg);
    mg_comm_waiting_for(comm, "loading the generator of %s", path);
    int ok = mg_net_init(g, &cfg->generator.net, cfg->generator.noise_dim + classes, max_rows,
                         err) == 0;
    if (!mg_comm_all_ok(comm, ok))
        return -1;
    if (!mg_comm_all_ok(comm,
                        rank != 0 || mg_checkpoint_load_generator(g, classes, path, err) == 0)) {
        mg_net_free(g);
        return -1;
    }
    mg_comm_bcast(comm, g->params, g->n_params * sizeof(mg_real), 0);
    mg_comm_bcast(comm, g->state, g->n_state * sizeof(mg_real), 0); /* batch norms' averages */
    return 0;
}

int64_t mg_sample_row(int64_t j, int classes, int cls)
{
    return cls == MG_ALL_CLASSES ? j : cls + (int64_t)classes * j;
}

void mg_generate_labeled(mg_real *x, mg_real *z, int32_t *labels, mg_net *g, const mg_config *cfg,
                         int64_t n, uint64_t set, int cls, const mg_comm *comm, int root)
{
    const int rank = mg_comm_rank(comm), size = mg_comm_size(comm);
    const int nz = cfg->generator.noise_dim, classes = mg_config_gan_classes(cfg);
    const size_t dim = (size_t)g->out_dim, g_in = (size_t)nz + classes;
    const int64_t chunks = (n + MG_GENERATE_CHUNK - 1) / MG_GENERATE_CHUNK;
    const int64_t lo = chunks * rank / size * MG_GENERATE_CHUNK;
    const int64_t end = chunks * (rank + 1) / size * MG_GENERATE_CHUNK;
    const int64_t hi = end < n ? end : n;
    const int rows = (int)(hi - lo);
    mg_real *my_z = mg_xmalloc(((size_t)rows * nz + 1) * sizeof *my_z);
    mg_real *my_x = mg_xmalloc(((size_t)rows * dim + 1) * sizeof *my_x);
    int32_t *my_labels = mg_xmalloc(((size_t)rows + 1) * sizeof *my_labels);
    mg_real *in = classes ? mg_xmalloc((size_t)MG_GENERATE_CHUNK * g_in * sizeof *in) : NULL;
    for (int i = 0; i < rows; i++) {
        const int64_t row = mg_sample_row(lo + i, classes, cls);
        mg_sample_noise(my_z + (size_t)i * nz, cfg, row, 1, set);
        my_labels[i] = classes ? (int32_t)(row % classes) : 0;
    }
    /* OpenBLAS's sums depend on its thread count, which depends on the ranks per node. */
    const int threads = mg_blas_set_threads(1);
    for (int i = 0; i < rows; i += MG_GENERATE_CHUNK) {
        const int m = rows - i < MG_GENERATE_CHUNK ? rows - i : MG_GENERATE_CHUNK;
        const mg_real *chunk = my_z + (size_t)i * nz; // (m, g_in)
        if (classes) {
            mg_label_join(in, chunk, m, (size_t)nz, my_labels + i, classes, 1);
            chunk = in;
        }
        const mg_real *out = mg_net_forward(g, chunk, m, NULL);
        memcpy(my_x + (size_t)i * dim, out, (size_t)m * dim * sizeof *my_x);
    }
    mg_blas_set_threads(threads);
    mg_comm_waiting_for(comm, "drawing %lld samples", (long long)n);
    mg_comm_gather(comm, my_x, (size_t)rows * dim * sizeof *my_x, x, root);
    mg_comm_gather(comm, my_z, (size_t)rows * nz * sizeof *my_z, z, root);
    /* Collective: every rank takes part whether or not root keeps the labels. */
    int32_t *spare = rank == root && !labels ? mg_xmalloc(((size_t)n + 1) * sizeof *spare) : NULL;
    mg_comm_gather(comm, my_labels, (size_t)rows * sizeof *my_labels, spare ? spare : labels,
                   root);
    free(spare);
    free(in);
    free(my_labels);
    free(my_x);
    free(my_z);
}

void mg_generate(mg_real *x, mg_real *z, mg_net *g, const mg_config *cfg, int64_t n, uint64_t set,
                 const mg_comm *comm, int root)
{
    mg_generate_labeled(x, z, NULL, g, cfg, n, set, MG_ALL_CLASSES, comm, root);
}
