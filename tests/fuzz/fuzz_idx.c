/* The IDX reader on any file: raw bytes (a raw IDX file, or a gzip stream when the input starts
 * with gzip's magic), each of its entry points. */
#include <stdlib.h>

#include "fuzz.h"
#include "mpigan/dataset.h"
#include "mpigan/idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, ".idx");
    mg_error err = {""};
    mg_idx_header h;
    fuzz_check_error(mg_idx_read_header(&h, path, &err), &err, path);

    /* The whole file, a part from the second example on, and one example. */
    static const int sel[3][2] = {{0, -1}, {1, -1}, {0, 1}};
    for (int i = 0; i < 3; i++) {
        mg_dataset ds;
        int rc = mg_idx_read_images(&ds, path, sel[i][0], sel[i][1], &err);
        fuzz_check_error(rc, &err, path);
        if (rc == 0) {
            fuzz_check_dataset(&ds, 1);
            mg_dataset_free(&ds);
        }
    }
    uint8_t *labels;
    int n;
    int rc = mg_idx_read_labels(&labels, &n, path, &err);
    fuzz_check_error(rc, &err, path);
    if (rc == 0)
        free(labels);
    return 0;
}
