/* Floating-point traps for the training step (fpe.h). */
#define _GNU_SOURCE /* feenableexcept, fedisableexcept */
#include "mpigan/fpe.h"

#include <execinfo.h>
#include <fenv.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FPE_TRAPPED (FE_INVALID | FE_DIVBYZERO | FE_OVERFLOW)

#if defined(__SANITIZE_ADDRESS__) /* gcc */
#define MG_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) /* clang */
#define MG_SANITIZED 1
#endif
#endif

int mg_fpe_traps_wanted(mg_error *err)
{
    const char *v = getenv("MPIGAN_TRAP_FPE");
    if (!v || !v[0] || strcmp(v, "0") == 0)
        return 0;
#ifdef MG_FPE_TRAPS
    (void)err;
    return 1;
#else
    return mg_fail(err, "MPIGAN_TRAP_FPE=%s: floating-point traps need a Debug build "
                   "(cmake -DCMAKE_BUILD_TYPE=Debug)", v);
#endif
}

#ifndef MG_SANITIZED
/* Async-signal-safe: write(2) and backtrace_symbols_fd only (backtrace was called once before,
 * so libgcc is loaded). SA_RESETHAND: returning re-runs the instruction, which now ends the
 * process with SIGFPE as without a handler (core dump included). */
static void on_fpe(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    (void)ctx;
    const char *what = si->si_code == FPE_FLTINV   ? "invalid operation (a NaN is born)"
                       : si->si_code == FPE_FLTDIV ? "division by zero"
                       : si->si_code == FPE_FLTOVF ? "overflow"
                                                   : "floating-point exception";
    static const char head[] = "mpigan: MPIGAN_TRAP_FPE: ";
    static const char tail[] =
        " in the training step; backtrace (addr2line -f -e EXE 0xOFFSET names a frame):\n";
    (void)!write(STDERR_FILENO, head, sizeof head - 1);
    (void)!write(STDERR_FILENO, what, strlen(what));
    (void)!write(STDERR_FILENO, tail, sizeof tail - 1);
    void *frames[64];
    backtrace_symbols_fd(frames, backtrace(frames, 64), STDERR_FILENO);
}
#endif

void mg_fpe_traps(int on)
{
    static int handler_installed;
    if (on && !handler_installed) {
        handler_installed = 1;
#ifndef MG_SANITIZED
        void *frame;
        (void)backtrace(&frame, 1);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_fpe;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
        sigaction(SIGFPE, &sa, NULL);
#endif
    }
    feclearexcept(FE_ALL_EXCEPT);
    if (on)
        feenableexcept(FPE_TRAPPED);
    else
        fedisableexcept(FPE_TRAPPED);
}
