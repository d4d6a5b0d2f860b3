/* Checkpoints in HDF5. The schema (README.md, "Checkpoint files"):
 *
 *   /                      attributes format, format_version, mpigan_version, step, minibatch,
 *                          epoch, seed, ranks, batch_size, real, created
 *   /config                the effective configuration, YAML text (scalar string)
 *   /generator/<layer>/W   (in, units), or (in, units, pieces) for maxout
 *   /generator/<layer>/b   (units), or (units, pieces) for maxout
 *                          attributes type, units, pieces, index (position in the network)
 *   /generator/optimizer   attributes type, t, lr, momentum (sgd) or beta1, beta2, eps (adam);
 *                          datasets m (n_params) and, for adam, v (n_params)
 *   /discriminator/...     the same
 *   /metrics               attributes skipped, elapsed_s, window_steps, window_d_loss,
 *                          window_g_loss, window_d_real, window_d_fake: the run's record keeping
 *                          (optional: files written before it load with zeros)
 *
 * A classifier's checkpoint (root attribute kind "classifier") holds /classifier/<layer>/... and
 * /classifier/optimizer instead of the two networks, and no /metrics. Root attribute classes: the
 * classes a GAN is conditioned on (0: none), or the classifier's.
 *
 * Tensors are float32 (float64 from the double build, which `real` names); a load checks the
 * stored type is mg_real. Strings are fixed-length. The file is in the HDF5 1.8 format (metadata
 * checksums) and every tensor is chunked with the Fletcher32 filter, so damage anywhere fails to
 * load instead of loading other numbers (h5io.c). */
#define _GNU_SOURCE /* open_memstream */
#include "mpigan/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h5io.h"
#include "mpigan/files.h"
#include "mpigan/labels.h"

#ifndef MPIGAN_VERSION
#error "MPIGAN_VERSION must be defined by the build"
#endif

enum { NET_G, NET_D, NET_C };
static const char *const net_names[3] = {"generator", "discriminator", "classifier"};

/* /generator/optimizer holds the optimizer state, so no layer may be called that. */
#define OPTIM_GROUP "optimizer"

/* The run's record keeping: the counters behind metrics.jsonl. */
#define METRICS_GROUP "/metrics"

/* HDF5 object names: a group "/discriminator/<name, < MG_NAME_MAX>", an object in it. */
#define GRP_MAX 96
#define OBJ_MAX 128

static const char *optim_name(enum mg_optim_type type)
{
    return type == MG_OPTIM_ADAM ? "adam" : "sgd";
}

/* A layer's tensors as HDF5 shapes (mg_layer_tensors: W (in, units), or (in, units, pieces) for
 * maxout, whose column u * pieces + p of the flat (in, width) buffer makes the row-major 3-d
 * array an exact view of it; conv W (OC, IC, KH, KW); a batch norm's gamma, beta and running
 * averages (C)). */
static int tensor_dims(const mg_tensor_info *t, hsize_t *dims)
{
    for (int i = 0; i < t->rank; i++)
        dims[i] = (hsize_t)t->dims[i];
    return t->rank;
}

static const mg_real *tensor_data(const mg_net *net, const mg_tensor_info *t)
{
    return (t->in_state ? net->state : net->params) + t->off;
}

/* ---- writing: errors say what failed; mg_checkpoint_write names the file ---- */

static int attr_int(hid_t f, const char *obj, const char *name, int v, mg_error *what)
{
    return mg_h5w_attr(f, obj, name, H5T_STD_I32LE, H5T_NATIVE_INT, &v, what);
}

static int attr_i64(hid_t f, const char *obj, const char *name, int64_t v, mg_error *what)
{
    return mg_h5w_attr(f, obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v, what);
}

static int attr_f64(hid_t f, const char *obj, const char *name, double v, mg_error *what)
{
    return mg_h5w_attr(f, obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v, what);
}

static int write_layer(hid_t f, const char *net_name, int l, const mg_net *net, mg_error *what)
{
    const mg_layer *L = &net->layer[l];
    char grp[GRP_MAX], obj[OBJ_MAX];
    snprintf(grp, sizeof grp, "/%s/%s", net_name, L->spec.name);
    /* units: a dense layer's outputs, else output channels; activation: that of a layer whose
     * type is its operation. */
    const int units = L->spec.op == MG_OP_DENSE ? L->units : L->out_c;
    if (mg_h5w_group(f, grp, what) ||
        mg_h5w_attr_str(f, grp, "type", mg_layer_type_name(&L->spec), what) ||
        attr_int(f, grp, "units", units, what) ||
        attr_int(f, grp, "pieces", L->spec.pieces, what) || attr_int(f, grp, "index", l, what))
        return -1;
    if (L->spec.op != MG_OP_DENSE &&
        mg_h5w_attr_str(f, grp, "activation", mg_act_name(L->spec.type), what))
        return -1;
    mg_tensor_info t[MG_MAX_LAYER_TENSORS];
    const int n = mg_layer_tensors(net, l, t);
    for (int i = 0; i < n; i++) {
        hsize_t dims[5];
        const int rank = tensor_dims(&t[i], dims);
        snprintf(obj, sizeof obj, "%s/%s", grp, t[i].name);
        if (mg_h5w_dataset(f, obj, MG_H5_REAL_FILE, MG_H5_REAL_MEM, rank, dims,
                           tensor_data(net, &t[i]), what))
            return -1;
    }
    return 0;
}

static int write_optim(hid_t f, const char *net_name, const mg_optim *opt, int64_t epochs,
                       mg_error *what)
{
    char grp[GRP_MAX], obj[OBJ_MAX];
    snprintf(grp, sizeof grp, "/%s/" OPTIM_GROUP, net_name);
    const mg_optim_spec *s = &opt->spec;
    if (mg_h5w_group(f, grp, what) || mg_h5w_attr_str(f, grp, "type", optim_name(s->type), what) ||
        attr_i64(f, grp, "t", opt->t, what))
        return -1;
    /* For a reader's eyes only: a resumed run recomputes both from t, the epoch and the
     * configuration. */
    if (attr_f64(f, grp, "lr", mg_optim_lr(s, opt->t), what))
        return -1;
    if (s->type == MG_OPTIM_SGD) {
        if (attr_f64(f, grp, "momentum", mg_optim_momentum(s, epochs), what))
            return -1;
    } else if (attr_f64(f, grp, "beta1", s->beta1, what) ||
               attr_f64(f, grp, "beta2", s->beta2, what) || attr_f64(f, grp, "eps", s->eps, what)) {
        return -1;
    }
    const hsize_t n = (hsize_t)opt->n;
    snprintf(obj, sizeof obj, "%s/m", grp);
    if (mg_h5w_dataset(f, obj, MG_H5_REAL_FILE, MG_H5_REAL_MEM, 1, &n, opt->m, what))
        return -1;
    if (s->type == MG_OPTIM_ADAM) {
        snprintf(obj, sizeof obj, "%s/v", grp);
        if (mg_h5w_dataset(f, obj, MG_H5_REAL_FILE, MG_H5_REAL_MEM, 1, &n, opt->v, what))
            return -1;
    }
    return 0;
}

