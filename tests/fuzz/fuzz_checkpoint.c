/* The checkpoint readers on any file: mg_checkpoint_read_info (whose configuration text then
 * goes through mg_config_parse_networks, as `mpigan sample` does), mg_checkpoint_describe
 * (`mpigan info`), and the loads into networks built from FUZZ_CKPT_CONFIG with SGD and with
 * Adam, which must leave the networks untouched when they fail. */
#define _GNU_SOURCE /* open_memstream */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "mpigan/checkpoint.h"
#include "mpigan/config.h"

/* What a load touches: networks, optimizers and counters, no trainer and no MPI. */
typedef struct {
    mg_net g, d;
    mg_optim g_opt, d_opt;
    int64_t step, minibatch, skipped;
    mg_metrics_window window;
    double elapsed_s;
} loaded;

static loaded targets[2];
static mg_net gen;

static void build(loaded *t, const char *yaml)
{
    mg_error err;
    mg_config cfg;
    if (mg_config_parse_networks(&cfg, yaml, "fuzz.yaml", &err) ||
        mg_net_init(&t->g, &cfg.generator.net, cfg.generator.noise_dim, 2, &err) ||
        mg_net_init(&t->d, &cfg.discriminator.net, FUZZ_CKPT_SIDE * FUZZ_CKPT_SIDE, 4, &err) ||
        mg_optim_init(&t->g_opt, &cfg.generator.optim, t->g.n_params, &err) ||
        mg_optim_init(&t->d_opt, &cfg.discriminator.optim, t->d.n_params, &err)) {
        fprintf(stderr, "fuzz_checkpoint: %s\n", err.msg);
        abort();
    }
}

static mg_checkpoint_state state_of(loaded *t)
{
    return (mg_checkpoint_state){.g = &t->g, .d = &t->d, .g_opt = &t->g_opt, .d_opt = &t->d_opt,
                                 .step = &t->step, .minibatch = &t->minibatch,
                                 .skipped = &t->skipped, .window = &t->window,
                                 .elapsed_s = &t->elapsed_s};
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_hdf5_init();
    build(&targets[0], FUZZ_CKPT_CONFIG("sgd"));
    build(&targets[1], FUZZ_CKPT_CONFIG("adam"));
    mg_error err;
    mg_config cfg;
    if (mg_config_parse_networks(&cfg, FUZZ_CKPT_CONFIG("sgd"), "fuzz.yaml", &err) ||
        mg_net_init(&gen, &cfg.generator.net, 4, 2, &err))
        abort();
    return 0;
}

static unsigned sum(const loaded *t)
{
    return mg_net_checksum(&t->g) ^ mg_net_checksum(&t->d) ^ (unsigned)t->g_opt.t ^
           (unsigned)t->step ^ (unsigned)t->skipped ^ (unsigned)t->window.steps;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, ".h5");
    mg_error err = {""};
    mg_checkpoint_info info;
    int rc = mg_checkpoint_read_info(&info, path, &err);
    fuzz_check_error(rc, &err, path);
    fuzz_check_hdf5_closed();
    if (rc == 0) {
        mg_config cfg;
        mg_error cerr;
        fuzz_check_error(mg_config_parse_networks(&cfg, info.config_yaml, path, &cerr), &cerr,
                         path);
        mg_checkpoint_info_free(&info);
    }

    char *text = NULL;
    size_t n = 0;
    FILE *out = open_memstream(&text, &n);
    rc = mg_checkpoint_describe(out, path, &err);
    fclose(out);
    free(text);
    fuzz_check_error(rc, &err, path);
    fuzz_check_hdf5_closed();

    for (int i = 0; i < 2; i++) {
        loaded *t = &targets[i];
        unsigned before = sum(t);
        const mg_checkpoint_state st = state_of(t);
        rc = mg_checkpoint_load(&st, path, &err);
        fuzz_check_error(rc, &err, path);
        fuzz_check_hdf5_closed();
        if (rc != 0 && sum(t) != before) {
            fprintf(stderr, "fuzz: a failed load changed the networks\n");
            abort();
        }
    }
    rc = mg_checkpoint_load_generator(&gen, 0, path, &err);
    fuzz_check_error(rc, &err, path);
    fuzz_check_hdf5_closed();
    return 0;
}
