/* Sample sets: snapshots appended to one file, read back with the plain HDF5 API as a user's
 * h5py script would; `mpigan sample` files; every refusal with its exact message. */
#define _GNU_SOURCE
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mpigan/sampleset.h"
#include "testlib.h"

enum { N = 6, C = 1, H = 4, W = 5, NZ = 3, PIX = N * C * H * W };

static const mg_image_shape shape = {.n = N, .channels = C, .height = H, .width = W};

/* Snapshot s: distinct values in [0, 1], not all exactly representable in float32 when mg_real
 * is double (so the conversion is exercised). */
static void fill_snapshot(mg_real *x, int s)
{
    for (int i = 0; i < PIX; i++)
        x[i] = (mg_real)fmod(0.1 * s + (double)i / PIX / 3, 1.0);
}

static void fill_noise(mg_real *z, double shift)
{
    for (int i = 0; i < N * NZ; i++)
        z[i] = (mg_real)(sin(i + shift));
}

static void assert_no_open_hdf5(void)
{
    ssize_t open = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (open != 0)
        fprintf(stderr, "\n  %zd HDF5 objects left open\n", open);
    CU_ASSERT_EQUAL(open, 0);
}

/* Shape of a dataset, and its maximum shape. */
static int dataset_shape(hid_t f, const char *name, hsize_t *dims, hsize_t *maxdims)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t s = d >= 0 ? H5Dget_space(d) : -1;
    int rank = s >= 0 ? H5Sget_simple_extent_dims(s, dims, maxdims) : -1;
    CU_ASSERT_FATAL(rank >= 0 && H5Sclose(s) >= 0 && H5Dclose(d) >= 0);
    return rank;
}

static void read_floats(hid_t f, const char *name, float *buf)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    CU_ASSERT_FATAL(d >= 0 &&
                    H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    CU_ASSERT_FATAL(H5Dclose(d) >= 0);
}

/* A fixed-length string attribute of the root. */
static void read_root_string(hid_t f, const char *name, char *buf, size_t n)
{
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    hid_t t = a >= 0 ? H5Aget_type(a) : -1;
    CU_ASSERT_FATAL(t >= 0 && H5Tis_variable_str(t) == 0 && H5Tget_size(t) < n);
    memset(buf, 0, n);
    CU_ASSERT_FATAL(H5Aread(a, t, buf) >= 0);
    CU_ASSERT_FATAL(H5Tclose(t) >= 0 && H5Aclose(a) >= 0);
}

static long long read_root_int(hid_t f, const char *name)
{
    long long v = -1;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    CU_ASSERT_FATAL(a >= 0 && H5Aread(a, H5T_NATIVE_LLONG, &v) >= 0 && H5Aclose(a) >= 0);
    return v;
}

static void assert_float32(const float *got, const mg_real *want, int n)
{
    int same = 1;
    for (int i = 0; i < n; i++)
        same &= got[i] == (float)want[i];
    CU_ASSERT(same);
}

