#include "fixtures.h"

#include <CUnit/CUnit.h>
#include <math.h>

#include "mpigan/rng.h"

mg_dataset mg_fixture_blobs(int n)
{
    mg_dataset ds;
    mg_error err;
    CU_ASSERT_FATAL(mg_dataset_alloc(&ds, n, 1, 6, 6, &err) == 0);
    mg_rng_key key = {.seed = 99, .stream = 12345, .step = 0};
    for (int i = 0; i < n; i++) {
        mg_real u[2];
        mg_rng_uniform(u, 2, 0, 1, &key, (uint64_t)i);
        int cx = (int)(u[0] * 5), cy = (int)(u[1] * 5);
        for (int y = 0; y < 6; y++)
            for (int x = 0; x < 6; x++)
                ds.x[(size_t)i * 36 + y * 6 + x] =
                    (mg_real)exp(-0.5 * ((x - cx) * (x - cx) + (y - cy) * (y - cy)));
    }
    return ds;
}

int mg_fixture_trainer(mg_trainer *t, const mg_config *cfg, const mg_dataset *ds,
                       const mg_comm *comm, mg_error *err)
{
    const mg_gan_spec spec = mg_config_gan(cfg);
    return mg_trainer_init(t, &spec, ds, comm, err);
}

static mg_metrics_window fixture_window;
static double fixture_elapsed;

mg_checkpoint_state mg_fixture_state(mg_trainer *t)
{
    return (mg_checkpoint_state){
        .g = &t->g, .d = &t->d, .g_opt = &t->g_opt, .d_opt = &t->d_opt,
        .step = &t->step, .minibatch = &t->minibatch, .skipped = &t->skipped,
        .window = &fixture_window, .elapsed_s = &fixture_elapsed,
        .batches_per_epoch = t->batches_per_epoch, .seed = t->spec.seed, .ranks = t->nranks,
        .batch_size = t->batch, .channels = t->data->channels, .height = t->data->height,
        .width = t->data->width};
}

int mg_fixture_write(const mg_trainer *t, const char *yaml, const char *path, mg_error *err)
{
    const mg_checkpoint_state s = mg_fixture_state((mg_trainer *)t);
    return mg_checkpoint_write(&s, yaml, path, err);
}

int mg_fixture_load(mg_trainer *t, const char *path, mg_error *err)
{
    const mg_checkpoint_state s = mg_fixture_state(t);
    return mg_checkpoint_load(&s, path, err);
}

int mg_fixture_save(const mg_trainer *t, const char *yaml, const char *dir, int keep, char *out,
                    size_t n, mg_error *err)
{
    const mg_checkpoint_state s = mg_fixture_state((mg_trainer *)t);
    return mg_checkpoint_save(&s, yaml, dir, keep, out, n, err);
}