static int write_net(hid_t f, int which, const mg_net *net, const mg_optim *opt, int64_t epochs,
                     mg_error *what)
{
    char grp[OBJ_MAX];
    snprintf(grp, sizeof grp, "/%s", net_names[which]);
    if (mg_h5w_group(f, grp, what))
        return -1;
    for (int l = 0; l < net->n_layers; l++) {
        if (strcmp(net->layer[l].spec.name, OPTIM_GROUP) == 0)
            return mg_fail(what,
                           "%s layer %d is named \"" OPTIM_GROUP "\", the name of the optimizer "
                           "state: rename the layer",
                           net_names[which], l);
        if (write_layer(f, net_names[which], l, net, what))
            return -1;
    }
    return write_optim(f, net_names[which], opt, epochs, what);
}

/* The metrics record in progress and the counters the run's records need. */
static int write_metrics(hid_t f, const mg_checkpoint_state *t, mg_error *what)
{
    const mg_metrics_window *w = t->window;
    return mg_h5w_group(f, METRICS_GROUP, what) ||
           attr_i64(f, METRICS_GROUP, "skipped", *t->skipped, what) ||
           attr_f64(f, METRICS_GROUP, "elapsed_s", *t->elapsed_s, what) ||
           attr_i64(f, METRICS_GROUP, "window_steps", w->steps, what) ||
           attr_f64(f, METRICS_GROUP, "window_d_loss", w->d_loss, what) ||
           attr_f64(f, METRICS_GROUP, "window_g_loss", w->g_loss, what) ||
           attr_f64(f, METRICS_GROUP, "window_d_real", w->d_real, what) ||
           attr_f64(f, METRICS_GROUP, "window_d_fake", w->d_fake, what)
               ? -1
               : 0;
}

