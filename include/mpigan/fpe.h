/* Floating-point traps for the training step (MPIGAN_TRAP_FPE=1, Debug builds). */
#ifndef MPIGAN_FPE_H
#define MPIGAN_FPE_H

#include "mpigan/error.h"

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
