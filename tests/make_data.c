/* Writes small data sets in their real distributed formats, for tests that need files:
 *   make_data DIR N  ->  DIR/idx/train-images-idx3-ubyte.gz  (N x 28 x 28) and train-labels
 *                        DIR/cifar/data_batch_1.bin ... data_batch_5.bin, test_batch.bin (N/5
 *                        records each)
 *                        DIR/tfd/TFD_48x48.mat (MATLAB v5: images N x 48 x 48, folds N x 5,
 *                        labs_ex N x 1: 1 to 7 where fold 0 labels the example, else -1)
 * Labels are i % 10 (TFD: 1 + i % 7), and each image's blob sits where its class puts it, so a
 * classifier or a conditional GAN has something to learn.
 *   make_data --bomb FILE N H W  ->  a gzip'd IDX file of N x H x W zero pixels, header and all,
 *                        written as gzip members of 1 MiB each (gzread reads them as one stream):
 *                        100 x 4096 x 4096 is 1.6 GB in a 1.6 MB file, written in a second
 * Pixels are smooth random patterns from a fixed seed, so the same call writes the same files. */
#define _GNU_SOURCE /* open_memstream */
#include <errno.h>
#include <matio.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

static void die(const char *what)
{
    fprintf(stderr, "make_data: %s: %s\n", what, strerror(errno));
    exit(1);
}

static uint32_t state = 12345;
static uint8_t next_byte(void)
{
    state = state * 1664525u + 1013904223u;
    return (uint8_t)(state >> 24);
}

/* A blob on a dark background, at a random place (label < 0) or in the band of rows its label
 * chooses: something a discriminator, and a classifier, can learn. */
static void image_of(uint8_t *px, int h, int w, int label)
{
    int cy = next_byte() % h, cx = next_byte() % w;
    if (label >= 0)
        cy = (label * h / 10 + cy % (h / 10 > 0 ? h / 10 : 1)) % h;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int d2 = (y - cy) * (y - cy) + (x - cx) * (x - cx);
            px[y * w + x] = (uint8_t)(d2 < h * w / 16 ? 200 + next_byte() % 56 : next_byte() % 32);
        }
}

static void image(uint8_t *px, int h, int w)
{
    image_of(px, h, w, -1);
}

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = v;
}

static void write_idx(const char *dir, int n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    gzFile g = gzopen(path, "wb");
    if (!g)
        die(path);
    uint8_t hdr[16] = {0, 0, 8, 3};
    be32(hdr + 4, (uint32_t)n), be32(hdr + 8, 28), be32(hdr + 12, 28);
    gzwrite(g, hdr, sizeof hdr);
    uint8_t px[784];
    for (int i = 0; i < n; i++) {
        image_of(px, 28, 28, i % 10);
        gzwrite(g, px, sizeof px);
    }
    if (gzclose(g) != Z_OK)
        die(path);
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte.gz", dir);
    if (!(g = gzopen(path, "wb")))
        die(path);
    uint8_t lh[8] = {0, 0, 8, 1};
    be32(lh + 4, (uint32_t)n);
    gzwrite(g, lh, sizeof lh);
    for (int i = 0; i < n; i++) {
        uint8_t label = (uint8_t)(i % 10);
        gzwrite(g, &label, 1);
    }
    if (gzclose(g) != Z_OK)
        die(path);
}

static void write_cifar(const char *dir, int n)
{
    uint8_t rec[3073], px[1024];
    for (int b = 1; b <= 6; b++) {
        char path[4096];
        if (b == 6)
            snprintf(path, sizeof path, "%s/test_batch.bin", dir);
        else
            snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, b);
        FILE *f = fopen(path, "wb");
        if (!f)
            die(path);
        for (int i = 0; i < n / 5; i++) {
            rec[0] = (uint8_t)(i % 10);
            image_of(px, 32, 32, rec[0]);
            for (int c = 0; c < 3; c++)
                for (int k = 0; k < 1024; k++)
                    rec[1 + c * 1024 + k] = (uint8_t)(px[k] * (c + 2) / 4);
            if (fwrite(rec, 1, sizeof rec, f) != sizeof rec)
                die(path);
        }
        if (fclose(f) != 0)
            die(path);
    }
}