static void test_append_and_read_back(void)
{
    const char *path = mg_test_path("samples.h5");
    mg_real x[3][PIX], z[N * NZ];
    mg_error err;
    fill_noise(z, 0);
    for (int s = 0; s < 3; s++) {
        fill_snapshot(x[s], s);
        int rc = mg_sampleset_append(path, x[s], shape, z, NZ, 100 * (s + 1), &err);
        if (rc)
            fprintf(stderr, "append: %s\n", err.msg);
        CU_ASSERT_FATAL(rc == 0);
    }
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CU_ASSERT(access(tmp, F_OK) != 0);

    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    char s[64];
    read_root_string(f, "format", s, sizeof s);
    CU_ASSERT_STRING_EQUAL(s, "mpigan-samples");
    CU_ASSERT_EQUAL(read_root_int(f, "format_version"), 1);

    hsize_t dims[5], maxdims[5];
    CU_ASSERT_EQUAL_FATAL(dataset_shape(f, "/samples", dims, maxdims), 5);
    const hsize_t want[5] = {3, N, C, H, W};
    CU_ASSERT(memcmp(dims, want, sizeof want) == 0);
    CU_ASSERT(maxdims[0] == H5S_UNLIMITED && memcmp(maxdims + 1, want + 1, 4 * sizeof *want) == 0);
    hid_t d = H5Dopen2(f, "/samples", H5P_DEFAULT), dcpl = H5Dget_create_plist(d);
    hsize_t chunk[5];
    CU_ASSERT_FATAL(H5Pget_chunk(dcpl, 5, chunk) == 5);
    const hsize_t one_snapshot[5] = {1, N, C, H, W};
    CU_ASSERT(memcmp(chunk, one_snapshot, sizeof chunk) == 0);
    hid_t type = H5Dget_type(d);
    CU_ASSERT(H5Tequal(type, H5T_IEEE_F32LE) > 0);
    CU_ASSERT_FATAL(H5Tclose(type) >= 0 && H5Pclose(dcpl) >= 0 && H5Dclose(d) >= 0);

    float got[3 * PIX];
    read_floats(f, "/samples", got);
    for (int k = 0; k < 3; k++)
        assert_float32(got + k * PIX, x[k], PIX);

    CU_ASSERT_EQUAL(dataset_shape(f, "/steps", dims, maxdims), 1);
    CU_ASSERT(dims[0] == 3 && maxdims[0] == H5S_UNLIMITED);
    long long steps[3];
    d = H5Dopen2(f, "/steps", H5P_DEFAULT);
    CU_ASSERT_FATAL(H5Dread(d, H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, steps) >= 0);
    CU_ASSERT_FATAL(H5Dclose(d) >= 0);
    CU_ASSERT(steps[0] == 100 && steps[1] == 200 && steps[2] == 300);

    CU_ASSERT_EQUAL(dataset_shape(f, "/z", dims, maxdims), 2);
    CU_ASSERT(dims[0] == N && dims[1] == NZ);
    float zf[N * NZ];
    read_floats(f, "/z", zf);
    assert_float32(zf, z, N * NZ);
    CU_ASSERT_FATAL(H5Fclose(f) >= 0);

    if (access("/usr/bin/h5dump", X_OK) == 0) {
        char cmd[4500];
        snprintf(cmd, sizeof cmd, "/usr/bin/h5dump -H '%s' > /dev/null", path);
        CU_ASSERT(system(cmd) == 0);
    } else {
        printf("\n  note: /usr/bin/h5dump not installed (apt-get install hdf5-tools): skipped");
    }
    assert_no_open_hdf5();
}

/* Each refusal leaves the file as it was: still 1 snapshot. */
static void assert_snapshots(const char *path, hsize_t n)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hsize_t dims[5], maxdims[5];
    CU_ASSERT_FATAL(f >= 0);
    CU_ASSERT(dataset_shape(f, "/samples", dims, maxdims) == 5 && dims[0] == n);
    CU_ASSERT(dataset_shape(f, "/steps", dims, maxdims) == 1 && dims[0] == n);
    CU_ASSERT_FATAL(H5Fclose(f) >= 0);
}

static void expect(int rc, const mg_error *err, const char *want)
{
    CU_ASSERT(rc == -1);
    if (strcmp(err->msg, want) != 0)
        fprintf(stderr, "\n  got  %s\n  want %s\n", err->msg, want);
    CU_ASSERT_STRING_EQUAL(err->msg, want);
}

