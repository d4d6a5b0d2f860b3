/* Stop requests: SIGTERM, SIGINT and SIGUSR1 (what SLURM sends before a time limit or a
 * pre-emption) ask the run to stop at the next step boundary, after a checkpoint. A second SIGINT
 * ends the process at once (exit status 130), for a user who does not want to wait. */
#ifndef MPIGAN_SIGNALS_H
#define MPIGAN_SIGNALS_H

void mg_signals_install(void);

/* The first stop signal received, or 0. */
int mg_signals_pending(void);

#endif