static void write_tfd(const char *dir, int n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/TFD_48x48.mat", dir);
    mat_t *mat = Mat_CreateVer(path, NULL, MAT_FT_MAT5);
    if (!mat)
        die(path);
    /* MATLAB is column-major: images(i, r, c) at i + n * (r + 48 * c). */
    uint8_t *images = malloc((size_t)n * 48 * 48), px[48 * 48];
    double *folds = malloc((size_t)n * 5 * sizeof *folds), *labs = malloc((size_t)n * sizeof *labs);
    if (!images || !folds || !labs)
        die("malloc");
    for (int i = 0; i < n; i++) {
        labs[i] = i < n - 30 ? -1 : 1 + i % 7; /* the rows fold 0 labels, as TFD */
        image(px, 48, 48);
        for (int r = 0; r < 48; r++)
            for (int c = 0; c < 48; c++)
                images[i + (size_t)n * (r + 48 * c)] = px[r * 48 + c];
        for (int k = 0; k < 5; k++) /* mostly unlabeled; a few labeled of each split */
            folds[i + (size_t)n * k] = i < n - 30 ? 0 : 1 + (i + k) % 3;
    }
    size_t idims[3] = {(size_t)n, 48, 48}, fdims[2] = {(size_t)n, 5}, ldims[2] = {(size_t)n, 1};
    matvar_t *vi = Mat_VarCreate("images", MAT_C_UINT8, MAT_T_UINT8, 3, idims, images, 0);
    matvar_t *vf = Mat_VarCreate("folds", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, fdims, folds, 0);
    matvar_t *vl = Mat_VarCreate("labs_ex", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, ldims, labs, 0);
    if (!vi || !vf || !vl || Mat_VarWrite(mat, vi, MAT_COMPRESSION_NONE) ||
        Mat_VarWrite(mat, vf, MAT_COMPRESSION_NONE) || Mat_VarWrite(mat, vl, MAT_COMPRESSION_NONE))
        die(path);
    Mat_VarFree(vi);
    Mat_VarFree(vf);
    Mat_VarFree(vl);
    Mat_Close(mat);
    free(images);
    free(folds);
    free(labs);
}

/* One gzip member of n bytes, deflated at level 9. */
static void write_member(FILE *out, const void *data, size_t n, const char *path)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        die("deflateInit2");
    unsigned char buf[1 << 16];
    z.next_in = (unsigned char *)data;
    z.avail_in = (uInt)n;
    int zrc;
    do {
        z.next_out = buf;
        z.avail_out = sizeof buf;
        zrc = deflate(&z, Z_FINISH);
        if (fwrite(buf, 1, sizeof buf - z.avail_out, out) != sizeof buf - z.avail_out)
            die(path);
    } while (zrc == Z_OK);
    deflateEnd(&z);
}

static int write_bomb(const char *path, uint32_t n, uint32_t h, uint32_t w)
{
    FILE *out = fopen(path, "wb");
    if (!out)
        die(path);
    uint8_t hdr[16] = {0, 0, 8, 3};
    be32(hdr + 4, n), be32(hdr + 8, h), be32(hdr + 12, w);
    write_member(out, hdr, sizeof hdr, path);
    const size_t mib = 1 << 20;
    uint64_t left = (uint64_t)n * h * w;
    void *zeros = calloc(1, mib);
    char *member = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&member, &len);
    if (!zeros || !mem)
        die("memory");
    write_member(mem, zeros, mib, path);
    if (fclose(mem) != 0)
        die("memory");
    for (; left >= mib; left -= mib)
        if (fwrite(member, 1, len, out) != len)
            die(path);
    if (left)
        write_member(out, zeros, (size_t)left, path);
    if (fclose(out) != 0)
        die(path);
    free(member);
    free(zeros);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "--bomb") == 0)
        return write_bomb(argv[2], (uint32_t)strtoul(argv[3], NULL, 10),
                          (uint32_t)strtoul(argv[4], NULL, 10), (uint32_t)strtoul(argv[5], NULL, 10));
    if (argc != 3) {
        fprintf(stderr, "usage: make_data DIR N, or make_data --bomb FILE N H W\n");
        return 2;
    }
    const char *dir = argv[1];
    int n = atoi(argv[2]);
    char sub[4096];
    const char *const subs[] = {"idx", "cifar", "tfd"};
    for (int i = 0; i < 3; i++) {
        snprintf(sub, sizeof sub, "%s/%s", dir, subs[i]);
        if (mkdir(dir, 0777) != 0 && errno != EEXIST)
            die(dir);
        if (mkdir(sub, 0777) != 0 && errno != EEXIST)
            die(sub);
    }
    snprintf(sub, sizeof sub, "%s/idx", dir);
    write_idx(sub, n);
    snprintf(sub, sizeof sub, "%s/cifar", dir);
    write_cifar(sub, n);
    snprintf(sub, sizeof sub, "%s/tfd", dir);
    write_tfd(sub, n);
    return 0;
}