static int write_all(hid_t f, const mg_checkpoint_state *t, const char *config_yaml,
                     mg_error *what)
{
    const int classifier = t->c != NULL;
    char created[32];
    mg_h5_now_iso8601(created, sizeof created);
    const uint64_t seed = t->seed;
    const int64_t minibatch = *t->minibatch;
    const int64_t epochs = t->batches_per_epoch > 0 ? minibatch / t->batches_per_epoch : 0;
    const double epoch =
        t->batches_per_epoch > 0 ? (double)minibatch / (double)t->batches_per_epoch : 0;
    if (mg_h5w_attr_str(f, "/", "format", MG_CHECKPOINT_FORMAT, what) ||
        attr_int(f, "/", "format_version", MG_CHECKPOINT_VERSION, what) ||
        mg_h5w_attr_str(f, "/", "mpigan_version", MPIGAN_VERSION, what) ||
        attr_i64(f, "/", "step", *t->step, what) ||
        attr_i64(f, "/", "minibatch", minibatch, what) ||
        attr_f64(f, "/", "epoch", epoch, what) ||
        mg_h5w_attr(f, "/", "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, &seed, what) ||
        attr_int(f, "/", "ranks", t->ranks, what) ||
        attr_int(f, "/", "batch_size", t->batch_size, what) ||
        attr_int(f, "/", "channels", t->channels, what) ||
        attr_int(f, "/", "height", t->height, what) ||
        attr_int(f, "/", "width", t->width, what) ||
        mg_h5w_attr_str(f, "/", "real", MG_REAL_NAME, what) ||
        mg_h5w_attr_str(f, "/", "created", created, what) ||
        mg_h5w_attr_str(f, "/", "kind", classifier ? MG_CHECKPOINT_CLASSIFIER : MG_CHECKPOINT_GAN,
                        what) ||
        attr_int(f, "/", "classes", t->classes, what))
        return -1;
    if (mg_h5w_text(f, "/config", config_yaml ? config_yaml : "", what))
        return -1;
    if (classifier)
        return write_net(f, NET_C, t->c, t->c_opt, epochs, what);
    if (write_net(f, NET_G, t->g, t->g_opt, epochs, what) ||
        write_net(f, NET_D, t->d, t->d_opt, epochs, what))
        return -1;
    return write_metrics(f, t, what);
}

typedef struct {
    const mg_checkpoint_state *t;
    const char *config_yaml;
} write_ctx;

static int fill_checkpoint(hid_t f, const void *ctx, mg_error *what)
{
    const write_ctx *w = ctx;
    return write_all(f, w->t, w->config_yaml, what);
}

/* The name of the first of s's tensors that holds NaN or Inf, or NULL: such a state is never
 * written, so that a checkpoint (and latest.h5) always holds a state a run can continue from. */
static const char *not_finite(const mg_checkpoint_state *s)
{
    if (s->c) {
        if (!mg_all_finite(s->c->params, s->c->n_params) ||
            (s->c->n_state && !mg_all_finite(s->c->state, s->c->n_state)))
            return "the classifier's parameters";
        if (!mg_all_finite(s->c_opt->m, s->c_opt->n) ||
            (s->c_opt->v && !mg_all_finite(s->c_opt->v, s->c_opt->n)))
            return "the classifier's optimizer state";
        return NULL;
    }
    const struct {
        const char *name;
        const mg_real *x;
        size_t n;
    } parts[] = {
        {"the generator's parameters", s->g->params, s->g->n_params},
        {"the discriminator's parameters", s->d->params, s->d->n_params},
        {"the generator's running averages", s->g->state, s->g->n_state},
        {"the discriminator's running averages", s->d->state, s->d->n_state},
        {"the generator's optimizer state", s->g_opt->m, s->g_opt->n},
        {"the generator's optimizer state", s->g_opt->v, s->g_opt->v ? s->g_opt->n : 0},
        {"the discriminator's optimizer state", s->d_opt->m, s->d_opt->n},
        {"the discriminator's optimizer state", s->d_opt->v, s->d_opt->v ? s->d_opt->n : 0},
    };
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
        if (parts[i].n && !mg_all_finite(parts[i].x, parts[i].n))
            return parts[i].name;
    return NULL;
}

int mg_checkpoint_write(const mg_checkpoint_state *t, const char *config_yaml, const char *path,
                        mg_error *err)
{
    mg_error what;
    const char *bad = not_finite(t);
    if (bad)
        return mg_fail(err, "%s: not written: NaN or Inf in %s", path, bad);
    write_ctx w = {t, config_yaml};
    /* Parameters and the optimizers' state: momentum for SGD, two moments for Adam. */
    const double states =
        t->c ? (double)t->c->n_params * (t->c_opt->spec.type == MG_OPTIM_ADAM ? 3 : 2)
             : (double)t->g->n_params * (t->g_opt->spec.type == MG_OPTIM_ADAM ? 3 : 2) +
                   (double)t->d->n_params * (t->d_opt->spec.type == MG_OPTIM_ADAM ? 3 : 2);
    if (mg_h5_write_new(path, fill_checkpoint, &w, states * sizeof(float), &what))
        return mg_fail(err, "%s: cannot write checkpoint: %s", path, what.msg);
    return 0;
}

/* ---- reading: every message is the whole line, "<path>: ..." ---- */

/* "64-bit floats", for "holds 64-bit floats, this build of mpigan uses 32-bit floats". */
static void values_str(char *buf, size_t n, const mg_h5_info *info)
{
    if (info->cls == H5T_FLOAT)
        snprintf(buf, n, "%zu-bit floats", 8 * info->size);
    else if (info->cls == H5T_INTEGER)
        snprintf(buf, n, "%zu-bit integers", 8 * info->size);
    else if (info->cls == H5T_STRING)
        snprintf(buf, n, "strings");
    else {
        char type[32];
        mg_h5_type_str(type, sizeof type, info);
        snprintf(buf, n, "%s values", type);
    }
}

/* A tensor the configuration expects: present, of its shape, of mg_real; read into buf. */
static int read_tensor(hid_t f, const char *path, const char *name, int rank,
                       const hsize_t *dims, mg_real *buf, mg_error *err)
{
    mg_h5_info info;
    if (mg_h5r_info(f, path, name, &info, err))
        return -1;
    int same = info.rank == rank;
    for (int i = 0; same && i < rank; i++)
        same = info.dims[i] == dims[i];
    if (!same) {
        char have[128], want[128];
        mg_h5_shape_str(have, sizeof have, info.rank, info.dims);
        mg_h5_shape_str(want, sizeof want, rank, dims);
        return mg_fail(err, "%s: %s has shape %s in the checkpoint, the configuration makes it %s",
                       path, name, have, want);
    }
    if (info.cls != H5T_FLOAT || info.size != sizeof(mg_real)) {
        char have[64];
        values_str(have, sizeof have, &info);
        return mg_fail(err, "%s: %s holds %s, this build of mpigan uses %zu-bit floats", path,
                       name, have, 8 * sizeof(mg_real));
    }
    if (mg_h5r_dataset(f, path, name, MG_H5_REAL_MEM, rank, dims, buf, err))
        return -1;
    /* A state that is not good never loads: no run resumes from it, no sample is drawn from it. */
    size_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= (size_t)dims[i];
    if (!mg_all_finite(buf, n))
        return mg_fail(err, "%s: %s holds NaN or Inf: not a state to continue from", path, name);
    return 0;
}

/* The layers a checkpoint holds for one network, in order. */
typedef struct {
    int n;
    char name[MG_MAX_LAYERS][256];
    char type[MG_MAX_LAYERS][32];
} layer_list;

/* Every member of /generator but "optimizer" is a layer group whose `index` attribute gives its
 * position; indices must be 0 .. n-1, each once. */
static int list_layers(hid_t f, const char *path, int which, layer_list *list, mg_error *err)
{
    char grp[OBJ_MAX];
    snprintf(grp, sizeof grp, "/%s", net_names[which]);
    memset(list, 0, sizeof *list);
    if (mg_h5r_require(f, path, grp, err))
        return -1;
    hid_t g = H5Gopen2(f, grp, H5P_DEFAULT);
    H5G_info_t gi;
    if (g < 0 || H5Gget_info(g, &gi) < 0) {
        mg_h5_close(g);
        return mg_fail(err, "%s: cannot read %s", path, grp);
    }
    int rc = 0, seen[MG_MAX_LAYERS] = {0};
    char seen_name[MG_MAX_LAYERS][256];
    for (hsize_t i = 0; i < gi.nlinks && rc == 0; i++) {
        char name[256], obj[OBJ_MAX + 256];
        ssize_t len = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name,
                                         H5P_DEFAULT);
        if (len < 0 || (size_t)len >= sizeof name) {
            rc = mg_fail(err, "%s: cannot read %s", path, grp);
            break;
        }
        if (strcmp(name, OPTIM_GROUP) == 0)
            continue;
        snprintf(obj, sizeof obj, "%s/%s", grp, name);
        int has = mg_h5r_has_attr(f, path, obj, "index", err);
        if (has < 0) {
            rc = -1;
            break;
        }
        for (char *p = name; *p; p++) /* the name goes into one-line messages */
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
        if (has == 0) {
            rc = mg_fail(err, "%s: %s/%s is not a layer (no index attribute)", path, grp, name);
            break;
        }
        int64_t index;
        if (mg_h5r_attr_i64(f, path, obj, "index", &index, err)) {
            rc = -1;
            break;
        }
        if (index < 0 || index >= MG_MAX_LAYERS) {
            rc = mg_fail(err, "%s: %s/%s has layer index %lld, not 0 to %d", path, grp, name,
                         (long long)index, MG_MAX_LAYERS - 1);
            break;
        }
        if (seen[index]) {
            rc = mg_fail(err, "%s: %s/%s and %s/%s both have layer index %lld", path, grp,
                         seen_name[index], grp, name, (long long)index);
            break;
        }
        seen[index] = 1;
        snprintf(seen_name[index], sizeof seen_name[index], "%s", name);
        if (mg_h5r_attr_str(f, path, obj, "type", list->type[index], sizeof list->type[index],
                            err)) {
            rc = -1;
            break;
        }
        list->n++;
    }
    if (H5Gclose(g) < 0 && rc == 0)
        rc = mg_fail(err, "%s: cannot read %s", path, grp);
    if (rc)
        return -1;
    for (int i = 0; i < MG_MAX_LAYERS; i++) {
        if (!seen[i])
            continue;
        if (i >= list->n)
            return mg_fail(err, "%s: %s/%s has layer index %d, but %s holds %d layers", path, grp,
                           seen_name[i], i, grp, list->n);
        snprintf(list->name[i], sizeof list->name[i], "%s", seen_name[i]);
    }
    return 0;
}

