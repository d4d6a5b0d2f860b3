/* The IDX reader through gzip: the input is the decompressed content, compressed here, so the
 * fuzzer explores IDX headers and sizes behind a valid gzip stream (fuzz_idx takes damaged
 * streams). */
#include <stdlib.h>
#include <zlib.h>

#include "fuzz.h"
#include "mpigan/dataset.h"
#include "mpigan/idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* gzip framing: deflate with windowBits 15 + 16. */
    z_stream z = {0};
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    size_t cap = deflateBound(&z, size);
    uint8_t *gz = malloc(cap);
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)size;
    z.next_out = gz;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        abort();
    size_t n_gz = cap - z.avail_out;
    deflateEnd(&z);
    const char *path = fuzz_file(gz, n_gz, ".idx.gz");
    free(gz);

    mg_error err = {""};
    mg_dataset ds;
    int rc = mg_idx_read_images(&ds, path, 0, -1, &err);
    fuzz_check_error(rc, &err, path);
    if (rc == 0) {
        fuzz_check_dataset(&ds, 1);
        mg_dataset_free(&ds);
    }
    uint8_t *labels;
    int n;
    rc = mg_idx_read_labels(&labels, &n, path, &err);
    fuzz_check_error(rc, &err, path);
    if (rc == 0)
        free(labels);
    return 0;
}
