// Interrupts during training (see interrupt.h).
#define _POSIX_C_SOURCE 200809L
#include "interrupt.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t received = 0;

// The second interrupt's line, double-buffered: the loop writes the buffer not in use, then flips
// `shown`, so the handler never reads a line half written.
static char again[2][2048];
static volatile sig_atomic_t again_len[2];
static volatile sig_atomic_t shown = 0;

static void say(const char* s, size_t n) {
    ssize_t ignored = write(STDERR_FILENO, s, n); // nothing to do if stderr is gone
    (void)ignored;
}

static void on_signal(int sig) {
    if (received) {
        int i = shown;
        say(again[i], (size_t)again_len[i]);
        _exit(128 + sig);
    }
    received = sig;
    static const char first[] = "\nstopping: finishing this step, then saving (interrupt again to exit at once, "
                                "without saving)\n";
    say(first, sizeof(first) - 1);
}

void interrupt_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART; // reads and writes in progress go on; the loop checks between steps
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    // A closed terminal or a dropped ssh session (SIGHUP) saves too, unless the run was started with
    // nohup (SIGHUP ignored), which asks for it to go on.
    struct sigaction old;
    if (sigaction(SIGHUP, NULL, &old) == 0 && old.sa_handler != SIG_IGN) sigaction(SIGHUP, &sa, NULL);
}

int interrupt_received(void) { return received; }

void interrupt_as_peer(void) {
    if (!received) received = SIGTERM;
}

void interrupt_on_disk(const char* fmt, ...) {
    int next = !shown;
    static const char head[] = "\ninterrupted again: exiting without saving; ";
    size_t n = sizeof(head) - 1;
    memcpy(again[next], head, n);
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(again[next] + n, sizeof(again[next]) - n - 1, fmt, ap);
    va_end(ap);
    n += k < 0 ? 0 : (size_t)k < sizeof(again[next]) - n - 1 ? (size_t)k : sizeof(again[next]) - n - 2;
    again[next][n++] = '\n';
    again_len[next] = (sig_atomic_t)n;
    shown = next;
}