/* What a load reads for one network, before any of it goes into the trainer. */
typedef struct {
    mg_real *params; /* (n_params) */
    mg_real *state;  /* (n_state): batch norms' running averages */
    mg_real *m, *v;  /* (n_params); v for adam only */
    int64_t t;
} net_state;

static void net_state_free(net_state *s)
{
    free(s->params);
    free(s->state);
    free(s->m);
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int read_net(hid_t f, const char *path, int which, const mg_net *net, const mg_optim *opt,
                    net_state *s, mg_error *err)
{
    const char *nn = net_names[which];
    layer_list list;
    if (list_layers(f, path, which, &list, err))
        return -1;
    if (list.n != net->n_layers)
        return mg_fail(err, "%s: the configuration has %d %s layers, the checkpoint %d", path,
                       net->n_layers, nn, list.n);
    for (int l = 0; l < net->n_layers; l++) {
        const mg_layer_spec *sp = &net->layer[l].spec;
        if (strcmp(sp->name, list.name[l]) != 0)
            return mg_fail(err, "%s: %s layer %d is \"%s\" in the configuration, \"%s\" in the "
                                "checkpoint",
                           path, nn, l, sp->name, list.name[l]);
        if (strcmp(mg_layer_type_name(sp), list.type[l]) != 0)
            return mg_fail(err, "%s: %s layer %d (\"%s\") is %s in the configuration, %s in the "
                                "checkpoint",
                           path, nn, l, sp->name, mg_layer_type_name(sp), list.type[l]);
    }

    const size_t n = net->n_params;
    s->params = mg_xmalloc(n * sizeof(mg_real));
    s->state = mg_xmalloc((net->n_state + 1) * sizeof(mg_real));
    for (int l = 0; l < net->n_layers; l++) {
        const mg_layer *L = &net->layer[l];
        mg_tensor_info t[MG_MAX_LAYER_TENSORS];
        const int nt = mg_layer_tensors(net, l, t);
        for (int i = 0; i < nt; i++) {
            char obj[OBJ_MAX];
            hsize_t dims[5];
            const int rank = tensor_dims(&t[i], dims);
            snprintf(obj, sizeof obj, "/%s/%s/%s", nn, L->spec.name, t[i].name);
            if (read_tensor(f, path, obj, rank, dims, (t[i].in_state ? s->state : s->params) +
                                                          t[i].off, err))
                return -1;
        }
    }

    if (!opt)
        return 0; /* parameters only: sampling needs no optimizer state */
    char grp[GRP_MAX], obj[OBJ_MAX], type[32];
    snprintf(grp, sizeof grp, "/%s/" OPTIM_GROUP, nn);
    if (mg_h5r_attr_str(f, path, grp, "type", type, sizeof type, err))
        return -1;
    if (strcmp(type, optim_name(opt->spec.type)) != 0)
        return mg_fail(err, "%s: optimizer state for the %s is %s, the configuration says %s",
                       path, nn, type, optim_name(opt->spec.type));
    if (mg_h5r_attr_i64(f, path, grp, "t", &s->t, err))
        return -1;
    if (s->t < 0)
        return mg_fail(err, "%s: %s/t is %lld, a negative update count", path, grp,
                       (long long)s->t);
    const hsize_t dim = (hsize_t)n;
    s->m = mg_xmalloc(n * sizeof(mg_real));
    snprintf(obj, sizeof obj, "%s/m", grp);
    if (read_tensor(f, path, obj, 1, &dim, s->m, err))
        return -1;
    if (opt->v) {
        s->v = mg_xmalloc(n * sizeof(mg_real));
        snprintf(obj, sizeof obj, "%s/v", grp);
        if (read_tensor(f, path, obj, 1, &dim, s->v, err))
            return -1;
    }
    return 0;
}

static int read_counter(hid_t f, const char *path, const char *name, int64_t *v, mg_error *err)
{
    if (mg_h5r_attr_i64(f, path, "/", name, v, err))
        return -1;
    if (*v < 0)
        return mg_fail(err, "%s: %s is %lld, a negative count", path, name, (long long)*v);
    return 0;
}

/* What /metrics holds, or zeros for a checkpoint written before it existed. */
typedef struct {
    int64_t skipped;
    double elapsed_s;
    mg_metrics_window window;
} metrics_state;

static int read_metrics(hid_t f, const char *path, metrics_state *m, mg_error *err)
{
    memset(m, 0, sizeof *m);
    int there = mg_h5r_exists(f, path, METRICS_GROUP, err);
    if (there <= 0)
        return there;
    double *reals[] = {&m->elapsed_s, &m->window.d_loss, &m->window.g_loss, &m->window.d_real,
                       &m->window.d_fake};
    const char *const real_names[] = {"elapsed_s", "window_d_loss", "window_g_loss",
                                      "window_d_real", "window_d_fake"};
    if (mg_h5r_attr_i64(f, path, METRICS_GROUP, "skipped", &m->skipped, err) ||
        mg_h5r_attr_i64(f, path, METRICS_GROUP, "window_steps", &m->window.steps, err))
        return -1;
    if (m->skipped < 0 || m->window.steps < 0)
        return mg_fail(err, "%s: " METRICS_GROUP " holds a negative count", path);
    for (int i = 0; i < 5; i++) {
        if (mg_h5r_attr_f64(f, path, METRICS_GROUP, real_names[i], reals[i], err))
            return -1;
        if (!isfinite(*reals[i]))
            return mg_fail(err, "%s: " METRICS_GROUP " attribute %s is not finite", path,
                           real_names[i]);
    }
    return 0;
}

/* The root attributes kind and classes; a file of an mpigan before them holds an unconditional
 * GAN. */
static int read_kind(hid_t f, const char *path, char *kind, size_t n, int *classes,
                     mg_error *err)
{
    int has = mg_h5r_has_attr(f, path, "/", "kind", err);
    if (has < 0 || (has && mg_h5r_attr_str(f, path, "/", "kind", kind, n, err)))
        return -1;
    if (!has)
        snprintf(kind, n, MG_CHECKPOINT_GAN);
    if (strcmp(kind, MG_CHECKPOINT_GAN) != 0 && strcmp(kind, MG_CHECKPOINT_CLASSIFIER) != 0) {
        for (char *p = kind; *p; p++) /* into a one-line message */
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
        return mg_fail(err, "%s: kind is \"%s\", not " MG_CHECKPOINT_GAN " or "
                            MG_CHECKPOINT_CLASSIFIER, path, kind);
    }
    int64_t c = 0;
    if ((has = mg_h5r_has_attr(f, path, "/", "classes", err)) < 0 ||
        (has && mg_h5r_attr_i64(f, path, "/", "classes", &c, err)))
        return -1;
    if (c < 0 || c > MG_MAX_CLASSES)
        return mg_fail(err, "%s: classes is %lld, not 0 to %d", path, (long long)c,
                       MG_MAX_CLASSES);
    *classes = (int)c;
    return 0;
}

/* The file holds what the caller builds: a GAN conditioned on `classes` (0: unconditional), or a
 * classifier (of `classes` classes, when > 0). */
static int check_kind(hid_t f, const char *path, int classifier, int classes, mg_error *err)
{
    char kind[32];
    int have;
    if (read_kind(f, path, kind, sizeof kind, &have, err))
        return -1;
    if (classifier != (strcmp(kind, MG_CHECKPOINT_CLASSIFIER) == 0))
        return classifier ? mg_fail(err, "%s: holds a GAN (mpigan train), not a classifier", path)
                          : mg_fail(err, "%s: holds a classifier (mpigan classifier train), not a "
                                         "GAN",
                                    path);
    if (classifier) {
        if (classes > 0 && have != classes)
            return mg_fail(err, "%s: the classifier has %d classes, the configuration %d", path,
                           have, classes);
        return 0;
    }
    if (have == classes)
        return 0;
    if (!classes)
        return mg_fail(err, "%s: the checkpoint's GAN is conditional on %d classes, the "
                            "configuration's is not (conditional.enabled false)",
                       path, have);
    if (!have)
        return mg_fail(err, "%s: the checkpoint's GAN is unconditional, the configuration's is "
                            "conditional on %d classes",
                       path, classes);
    return mg_fail(err, "%s: the checkpoint's GAN is conditional on %d classes, the "
                        "configuration's on %d",
                   path, have, classes);
}

/* A classifier's checkpoint: the network, its optimizer and the counters. */
static int load_classifier(const mg_checkpoint_state *t, const char *path, mg_error *err)
{
    hid_t f;
    if (mg_h5_open(&f, path, 0, err))
        return -1;
    net_state c = {0};
    int64_t step = 0, minibatch = 0;
    int rc = mg_h5r_format(f, path, MG_CHECKPOINT_FORMAT, MG_CHECKPOINT_VERSION, "checkpoint", err);
    if (rc == 0)
        rc = check_kind(f, path, 1, t->classes, err);
    if (rc == 0)
        rc = read_counter(f, path, "step", &step, err);
    if (rc == 0)
        rc = read_counter(f, path, "minibatch", &minibatch, err);
    if (rc == 0)
        rc = read_net(f, path, NET_C, t->c, t->c_opt, &c, err);
    if (H5Fclose(f) < 0 && rc == 0)
        rc = mg_fail(err, "%s: cannot close", path);
    if (rc == 0) {
        memcpy(t->c->params, c.params, t->c->n_params * sizeof(mg_real));
        memcpy(t->c->state, c.state, t->c->n_state * sizeof(mg_real));
        memcpy(t->c_opt->m, c.m, t->c_opt->n * sizeof(mg_real));
        if (t->c_opt->v)
            memcpy(t->c_opt->v, c.v, t->c_opt->n * sizeof(mg_real));
        t->c_opt->t = c.t;
        *t->step = step;
        *t->minibatch = minibatch;
        if (t->skipped)
            *t->skipped = 0;
    }
    net_state_free(&c);
    return rc ? mg_file_one_line(err) : 0;
}

int mg_checkpoint_load(const mg_checkpoint_state *t, const char *path, mg_error *err)
{
    if (t->c)
        return load_classifier(t, path, err);
    hid_t f;
    if (mg_h5_open(&f, path, 0, err))
        return -1;
    net_state g = {0}, d = {0};
    int64_t step = 0, minibatch = 0;
    int rc = mg_h5r_format(f, path, MG_CHECKPOINT_FORMAT, MG_CHECKPOINT_VERSION, "checkpoint", err);
    if (rc == 0)
        rc = check_kind(f, path, 0, t->classes, err);
    if (rc == 0)
        rc = read_counter(f, path, "step", &step, err);
    if (rc == 0)
        rc = read_counter(f, path, "minibatch", &minibatch, err);
    if (rc == 0)
        rc = read_net(f, path, NET_G, t->g, t->g_opt, &g, err);
    if (rc == 0)
        rc = read_net(f, path, NET_D, t->d, t->d_opt, &d, err);
    metrics_state m;
    if (rc == 0)
        rc = read_metrics(f, path, &m, err);
    if (H5Fclose(f) < 0 && rc == 0)
        rc = mg_fail(err, "%s: cannot close", path);
    if (rc == 0) {
        /* Everything was read: only now do the objects change, so a failed load leaves them as
         * they were. */
        memcpy(t->g->params, g.params, t->g->n_params * sizeof(mg_real));
        memcpy(t->d->params, d.params, t->d->n_params * sizeof(mg_real));
        memcpy(t->g->state, g.state, t->g->n_state * sizeof(mg_real));
        memcpy(t->d->state, d.state, t->d->n_state * sizeof(mg_real));
        memcpy(t->g_opt->m, g.m, t->g_opt->n * sizeof(mg_real));
        memcpy(t->d_opt->m, d.m, t->d_opt->n * sizeof(mg_real));
        if (t->g_opt->v)
            memcpy(t->g_opt->v, g.v, t->g_opt->n * sizeof(mg_real));
        if (t->d_opt->v)
            memcpy(t->d_opt->v, d.v, t->d_opt->n * sizeof(mg_real));
        t->g_opt->t = g.t;
        t->d_opt->t = d.t;
        *t->step = step;
        *t->minibatch = minibatch;
        *t->skipped = m.skipped;
        *t->elapsed_s = m.elapsed_s;
        *t->window = m.window;
    }
    net_state_free(&g);
    net_state_free(&d);
    return rc ? mg_file_one_line(err) : 0; /* the file's name, shown on one line */
}

/* The parameters (and running averages) of network `which` alone, into net. */
static int load_params(mg_net *net, int which, int classes, const char *path, mg_error *err)
{
    hid_t f;
    if (mg_h5_open(&f, path, 0, err))
        return -1;
    net_state s = {0};
    int rc = mg_h5r_format(f, path, MG_CHECKPOINT_FORMAT, MG_CHECKPOINT_VERSION, "checkpoint", err);
    if (rc == 0)
        rc = check_kind(f, path, which == NET_C, classes, err);
    if (rc == 0)
        rc = read_net(f, path, which, net, NULL, &s, err);
    if (H5Fclose(f) < 0 && rc == 0)
        rc = mg_fail(err, "%s: cannot close", path);
    if (rc == 0) {
        memcpy(net->params, s.params, net->n_params * sizeof(mg_real));
        memcpy(net->state, s.state, net->n_state * sizeof(mg_real)); /* batch norms' averages */
    }
    net_state_free(&s);
    return rc ? mg_file_one_line(err) : 0;
}

int mg_checkpoint_load_generator(mg_net *g, int classes, const char *path, mg_error *err)
{
    return load_params(g, NET_G, classes, path, err);
}

int mg_checkpoint_load_classifier(mg_net *c, const char *path, mg_error *err)
{
    return load_params(c, NET_C, 0, path, err);
}

/* The root attributes and the configuration text of an open checkpoint. */
static int read_info(hid_t f, const char *path, mg_checkpoint_info *info, mg_error *err)
{
    int64_t version, ranks;
    memset(info, 0, sizeof *info);
    if (mg_h5r_format(f, path, MG_CHECKPOINT_FORMAT, MG_CHECKPOINT_VERSION, "checkpoint", err) ||
        mg_h5r_attr_i64(f, path, "/", "format_version", &version, err) ||
        mg_h5r_attr_str(f, path, "/", "mpigan_version", info->mpigan_version,
                        sizeof info->mpigan_version, err) ||
        read_counter(f, path, "step", &info->step, err) ||
        read_counter(f, path, "minibatch", &info->minibatch, err) ||
        mg_h5r_attr_f64(f, path, "/", "epoch", &info->epoch, err) ||
        mg_h5r_attr_u64(f, path, "/", "seed", &info->seed, err) ||
        mg_h5r_attr_i64(f, path, "/", "ranks", &ranks, err))
        return -1;
    if (ranks < 1 || ranks > INT32_MAX)
        return mg_fail(err, "%s: ranks is %lld, not a rank count", path, (long long)ranks);
    const char *const shape_names[3] = {"channels", "height", "width"};
    int *shape[3] = {&info->channels, &info->height, &info->width};
    for (int i = 0; i < 3; i++) {
        int64_t v;
        if (mg_h5r_attr_i64(f, path, "/", shape_names[i], &v, err))
            return -1;
        if (v < 1 || v > (1 << 24))
            return mg_fail(err, "%s: %s is %lld, not an image size", path, shape_names[i],
                           (long long)v);
        *shape[i] = (int)v;
    }
    info->format_version = (int)version;
    info->ranks = (int)ranks;
    if (read_kind(f, path, info->kind, sizeof info->kind, &info->classes, err))
        return -1;
    if (mg_h5r_text(f, path, "/config", &info->config_yaml, err))
        return -1;
    return 0;
}

int mg_checkpoint_read_info(mg_checkpoint_info *info, const char *path, mg_error *err)
{
    memset(info, 0, sizeof *info);
    hid_t f;
    if (mg_h5_open(&f, path, 0, err))
        return -1;
    int rc = read_info(f, path, info, err);
    if (H5Fclose(f) < 0 && rc == 0)
        rc = mg_fail(err, "%s: cannot close", path);
    if (rc)
        mg_checkpoint_info_free(info);
    return rc ? mg_file_one_line(err) : 0;
}

void mg_checkpoint_info_free(mg_checkpoint_info *info)
{
    free(info->config_yaml);
    info->config_yaml = NULL;
}

/* ---- describe ---- */

/* One tensor line, "  h0/W  float32 (100, 1200)"; adds its element count to *count. */
static int describe_tensor(FILE *out, hid_t f, const char *path, const char *obj,
                           const char *label, uint64_t *count, mg_error *err)
{
    mg_h5_info info;
    if (mg_h5r_info(f, path, obj, &info, err))
        return -1;
    char type[32], shape[128];
    mg_h5_type_str(type, sizeof type, &info);
    mg_h5_shape_str(shape, sizeof shape, info.rank, info.dims);
    uint64_t n = 1;
    for (int i = 0; i < info.rank; i++)
        n *= info.dims[i];
    *count += n;
    fprintf(out, "  %s  %s %s\n", label, type, shape);
    return 0;
}

static int describe_net(FILE *out, hid_t f, const char *path, int which, mg_error *err)
{
    const char *nn = net_names[which];
    layer_list list;
    if (list_layers(f, path, which, &list, err))
        return -1;
    /* Tensors first into a buffer: the header line carries their total. */
    char *body = NULL;
    size_t body_n = 0;
    FILE *b = open_memstream(&body, &body_n);
    if (!b)
        return mg_fail(err, "out of memory describing %s", path);
    uint64_t count = 0;
    int rc = 0;
    for (int l = 0; l < list.n && rc == 0; l++) {
        char obj[OBJ_MAX + 256], label[256 + 8];
        int64_t units = 0, pieces = 0;
        snprintf(obj, sizeof obj, "/%s/%s", nn, list.name[l]);
        rc = mg_h5r_attr_i64(f, path, obj, "units", &units, err) ||
             mg_h5r_attr_i64(f, path, obj, "pieces", &pieces, err);
        if (rc)
            break;
        const int conv = strstr(list.type[l], "conv") != NULL; /* conv, deconv, maxout_conv */
        if (strcmp(list.type[l], "maxout") == 0 || strcmp(list.type[l], "maxout_conv") == 0)
            fprintf(b, "  %s: %s, %lld %s of %lld pieces\n", list.name[l], list.type[l],
                    (long long)units, conv ? "channels" : "units", (long long)pieces);
        else if (strcmp(list.type[l], "reshape") == 0 || strcmp(list.type[l], "batchnorm") == 0)
            fprintf(b, "  %s: %s, %lld channel%s\n", list.name[l], list.type[l],
                    (long long)units, units == 1 ? "" : "s");
        else
            fprintf(b, "  %s: %s, %lld %s%s\n", list.name[l], list.type[l], (long long)units,
                    conv ? "channel" : "unit", units == 1 ? "" : "s");
        /* Parameters count; a batch norm's running averages are listed, not counted. */
        static const char *const names[] = {"W", "b", "gamma", "beta", "running_mean",
                                            "running_var"};
        for (int k = 0; k < 6 && rc == 0; k++) {
            snprintf(obj, sizeof obj, "/%s/%s/%s", nn, list.name[l], names[k]);
            htri_t there = H5Lexists(f, obj, H5P_DEFAULT);
            if (there < 0) {
                rc = mg_fail(err, "%s: cannot read %s", path, obj);
                break;
            }
            if (!there)
                continue;
            uint64_t ignored = 0;
            snprintf(label, sizeof label, "%s/%s", list.name[l], names[k]);
            rc = describe_tensor(b, f, path, obj, label, k < 4 ? &count : &ignored, err);
        }
    }
    char grp[GRP_MAX], obj[OBJ_MAX], type[32];
    int64_t t = 0;
    snprintf(grp, sizeof grp, "/%s/" OPTIM_GROUP, nn);
    if (rc == 0)
        rc = mg_h5r_attr_str(f, path, grp, "type", type, sizeof type, err) ||
             mg_h5r_attr_i64(f, path, grp, "t", &t, err);
    uint64_t state = 0;
    for (int k = 0; k < 2 && rc == 0; k++) {
        const char *name = k == 0 ? "m" : "v";
        snprintf(obj, sizeof obj, "%s/%s", grp, name);
        htri_t there = H5Lexists(f, obj, H5P_DEFAULT); /* v exists for adam only */
        if (there < 0)
            rc = mg_fail(err, "%s: cannot read %s", path, obj);
        else if (there > 0) {
            char label[32];
            snprintf(label, sizeof label, OPTIM_GROUP "/%s", name);
            rc = describe_tensor(b, f, path, obj, label, &state, err);
        }
    }
    if (fclose(b) != 0 && rc == 0)
        rc = mg_fail(err, "out of memory describing %s", path);
    if (rc == 0)
        fprintf(out, "%s: %d layers, %llu parameters, optimizer %s after %lld updates\n%s", nn,
                list.n, (unsigned long long)count, type, (long long)t, body);
    free(body);
    return rc ? -1 : 0;
}

static int describe(FILE *out, hid_t f, const char *path, mg_error *err)
{
    mg_checkpoint_info info;
    int64_t batch;
    char real[16], created[64];
    if (read_info(f, path, &info, err))
        return -1;
    int rc = 0;
    if (mg_h5r_attr_i64(f, path, "/", "batch_size", &batch, err) ||
        mg_h5r_attr_str(f, path, "/", "real", real, sizeof real, err) ||
        mg_h5r_attr_str(f, path, "/", "created", created, sizeof created, err))
        rc = -1;
    if (rc == 0) {
        int lines = 0;
        for (const char *p = info.config_yaml; *p; p++)
            lines += *p == '\n';
        if (info.config_yaml[0] && info.config_yaml[strlen(info.config_yaml) - 1] != '\n')
            lines++;
        const int classifier = strcmp(info.kind, MG_CHECKPOINT_CLASSIFIER) == 0;
        fprintf(out,
                "file            %s\n"
                "kind            %s\n"
                "format version  %d\n"
                "mpigan version  %s (%s)\n"
                "step            %lld\n"
                "epoch           %.4f\n"
                "minibatch       %lld\n"
                "seed            %llu\n"
                "ranks           %d\n"
                "batch           %lld\n"
                "created         %s\n",
                path, classifier ? "classifier" : info.classes ? "conditional GAN" : "GAN",
                info.format_version, info.mpigan_version, real,
                (long long)info.step, info.epoch, (long long)info.minibatch,
                (unsigned long long)info.seed, info.ranks, (long long)batch, created);
        if (info.classes)
            fprintf(out, "classes         %d\n", info.classes);
        if (classifier) {
            rc = describe_net(out, f, path, NET_C, err);
        } else {
            rc = describe_net(out, f, path, NET_G, err);
            if (rc == 0)
                rc = describe_net(out, f, path, NET_D, err);
        }
        if (rc == 0)
            fprintf(out, "config: %d lines of YAML (h5dump -d /config %s shows it)\n", lines,
                    path);
    }
    mg_checkpoint_info_free(&info);
    return rc;
}

int mg_checkpoint_describe(FILE *out, const char *path, mg_error *err)
{
    hid_t f;
    if (mg_h5_open(&f, path, 0, err))
        return -1;
    /* Into memory first, so that a bad file prints its error line and nothing else. */
    char *text = NULL;
    size_t n = 0;
    FILE *mem = open_memstream(&text, &n);
    int rc = mem ? describe(mem, f, path, err) : mg_fail(err, "out of memory describing %s", path);
    if (mem && fclose(mem) != 0 && rc == 0)
        rc = mg_fail(err, "out of memory describing %s", path);
    if (H5Fclose(f) < 0 && rc == 0)
        rc = mg_fail(err, "%s: cannot close", path);
    if (rc == 0 && (fwrite(text, 1, n, out) != n || fflush(out) != 0))
        rc = mg_fail(err, "cannot print the description of %s: %s", path, strerror(errno));
    free(text);
    return rc ? mg_file_one_line(err) : 0;
}

/* ---- run directories ---- */

/* Step of a file named exactly ckpt-<digits>.h5, or -1. */
static long long ckpt_step(const char *name)
{
    if (strncmp(name, "ckpt-", 5) != 0)
        return -1;
    const char *p = name + 5;
    long long step = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        if (digits >= 18)
            return -1;
        step = step * 10 + (*p - '0');
    }
    return digits > 0 && strcmp(p, ".h5") == 0 ? step : -1;
}

