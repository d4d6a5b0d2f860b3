#include "fixtures.h"

#include <CUnit/CUnit.h>
#include <math.h>

#include "mpigan/rng.h"

mg_dataset mg_fixture_blobs(int n)
{
    mg_dataset ds;
    mg_error err;
    CU_ASSERT_FATAL(mg_dataset_alloc(&ds, n, 1, 6, 6, &err) == 0);
    mg_rng_key key = {.seed = 99, .stream = 12345, .step = 0};
    for (int i = 0; i < n; i++) {
        mg_real u[2];
        mg_rng_uniform(u, 2, 0, 1, &key, (uint64_t)i);
        int cx = (int)(u[0] * 5), cy = (int)(u[1] * 5);
        for (int y = 0; y < 6; y++)
            for (int x = 0; x < 6; x++)
                ds.x[(size_t)i * 36 + y * 6 + x] =
                    (mg_real)exp(-0.5 * ((x - cx) * (x - cx) + (y - cy) * (y - cy)));
    }
    return ds;
}
