/* The TFD reader (libmatio: MATLAB v5 files, and v7.3 through HDF5) on any file: the unlabeled
 * split of fold 0 with both label variables, and the test split of fold 4 without. */
#include <stdlib.h>

#include "fuzz.h"
#include "mpigan/tfd.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_hdf5_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, ".mat");
    mg_error err = {""};
    mg_dataset ds;
    int32_t *ex, *id;
    int rc = mg_tfd_read(&ds, &ex, &id, path, 0, MG_TFD_UNLABELED, &err);
    fuzz_check_error(rc, &err, path);
    if (rc == 0) {
        fuzz_check_dataset(&ds, 1);
        mg_dataset_free(&ds);
        free(ex);
        free(id);
    }
    rc = mg_tfd_read(&ds, NULL, NULL, path, 4, MG_TFD_TEST, &err);
    fuzz_check_error(rc, &err, path);
    if (rc == 0) {
        fuzz_check_dataset(&ds, 1);
        mg_dataset_free(&ds);
    }
    return 0;
}
