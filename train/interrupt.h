// Ctrl-C, SIGTERM and SIGHUP during training. The first asks the loop to stop after the current step
// and save; a second exits at once without saving, after one line saying what the disk holds (the
// last checkpoint, intact, or that none was written yet). That line is prepared outside the handler
// (interrupt_on_disk), since a handler may only call async-signal-safe functions (write, _exit).
#ifndef TRAIN_INTERRUPT_H
#define TRAIN_INTERRUPT_H

// Installs the handlers for SIGINT, SIGTERM and SIGHUP (SIGHUP only where it is not ignored: a run
// started under nohup goes on training when its terminal closes).
void interrupt_install(void);

// The signal received (0: none yet).
int interrupt_received(void);

// Another process of the job was interrupted: this one stops too, as if it had been.
void interrupt_as_peer(void);

// What a second interrupt will report before exiting: "interrupted again: exiting without saving; "
// followed by this text. Called whenever the checkpoint on disk changes.
void interrupt_on_disk(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
