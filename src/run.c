/* The commands train, sample, info and prepare (run.h). Rank 0 reads, prints and writes; every
 * decision that ends a command is agreed by all ranks, so none is left waiting in a collective. */
#include "mpigan/run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpigan/checkpoint.h"
#include "mpigan/cifar10.h"
#include "mpigan/config.h"
#include "mpigan/generate.h"
#include "mpigan/h5data.h"
#include "mpigan/idx.h"
#include "mpigan/image.h"
#include "mpigan/labels.h"
#include "mpigan/rundir.h"
#include "mpigan/sampleset.h"
#include "mpigan/tfd.h"

/* Rank 0 prints an error every rank shares, and all return the same status. */
static int fail_all(const mg_comm *comm, const mg_error *err, int code)
{
    if (mg_comm_rank(comm) == 0)
        fprintf(stderr, "mpigan: %s\n", err->msg);
    return code;
}

int mg_run_train(const mg_train_opts *o, const mg_comm *comm)
{
    mg_session *s;
    int status = mg_session_open(&s, o, comm);
    if (status != MG_EXIT_OK)
        return status;
    while (status == MG_EXIT_OK && !mg_session_done(s))
        status = mg_session_step(s);
    return mg_session_close(s, status);
}

int mg_run_info(const char *checkpoint)
{
    mg_error err;
    char path[MG_PATH_MAX];
    if (mg_checkpoint_resolve(path, sizeof path, checkpoint, NULL, &err) ||
        mg_checkpoint_describe(stdout, path, &err)) {
        fprintf(stderr, "mpigan: %s\n", err.msg);
        return MG_EXIT_INPUT;
    }
    return MG_EXIT_OK;
}

int mg_run_sample(const mg_sample_opts *o, const mg_comm *comm)
{
    const int rank = mg_comm_rank(comm), size = mg_comm_size(comm);
    mg_error err = {{0}};
    char ckpt[MG_PATH_MAX] = "";
    mg_config cfg;
    int shape[3] = {0}; /* channels, height, width */
    int ok = 1;
    if (rank == 0) {
        mg_checkpoint_info info;
        ok = mg_checkpoint_resolve(ckpt, sizeof ckpt, o->checkpoint, NULL, &err) == 0 &&
             mg_checkpoint_read_info(&info, ckpt, &err) == 0;
        if (ok) {
            ok = mg_config_parse_networks(&cfg, info.config_yaml, ckpt, &err) == 0;
            memcpy(shape, (int[3]){info.channels, info.height, info.width}, sizeof shape);
            mg_checkpoint_info_free(&info);
        }
        ok = ok && mg_rundir_check_output(o->out, ckpt, 0, &err) == 0 &&
             (!o->png || mg_rundir_check_output(o->png, ckpt, 0, &err) == 0);
        const size_t dim = (size_t)shape[0] * shape[1] * shape[2];
        if (ok && (size_t)o->n * dim > ((size_t)1 << 34))
            ok = mg_fail(&err, "%s: %lld samples of %zu values are more than one file holds here "
                               "(2^34 values)",
                         o->out, (long long)o->n, dim) == 0;
        const int classes = ok ? mg_config_gan_classes(&cfg) : 0;
        if (ok && o->cls != MG_ALL_CLASSES && !classes)
            ok = mg_fail(&err, "%s: --class %d: the checkpoint's generator is unconditional",
                         ckpt, o->cls) == 0;
        else if (ok && o->cls != MG_ALL_CLASSES && o->cls >= classes)
            ok = mg_fail(&err, "%s: --class %d: the generator's classes are 0 to %d", ckpt,
                         o->cls, classes - 1) == 0;
        /* The picture's size, before the work: a class grid, or cols columns. */
        mg_error why = {{0}};
        if (ok && o->png &&
            (classes && o->cls == MG_ALL_CLASSES
                 ? mg_class_grid_fits((int)o->n, classes, shape[0], shape[1], shape[2], 0, &why)
                 : mg_png_grid_fits((int)o->n, mg_grid_columns(o->n, o->columns), shape[0],
                                    shape[1], shape[2], 0, &why)))
            ok = mg_fail(&err, "%s: %s", o->png, why.msg) == 0;
    }
    /* The checkpoint's stall setting: rank 0's now, the others' once the configuration came. */
    if (rank == 0 && ok)
        mg_comm_watch(comm, cfg.train.stall_seconds);
    if (!mg_comm_all_ok(comm, ok))
        return fail_all(comm, &err, MG_EXIT_INPUT);
    mg_comm_bcast(comm, &cfg, sizeof cfg, 0);
    mg_comm_bcast(comm, shape, sizeof shape, 0);
    mg_comm_watch(comm, cfg.train.stall_seconds);

    mg_net g;
    if (mg_generator_load(&g, &cfg, MG_GENERATE_CHUNK, ckpt, comm, &err))
        return fail_all(comm, &err, MG_EXIT_INPUT);

    const int nz = cfg.generator.noise_dim, classes = mg_config_gan_classes(&cfg);
    const size_t dim = (size_t)g.out_dim;
    mg_real *all_x = NULL, *all_z = NULL;
    int32_t *labels = NULL;
    if (rank == 0) {
        all_x = mg_xmalloc((size_t)o->n * dim * sizeof *all_x);
        all_z = mg_xmalloc((size_t)o->n * nz * sizeof *all_z);
        labels = classes ? mg_xmalloc((size_t)o->n * sizeof *labels) : NULL;
    }
    mg_generate_labeled(all_x, all_z, labels, &g, &cfg, o->n, o->set, o->cls, comm, 0);

    int status = MG_EXIT_OK;
    if (rank == 0) {
        mg_checkpoint_info info;
        int64_t step = mg_checkpoint_read_info(&info, ckpt, &err) == 0 ? info.step : -1;
        if (step >= 0)
            mg_checkpoint_info_free(&info);
        mg_image_shape ishape = {(int)o->n, shape[0], shape[1], shape[2]};
        const int cols = mg_grid_columns(o->n, o->columns);
        const mg_pixel_scale scale = mg_pixel_scale_of(&cfg);
        /* A conditional G's samples of every class: one grid row per class. */
        const int class_grid = classes && o->cls == MG_ALL_CLASSES;
        if (step < 0 ||
            mg_sampleset_write_labeled(o->out, all_x, ishape, all_z, nz, labels, ckpt, step,
                                       &err) ||
            (o->png && class_grid &&
             mg_png_class_grid(o->png, all_x, (int)o->n, classes, shape[0], shape[1], shape[2],
                               NULL, &scale, &err)) ||
            (o->png && !class_grid &&
             mg_png_grid(o->png, all_x, (int)o->n, cols, shape[0], shape[1], shape[2], NULL,
                         &scale, &err))) {
            fprintf(stderr, "mpigan: %s\n", err.msg);
            status = MG_EXIT_RUNTIME;
        } else {
            printf("%lld samples of %s (step %lld) on %d rank%s: %s%s%s\n", (long long)o->n, ckpt,
                   (long long)step, size, size == 1 ? "" : "s", o->out, o->png ? ", " : "",
                   o->png ? o->png : "");
        }
    }
    free(all_x);
    free(all_z);
    free(labels);
    mg_net_free(&g);
    return status;
}

