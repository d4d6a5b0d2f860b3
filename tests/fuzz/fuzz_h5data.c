/* The HDF5 input reader on any file (written to a temporary file, then read): every example with
 * labels, and a part without. HDF5 itself parses the file; see README.md for what it does with
 * hostile ones. */
#include <stdlib.h>

#include "fuzz.h"
#include "mpigan/h5data.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_hdf5_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, ".h5");
    mg_error err = {""};
    mg_dataset ds;
    int32_t *labels;
    int rc = mg_h5data_read(&ds, &labels, path, "/images", "/labels", 0, -1, &err);
    fuzz_check_error(rc, &err, path);
    fuzz_check_hdf5_closed();
    if (rc == 0) {
        fuzz_check_dataset(&ds, 0);
        mg_dataset_free(&ds);
        free(labels);
    }
    rc = mg_h5data_read(&ds, NULL, path, "/images", NULL, 1, 1, &err);
    fuzz_check_error(rc, &err, path);
    fuzz_check_hdf5_closed();
    if (rc == 0) {
        fuzz_check_dataset(&ds, 0);
        mg_dataset_free(&ds);
    }
    return 0;
}
