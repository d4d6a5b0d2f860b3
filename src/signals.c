/* Stop requests (signals.h). */
#define _POSIX_C_SOURCE 200809L /* sigaction */
#include "mpigan/signals.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t pending;
static volatile sig_atomic_t interrupts;

static void on_signal(int sig)
{
    if (sig == SIGINT && ++interrupts >= 2) {
        static const char msg[] = "mpigan: second interrupt: stopping now, without a checkpoint\n";
        (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
        _exit(130);
    }
    if (!pending)
        pending = sig;
}

void mg_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* a signal must not fail a read or an MPI progress call */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

int mg_signals_pending(void)
{
    return pending;
}