int mg_run_prepare(const mg_prepare_opts *o)
{
    mg_error err;
    mg_dataset ds = {0};
    int32_t *labels = NULL;
    int rc = -1;
    char source[1024];
    int at = snprintf(source, sizeof source, "%s:", o->format);
    for (int i = 0; i < o->n_inputs && at < (int)sizeof source; i++)
        at += snprintf(source + at, sizeof source - at, " %s", o->inputs[i]);

    for (int i = 0; i < o->n_inputs; i++)
        if (mg_rundir_check_output(o->out, o->inputs[i], 0, &err)) {
            fprintf(stderr, "mpigan: %s\n", err.msg);
            return MG_EXIT_INPUT;
        }
    if (!strcmp(o->format, "idx")) {
        rc = mg_idx_read_images(&ds, o->inputs[0], 0, -1, &err);
        if (rc == 0 && o->n_inputs == 2) {
            uint8_t *bytes = NULL;
            int n = 0;
            rc = mg_idx_read_labels(&bytes, &n, o->inputs[1], &err);
            if (rc == 0 && n != ds.n)
                rc = mg_fail(&err, "%s: %d labels for the %d images of %s", o->inputs[1], n, ds.n,
                             o->inputs[0]);
            if (rc == 0) {
                labels = mg_xmalloc((size_t)n * sizeof *labels);
                for (int i = 0; i < n; i++)
                    labels[i] = bytes[i];
            }
            free(bytes);
        }
    } else if (!strcmp(o->format, "cifar10")) {
        uint8_t *bytes = NULL;
        rc = mg_cifar10_read(&ds, &bytes, o->inputs, o->n_inputs, &err);
        if (rc == 0) {
            labels = mg_xmalloc((size_t)ds.n * sizeof *labels);
            for (int i = 0; i < ds.n; i++)
                labels[i] = bytes[i];
            free(bytes);
        }
    } else if (!strcmp(o->format, "tfd")) {
        /* Labels as training reads them: labs_ex - 1 of a labelled split; the unlabeled has none. */
        static const char *const splits[] = {"unlabeled", "train", "valid", "test"};
        const int labelled = o->split != MG_TFD_UNLABELED;
        rc = mg_tfd_read(&ds, labelled ? &labels : NULL, NULL, o->inputs[0], o->fold,
                         (enum mg_tfd_split)o->split, &err);
        if (rc == 0 && labelled)
            rc = mg_tfd_expression_classes(labels, ds.n, o->inputs[0], splits[o->split], &err);
    } else {
        rc = mg_fail(&err, "prepare: format %s is not one of idx, cifar10, tfd", o->format);
    }
    if (rc == 0)
        rc = mg_h5data_write(o->out, &ds, labels, source, &err);
    if (rc == 0)
        printf("%s: %d examples of %dx%dx%d from %s\n", o->out, ds.n, ds.channels, ds.height,
               ds.width, source);
    else
        fprintf(stderr, "mpigan: %s\n", err.msg);
    free(labels);
    mg_dataset_free(&ds);
    return rc == 0 ? MG_EXIT_OK : MG_EXIT_INPUT;
}