typedef struct {
    long long step;
    char name[256];
} ckpt_file;

/* The checkpoints of dir, newest (highest step) first; *files malloc'd. */
static int list_ckpts(const char *dir, ckpt_file **files, int *n, mg_error *err)
{
    *files = NULL;
    *n = 0;
    DIR *dp = opendir(dir);
    if (!dp)
        return mg_fail(err, "%s: cannot read directory: %s", dir, strerror(errno));
    int cap = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(dp)) != NULL) {
        long long step = ckpt_step(e->d_name);
        if (step < 0 || strlen(e->d_name) >= sizeof(*files)->name)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            ckpt_file *grown = realloc(*files, (size_t)cap * sizeof **files);
            if (!grown) {
                closedir(dp);
                free(*files);
                *files = NULL;
                return mg_fail(err, "%s: out of memory listing checkpoints", dir);
            }
            *files = grown;
        }
        (*files)[*n].step = step;
        snprintf((*files)[*n].name, sizeof(*files)->name, "%s", e->d_name);
        (*n)++;
    }
    int e_read = errno;
    closedir(dp);
    if (e_read) {
        free(*files);
        *files = NULL;
        return mg_fail(err, "%s: cannot read directory: %s", dir, strerror(e_read));
    }
    /* Insertion sort: a run directory holds a handful. Ties (ckpt-10.h5, ckpt-0010.h5) by name. */
    ckpt_file *c = *files;
    for (int i = 1; i < *n; i++) {
        ckpt_file x = c[i];
        int j = i;
        while (j > 0 && (c[j - 1].step < x.step ||
                         (c[j - 1].step == x.step && strcmp(c[j - 1].name, x.name) < 0))) {
            c[j] = c[j - 1];
            j--;
        }
        c[j] = x;
    }
    return 0;
}

