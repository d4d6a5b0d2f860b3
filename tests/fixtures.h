/* Data the training tests share. */
#ifndef MPIGAN_FIXTURES_H
#define MPIGAN_FIXTURES_H

#include "mpigan/dataset.h"

/* n 6x6 "images" (1, 6, 6): a Gaussian blob whose position varies per example, so D has
 * something to learn; the same for every rank and run. */
mg_dataset mg_fixture_blobs(int n);

#endif