static void test_append_errors(void)
{
    const char *path = mg_test_path("refusals.h5");
    mg_real x[PIX], z[N * NZ], z2[N * NZ];
    mg_error err;
    char want[9000];
    fill_snapshot(x, 0);
    fill_noise(z, 0);
    fill_noise(z2, 0.5);
    CU_ASSERT_FATAL(mg_sampleset_append(path, x, shape, z, NZ, 10, &err) == 0);

    mg_image_shape other = shape;
    other.height = W;
    other.width = H;
    snprintf(want, sizeof want,
             "%s: holds samples of shape (6, 1, 4, 5), this run makes (6, 1, 5, 4)", path);
    expect(mg_sampleset_append(path, x, other, z, NZ, 20, &err), &err, want);

    other = shape;
    other.n = 3;
    snprintf(want, sizeof want,
             "%s: holds samples of shape (6, 1, 4, 5), this run makes (3, 1, 4, 5)", path);
    expect(mg_sampleset_append(path, x, other, z, NZ, 20, &err), &err, want);

    snprintf(want, sizeof want, "%s: holds noise /z of shape (6, 3), this run draws (6, 2)", path);
    expect(mg_sampleset_append(path, x, shape, z, 2, 20, &err), &err, want);

    snprintf(want, sizeof want,
             "%s: holds samples of other noise /z than this run's (another run?)", path);
    expect(mg_sampleset_append(path, x, shape, z2, NZ, 20, &err), &err, want);
    assert_snapshots(path, 1);

    const char *text = mg_test_write_file("samples.txt", "not HDF5\n", 9);
    snprintf(want, sizeof want, "%s: not an HDF5 file, or truncated", text);
    expect(mg_sampleset_append(text, x, shape, z, NZ, 20, &err), &err, want);

    /* A file of `mpigan sample` is not a snapshot file. */
    const char *single = mg_test_path("single.h5");
    CU_ASSERT_FATAL(mg_sampleset_write(single, x, shape, z, NZ, "ckpt.h5", 5, &err) == 0);
    snprintf(want, sizeof want,
             "%s: /samples has shape (6, 1, 4, 5), not that of snapshots (snapshots, 6, 1, 4, 5)",
             single);
    expect(mg_sampleset_append(single, x, shape, z, NZ, 20, &err), &err, want);

    /* Another kind of HDF5 file. */
    const char *other_h5 = mg_test_path("other.h5");
    hid_t f = H5Fcreate(other_h5, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0 && H5Fclose(f) >= 0);
    snprintf(want, sizeof want, "%s: not an mpigan sample file (no format attribute)", other_h5);
    expect(mg_sampleset_append(other_h5, x, shape, z, NZ, 20, &err), &err, want);

    const char *missing_dir = mg_test_path("no-dir/samples.h5");
    snprintf(want, sizeof want, "%s: cannot append samples: No such file or directory",
             missing_dir);
    expect(mg_sampleset_append(missing_dir, x, shape, z, NZ, 20, &err), &err, want);

    mg_image_shape empty = shape;
    empty.n = 0;
    snprintf(want, sizeof want, "%s: cannot append samples: empty samples or noise", path);
    expect(mg_sampleset_append(path, x, empty, z, NZ, 20, &err), &err, want);

    /* After all that, appending still works. */
    CU_ASSERT(mg_sampleset_append(path, x, shape, z, NZ, 20, &err) == 0);
    assert_snapshots(path, 2);
    assert_no_open_hdf5();
}