long long mg_checkpoint_step_of(const char *path)
{
    const char *base = strrchr(path, '/');
    return ckpt_step(base ? base + 1 : path);
}

int mg_checkpoint_find_latest(char *path, size_t n, const char *dir, mg_error *err)
{
    ckpt_file *files;
    int count;
    if (list_ckpts(dir, &files, &count, err))
        return -1;
    if (count == 0) {
        free(files);
        return mg_fail(err, "%s: no checkpoint (ckpt-*.h5) in this directory", dir);
    }
    int len = snprintf(path, n, "%s/%s", dir, files[0].name);
    int rc = len < 0 || (size_t)len >= n ? mg_fail(err, "%s/%s: path too long", dir, files[0].name)
                                         : 0;
    free(files);
    return rc;
}

int mg_checkpoint_save(const mg_checkpoint_state *t, const char *config_yaml, const char *dir,
                       int keep, char *path_out, size_t path_n, mg_error *err)
{
    if (keep < 1)
        return mg_fail(err, "%s: cannot keep %d checkpoints: keep at least 1", dir, keep);
    char name[64], path[MG_PATH_MAX], link_tmp[MG_PATH_MAX + 32], link[MG_PATH_MAX];
    snprintf(name, sizeof name, "ckpt-%08lld.h5", (long long)*t->step);
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path ||
        snprintf(link, sizeof link, "%s/latest.h5", dir) >= (int)sizeof link)
        return mg_fail(err, "%s/%s: path too long", dir, name);
    if (mg_checkpoint_write(t, config_yaml, path, err))
        return -1;
    if (path_out && snprintf(path_out, path_n, "%s", path) >= (int)path_n)
        return mg_fail(err, "%s: path too long", path);

    /* latest.h5 -> ckpt-<step>.h5, relative so the run directory can move. A new link under a
     * fresh temporary name (symlink() creates it exclusively), renamed over the old one: there
     * is always a latest.h5, and it is never a file someone else put there. */
    mg_error what;
    if (mg_file_temp_name(link_tmp, sizeof link_tmp, link, &what))
        return mg_fail(err, "%s: cannot point it at %s: %s", link, name, what.msg);
    if (symlink(name, link_tmp) != 0 || rename(link_tmp, link) != 0) {
        int e = errno;
        unlink(link_tmp);
        return mg_fail(err, "%s: cannot point it at %s: %s", link, name, strerror(e));
    }
    mg_file_sync_dir(link);

    ckpt_file *files;
    int count;
    if (list_ckpts(dir, &files, &count, err))
        return -1;
    int rc = 0;
    for (int i = keep; i < count && rc == 0; i++) {
        /* Never the file just written, even when an older run left higher steps here. */
        if (strcmp(files[i].name, name) == 0)
            continue;
        char old[MG_PATH_MAX];
        if (snprintf(old, sizeof old, "%s/%s", dir, files[i].name) >= (int)sizeof old)
            rc = mg_fail(err, "%s/%s: path too long", dir, files[i].name);
        else if (unlink(old) != 0 && errno != ENOENT)
            rc = mg_fail(err, "%s: cannot remove old checkpoint: %s", old, strerror(errno));
    }
    free(files);
    return rc;
}

