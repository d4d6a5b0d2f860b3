/* Stop requests: SIGTERM, SIGINT and SIGUSR1 (what SLURM sends before a time limit or a
 * pre-emption) ask the run to stop at the next step boundary, after a checkpoint. A second SIGINT
 * ends the process at once (exit status 130), for a user who does not want to wait. */
#ifndef MPIGAN_SIGNALS_H
#define MPIGAN_SIGNALS_H

#include "mpigan/error.h"

void mg_signals_install(void);

/* The first stop signal received, or 0. */
int mg_signals_pending(void);

/* Floating-point traps, to find where a NaN or Inf is born: with MPIGAN_TRAP_FPE=1 in the
 * environment, each training step runs with invalid operations, division by zero and overflow
 * raising SIGFPE at the instruction that caused them (underflow and inexact results stay quiet:
 * they are normal). Outside the step (I/O, evaluation, libraries) nothing traps. Debug builds
 * only (MG_FPE_TRAPS): optimised code may compute both sides of a branch or unused vector lanes,
 * raising exceptions the source never asks for.
 *
 * 1 if the environment asks for traps, 0 if not (unset, empty or "0"), -1 if it asks in a build
 * without them. Read once, when a trainer is set up. */
int mg_fpe_traps_wanted(mg_error *err);

/* Turns the traps on (and, first time, a SIGFPE handler that names the exception and prints a
 * backtrace; a sanitized build keeps the sanitizer's own report) or off, clearing any exception
 * raised meanwhile. Per thread. */
void mg_fpe_traps(int on);

#endif
