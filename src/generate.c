/* Sampling a generator outside training (generate.h). */
#include "mpigan/generate.h"

#include <stdlib.h>
#include <string.h>

#include "mpigan/blas.h"
#include "mpigan/checkpoint.h"

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
    const int rank = mg_comm_rank(comm);
    mg_comm_waiting_for(comm, "loading the generator of %s", path);
    int ok = mg_net_init(g, &cfg->generator.net, cfg->generator.noise_dim, max_rows, err) == 0;
    if (!mg_comm_all_ok(comm, ok))
        return -1;
    if (!mg_comm_all_ok(comm, rank != 0 || mg_checkpoint_load_generator(g, path, err) == 0)) {
        mg_net_free(g);
        return -1;
    }
    mg_comm_bcast(comm, g->params, g->n_params * sizeof(mg_real), 0);
    mg_comm_bcast(comm, g->state, g->n_state * sizeof(mg_real), 0); /* batch norms' averages */
    return 0;
}

void mg_generate(mg_real *x, mg_real *z, mg_net *g, const mg_config *cfg, int64_t n, uint64_t set,
                 const mg_comm *comm, int root)
{
    const int rank = mg_comm_rank(comm), size = mg_comm_size(comm);
    const int nz = cfg->generator.noise_dim;
    const size_t dim = (size_t)g->out_dim;
    const int64_t chunks = (n + MG_GENERATE_CHUNK - 1) / MG_GENERATE_CHUNK;
    const int64_t lo = chunks * rank / size * MG_GENERATE_CHUNK;
    const int64_t end = chunks * (rank + 1) / size * MG_GENERATE_CHUNK;
    const int64_t hi = end < n ? end : n;
    const int rows = (int)(hi - lo);
    mg_real *my_z = mg_xmalloc(((size_t)rows * nz + 1) * sizeof *my_z);
    mg_real *my_x = mg_xmalloc(((size_t)rows * dim + 1) * sizeof *my_x);
    mg_sample_noise(my_z, cfg, lo, rows, set);
    /* OpenBLAS's sums depend on its thread count, which depends on the ranks per node. */
    const int threads = mg_blas_set_threads(1);
    for (int i = 0; i < rows; i += MG_GENERATE_CHUNK) {
        const int m = rows - i < MG_GENERATE_CHUNK ? rows - i : MG_GENERATE_CHUNK;
        const mg_real *out = mg_net_forward(g, my_z + (size_t)i * nz, m, NULL);
        memcpy(my_x + (size_t)i * dim, out, (size_t)m * dim * sizeof *my_x);
    }
    mg_blas_set_threads(threads);
    mg_comm_waiting_for(comm, "drawing %lld samples", (long long)n);
    mg_comm_gather(comm, my_x, (size_t)rows * dim * sizeof *my_x, x, root);
    mg_comm_gather(comm, my_z, (size_t)rows * nz * sizeof *my_z, z, root);
    free(my_x);
    free(my_z);
}