int mg_checkpoint_find_current(char *path, size_t n, const char *dir, mg_error *err)
{
    char link[MG_PATH_MAX + 16], target[256];
    if (snprintf(link, sizeof link, "%s/latest.h5", dir) >= (int)sizeof link)
        return mg_fail(err, "%s: path too long", dir);
    /* Only a link to a checkpoint's own name in dir counts: latest.h5 is mpigan's. */
    ssize_t len = readlink(link, target, sizeof target - 1);
    if (len > 0) {
        target[len] = '\0';
        struct stat st;
        int lenp = snprintf(path, n, "%s/%s", dir, target);
        if (ckpt_step(target) >= 0 && lenp > 0 && (size_t)lenp < n && lstat(path, &st) == 0 &&
            S_ISREG(st.st_mode))
            return 0;
    }
    return mg_checkpoint_find_latest(path, n, dir, err);
}

int mg_checkpoint_resolve(char *path, size_t n, const char *spec, const char *dir, mg_error *err)
{
    struct stat st;
    const char *in = !strcmp(spec, "latest")                          ? (dir ? dir : ".")
                     : stat(spec, &st) == 0 && S_ISDIR(st.st_mode) ? spec
                                                                    : NULL;
    if (in)
        return mg_checkpoint_find_current(path, n, in, err) ? mg_file_one_line(err) : 0;
    if (snprintf(path, n, "%s", spec) >= (int)n) {
        mg_fail(err, "%s: path too long", spec);
        return mg_file_one_line(err);
    }
    return 0;
}