static void read_labels(hid_t f, int32_t *buf)
{
    hid_t d = H5Dopen2(f, "/labels", H5P_DEFAULT);
    CU_ASSERT_FATAL(d >= 0 &&
                    H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    CU_ASSERT_FATAL(H5Dclose(d) >= 0);
}

/* A conditional G's samples carry their labels: /labels (n) int32, the same in every snapshot;
 * a run of other labels, or of none, does not append to them. */
static void test_labels(void)
{
    const char *path = mg_test_path("labelled.h5");
    mg_real x[PIX], z[N * NZ];
    const int32_t labels[N] = {0, 1, 2, 0, 1, 2}, other[N] = {0, 1, 2, 0, 1, 1};
    mg_error err;
    char want[9000];
    fill_snapshot(x, 0);
    fill_noise(z, 0);
    CU_ASSERT_FATAL(mg_sampleset_append_labeled(path, x, shape, z, NZ, labels, 10, &err) == 0);
    CU_ASSERT_FATAL(mg_sampleset_append_labeled(path, x, shape, z, NZ, labels, 20, &err) == 0);
    assert_snapshots(path, 2);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    hsize_t dims[1], maxdims[1];
    CU_ASSERT_EQUAL(dataset_shape(f, "/labels", dims, maxdims), 1);
    CU_ASSERT_EQUAL(dims[0], N);
    int32_t back[N];
    read_labels(f, back);
    CU_ASSERT_EQUAL(memcmp(back, labels, sizeof back), 0);
    CU_ASSERT_FATAL(H5Fclose(f) >= 0);
    snprintf(want, sizeof want,
             "%s: holds samples of other labels /labels than this run's (another run?)", path);
    expect(mg_sampleset_append_labeled(path, x, shape, z, NZ, other, 30, &err), &err, want);
    snprintf(want, sizeof want, "%s: holds samples with labels, this run's G is unconditional",
             path);
    expect(mg_sampleset_append(path, x, shape, z, NZ, 30, &err), &err, want);
    const char *plain = mg_test_path("plain.h5");
    CU_ASSERT_FATAL(mg_sampleset_append(plain, x, shape, z, NZ, 10, &err) == 0);
    snprintf(want, sizeof want, "%s: holds samples without labels, this run's G is conditional",
             plain);
    expect(mg_sampleset_append_labeled(plain, x, shape, z, NZ, labels, 20, &err), &err, want);
    assert_snapshots(path, 2);

    /* A sample file. */
    const char *single = mg_test_path("single-labelled.h5");
    CU_ASSERT_FATAL(mg_sampleset_write_labeled(single, x, shape, z, NZ, labels, "c.h5", 3, &err) ==
                    0);
    f = H5Fopen(single, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    read_labels(f, back);
    CU_ASSERT_EQUAL(memcmp(back, labels, sizeof back), 0);
    CU_ASSERT_FATAL(H5Fclose(f) >= 0);
    assert_no_open_hdf5();
}

static void test_write_sample_file(void)
{
    const char *path = mg_test_path("sample.h5");
    mg_real x[PIX], z[N * NZ];
    mg_error err;
    fill_snapshot(x, 2);
    fill_noise(z, 1);
    int rc = mg_sampleset_write(path, x, shape, z, NZ, "runs/a/ckpt-00001000.h5", 1000, &err);
    if (rc)
        fprintf(stderr, "write: %s\n", err.msg);
    CU_ASSERT_FATAL(rc == 0);
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CU_ASSERT(access(tmp, F_OK) != 0);

    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    char s[64];
    read_root_string(f, "format", s, sizeof s);
    CU_ASSERT_STRING_EQUAL(s, "mpigan-samples");
    read_root_string(f, "checkpoint", s, sizeof s);
    CU_ASSERT_STRING_EQUAL(s, "runs/a/ckpt-00001000.h5");
    CU_ASSERT_EQUAL(read_root_int(f, "step"), 1000);
    CU_ASSERT_EQUAL(read_root_int(f, "format_version"), 1);
    hsize_t dims[5], maxdims[5];
    CU_ASSERT_EQUAL(dataset_shape(f, "/samples", dims, maxdims), 4);
    CU_ASSERT(dims[0] == N && dims[1] == C && dims[2] == H && dims[3] == W);
    float got[PIX], zf[N * NZ];
    read_floats(f, "/samples", got);
    assert_float32(got, x, PIX);
    read_floats(f, "/z", zf);
    assert_float32(zf, z, N * NZ);
    CU_ASSERT_FATAL(H5Fclose(f) >= 0);

    /* Overwrites a previous file whole. */
    fill_snapshot(x, 3);
    CU_ASSERT(mg_sampleset_write(path, x, shape, z, NZ, "b.h5", 7, &err) == 0);
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    CU_ASSERT_EQUAL(read_root_int(f, "step"), 7);
    read_floats(f, "/samples", got);
    assert_float32(got, x, PIX);
    CU_ASSERT_FATAL(H5Fclose(f) >= 0);

    char want[9000];
    mg_test_write_file("plain-file", "x", 1);
    const char *bad = mg_test_path("plain-file/sample.h5");
    snprintf(want, sizeof want, "%s: cannot write samples: Not a directory", bad);
    expect(mg_sampleset_write(bad, x, shape, z, NZ, "b.h5", 7, &err), &err, want);

    if (access("/usr/bin/h5dump", X_OK) == 0) {
        char cmd[4500];
        snprintf(cmd, sizeof cmd, "/usr/bin/h5dump -H '%s' > /dev/null", path);
        CU_ASSERT(system(cmd) == 0);
    } else {
        printf("\n  note: /usr/bin/h5dump not installed (apt-get install hdf5-tools): skipped");
    }
    assert_no_open_hdf5();
}

int main(int argc, char **argv)
{
    static const mg_test tests[] = {
        {"append_and_read_back", test_append_and_read_back},
        {"append_errors", test_append_errors},
        {"write_sample_file", test_write_sample_file},
        {"labels", test_labels},
        {NULL, NULL},
    };
    return mg_test_main("sampleset", tests, argc, argv);
}
