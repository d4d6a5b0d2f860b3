/* A run directory: where a training run writes its configuration, records, checkpoints and
 * samples (README "What a run writes"). Rank 0 alone calls these.
 *
 * mg_rundir_open makes the directory if it is missing and takes an exclusive lock on it
 * (`.mpigan.lock`, an fcntl lock, which NFS and Lustre mounted with locks honour) that lasts until
 * mg_rundir_close: no two runs write into one directory. It checks the entries mpigan writes: a
 * symbolic link, a FIFO or a directory where mpigan keeps a file is refused, never written
 * through. Nothing in the directory changes until the caller has checked everything else and
 * calls the functions that change it; a run that fails before then leaves the directory as it
 * was (mg_rundir_abandon removes one that open made). */
#ifndef MPIGAN_RUNDIR_H
#define MPIGAN_RUNDIR_H

#include <stddef.h>
#include <stdint.h>

#include "mpigan/config.h"
#include "mpigan/error.h"
#include "mpigan/files.h"

typedef struct {
    char dir[MG_PATH_MAX];
    int lock;      /* descriptor that holds the lock, or -1 */
    int created;   /* open made the directory */
    int holds_run; /* a run wrote here before (metrics.jsonl or a checkpoint) */
} mg_rundir;

/* Longest name a run writes in its directory, with a temporary's suffix: a directory path must
 * leave room for it under MG_PATH_MAX. */
#define MG_RUNDIR_NAME_MAX 40

/* The directory of a run into dir (n bytes): `out` (--out), else the resumed checkpoint's, else
 * the configuration's output.dir, else runs/<name of config_path>-<date>-<time>. */
void mg_rundir_choose(char *dir, size_t n, const char *out, const char *resumed,
                      const char *output_dir, const char *config_path);

/* Makes dir if missing (parents too), locks it, and checks its entries. "<dir>: another mpigan
 * run is writing here (pid 123 on node7): ..." when the lock is taken; a file system without locks
 * gives a warning on stderr and no lock. */
int mg_rundir_open(mg_rundir *r, const char *dir, mg_error *err);

/* The run did not start: unlocks, and removes the directory if open made it and it holds
 * nothing of a run. */
void mg_rundir_abandon(mg_rundir *r);

/* Unlocks. */
void mg_rundir_close(mg_rundir *r);

/* What a run may do with the directory, checked before anything in it changes: a new run into
 * one that holds a run needs `force` (its files are moved aside by mg_rundir_start), and so does
 * a resume from step `step` into one that holds later checkpoints (which would mix two
 * histories; they are deleted by mg_rundir_start). */
int mg_rundir_check_start(const mg_rundir *r, int resume, int force, int64_t step,
                          mg_error *err);

/* Everything is checked and the run starts: a new run moves an old run's files aside (saying
 * where on stderr); a resumed one deletes the checkpoints after `step` and trims the records
 * and samples (mg_rundir_trim). Then writes config.yaml. */
int mg_rundir_start(mg_rundir *r, const mg_config *cfg, int resume, int64_t step,
                    mg_error *err);

/* A new run (--force) into a directory that holds one: the old run's files (records,
 * checkpoints, samples, pictures, evaluation records, plots) move into dir/previous-<date-time>,
 * whose path goes to moved (n bytes; "" when there was nothing to move). */
int mg_rundir_move_aside(mg_rundir *r, char *moved, size_t n, mg_error *err);

/* Writes config.yaml, the effective configuration. */
int mg_rundir_write_config(const mg_rundir *r, const mg_config *cfg, mg_error *err);

/* For a resumed run: drops what was written after `step` (after the checkpoint the run resumes
 * from, and about to be written again): the records of metrics.jsonl, the snapshots of
 * samples.h5 and their pictures samples-<step>.png, so that the files equal an uninterrupted
 * run's. */
int mg_rundir_trim(const mg_rundir *r, int64_t step, mg_error *err);

/* Before a command (sample, eval, prepare) does its work: 0 when it may write its own output
 * file at path. Refused, with "<path>: <problem>": a symbolic link, a FIFO or a directory there;
 * the file `input` (a checkpoint or data file it reads, through links too); a missing directory;
 * a file that a run writes (checkpoints, latest.h5, samples.h5, records, pictures) in a run
 * directory (one that holds `.mpigan.lock`), except an evaluation record eval-*.json when
 * eval_record is 1. */
int mg_rundir_check_output(const char *path, const char *input, int eval_record, mg_error *err);

#endif
