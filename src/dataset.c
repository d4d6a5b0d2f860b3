/* The data sets a configuration names, loaded once and shared by every rank. */
#include <stdint.h>
#include <string.h>

#include "mpigan/comm.h"
#include "mpigan/config.h"
#include "mpigan/data.h"

/* Rank 0 reads the training split and broadcasts it; every rank ends with the same examples. */
int mg_dataset_load_train(mg_dataset *ds, const mg_config *cfg, const mg_comm *comm,
                          mg_error *err)
{
    int rank = mg_comm_rank(comm);
    int shape[4] = {0}; /* n, channels, height, width; n = 0 means rank 0 failed */
    if (rank == 0) {
        mg_idx_header h;
        const char *path = cfg->data.train_images;
        if (mg_idx_read_header(&h, path, err) == 0) {
            int64_t have = h.dims[0];
            int64_t want = (int64_t)cfg->data.train_count + cfg->data.valid_count;
            if (want > have)
                mg_fail(err,
                        "%s: data.train_count %d + data.valid_count %d is more than the %lld "
                        "examples of the file",
                        path, cfg->data.train_count, cfg->data.valid_count, (long long)have);
            else if (mg_idx_read_images(ds, path, 0, cfg->data.train_count, err) == 0)
                memcpy(shape, (int[4]){ds->n, ds->channels, ds->height, ds->width}, sizeof shape);
        }
    }
    mg_comm_bcast(comm, shape, sizeof shape, 0);
    if (shape[0] == 0)
        return -1;
    if (rank != 0 && mg_dataset_alloc(ds, shape[0], shape[1], shape[2], shape[3], err))
        mg_comm_abort(comm, 1); /* out of memory on one rank alone */
    mg_comm_bcast(comm, ds->x, ds->dim * (size_t)ds->n * sizeof(mg_real), 0);
    return 0;
}
