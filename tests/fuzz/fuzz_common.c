#include "fuzz.h"

#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char scratch[4096];

static void remove_scratch(void)
{
    if (scratch[0])
        unlink(scratch);
}

const char *fuzz_file(const uint8_t *data, size_t size, const char *suffix)
{
    if (!scratch[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(scratch, sizeof scratch, "%s/mpigan-fuzz-%ld%s", tmp && *tmp ? tmp : "/tmp",
                 (long)getpid(), suffix);
        atexit(remove_scratch);
    }
    /* A new file each time (unlink first): HDF5 and matio must never see a file they may still
     * hold open under the same inode with other contents. */
    unlink(scratch);
    int fd = open(scratch, O_WRONLY | O_CREAT | O_EXCL | O_TRUNC, 0600);
    if (fd < 0) {
        perror(scratch);
        abort();
    }
    for (size_t done = 0; done < size;) {
        ssize_t w = write(fd, data + done, size - done);
        if (w <= 0) {
            perror(scratch);
            abort();
        }
        done += (size_t)w;
    }
    close(fd);
    return scratch;
}

void fuzz_check_error(int rc, const mg_error *err, const char *name)
{
    if (rc == 0)
        return;
    const char *msg = err->msg;
    size_t n = strlen(name);
    if (rc != -1 || !msg[0] || strchr(msg, '\n') || strncmp(msg, name, n) != 0 ||
        (msg[n] != ':' && msg[n] != '\0')) {
        fprintf(stderr, "fuzz: bad failure: rc %d, message \"%s\" (must be one line starting "
                        "with \"%s:\")\n", rc, msg, name);
        abort();
    }
}

void fuzz_check_dataset(const mg_dataset *ds, int bytes)
{
    if (ds->n < 0 || ds->channels < 1 || ds->height < 1 || ds->width < 1 || !ds->x ||
        ds->dim != (size_t)ds->channels * (size_t)ds->height * (size_t)ds->width) {
        fprintf(stderr, "fuzz: inconsistent data set: n %d, shape (%d, %d, %d), dim %zu, x %p\n",
                ds->n, ds->channels, ds->height, ds->width, ds->dim, (void *)ds->x);
        abort();
    }
    for (size_t i = 0; i < (size_t)ds->n * ds->dim; i++) {
        double v = ds->x[i];
        if (!isfinite(v) || (bytes && (v < 0 || v > 1))) {
            fprintf(stderr, "fuzz: value %zu is %g\n", i, v);
            abort();
        }
    }
}

void fuzz_check_hdf5_closed(void)
{
    ssize_t open = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (open != 0) {
        fprintf(stderr, "fuzz: %zd HDF5 objects left open\n", open);
        abort();
    }
}

void fuzz_hdf5_init(void)
{
    if (H5set_free_list_limits(0, 0, 0, 0, 0, 0) < 0)
        abort();
}
