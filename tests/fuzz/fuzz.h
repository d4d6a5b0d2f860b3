/* Shared parts of the libFuzzer targets (README.md, "Fuzzing"): the file each input becomes, and
 * the checks every reader must pass on any input, beyond not crashing:
 *   - it returns 0 or -1, and on -1 err.msg is one non-empty line that starts with the file's
 *     name (the path given, for a file; the name, for a configuration);
 *   - a data set read is consistent (dim = channels x height x width, every value finite, and in
 *     [0, 1] where the format holds bytes); on -1 nothing is left allocated (LeakSanitizer);
 *   - no HDF5 object is left open, on success or failure.
 * A violation prints what was wrong and aborts, which libFuzzer reports as a crash. */
#ifndef MPIGAN_FUZZ_H
#define MPIGAN_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "mpigan/dataset.h"
#include "mpigan/idx.h"
#include "mpigan/error.h"

/* Writes the input to this process's scratch file (in $TMPDIR, else /tmp; `suffix` such as
 * ".h5") and returns its path. The file is replaced by each call, and removed at exit. */
const char *fuzz_file(const uint8_t *data, size_t size, const char *suffix);

void fuzz_check_error(int rc, const mg_error *err, const char *name);
void fuzz_check_dataset(const mg_dataset *ds, int bytes);
void fuzz_check_hdf5_closed(void);

/* For the targets that reach HDF5: its free lists off, so that every block it frees goes back to
 * malloc at once. Memory then balances within one input (libFuzzer runs a leak check after any
 * input that does not balance, which is slow), and ASan sees HDF5 use a block after freeing it. */
void fuzz_hdf5_init(void);

/* The networks of the checkpoint target and its seeds: small, so a checkpoint is a few kB. G makes
 * 1 x 4 x 4 images. */
#define FUZZ_CKPT_CONFIG(optim)                                                                  \
    "seed: 3\n"                                                                                  \
    "data: {format: idx, train_images: none}\n"                                                  \
    "generator:\n"                                                                               \
    "  noise_dim: 4\n"                                                                           \
    "  layers:\n"                                                                                \
    "    - {name: h0, type: relu, units: 6}\n"                                                   \
    "    - {name: y, type: sigmoid, units: 16}\n"                                                \
    "  optimizer: {type: " optim "}\n"                                                           \
    "discriminator:\n"                                                                           \
    "  layers:\n"                                                                                \
    "    - {name: h0, type: maxout, units: 3, pieces: 2}\n"                                      \
    "    - {name: y, type: sigmoid, units: 1}\n"                                                 \
    "  optimizer: {type: " optim "}\n"                                                           \
    "train: {batch_size: 4}\n"
#define FUZZ_CKPT_SIDE 4

#endif
