/* The CIFAR-10 reader on any file, alone and as the second of two batches. */
#include <stdlib.h>

#include "fuzz.h"
#include "mpigan/cifar10.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, ".bin");
    const char *const files[2] = {path, path};
    for (int n_files = 1; n_files <= 2; n_files++) {
        mg_error err = {""};
        mg_dataset ds;
        uint8_t *labels;
        int rc = mg_cifar10_read(&ds, &labels, files, n_files, &err);
        fuzz_check_error(rc, &err, path);
        if (rc == 0) {
            fuzz_check_dataset(&ds, 1);
            for (int i = 0; i < ds.n; i++)
                if (labels[i] > 9)
                    abort();
            mg_dataset_free(&ds);
            free(labels);
        }
    }
    return 0;
}
