// Small utilities shared by every part of the project: fatal errors that name where they happened,
// checked allocation and file opening. Nothing here knows about tensors or backends.
#ifndef NN_UTIL_H
#define NN_UTIL_H

#include <stddef.h>
#include <stdio.h>

#if defined(__GNUC__)
#define NN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define NN_NORETURN __attribute__((noreturn))
#else
#define NN_PRINTF(a, b)
#define NN_NORETURN
#endif

// Prints "error: <message>" to stderr and exits with status 1. For conditions a user can cause
// (bad file, bad flag) the message must name the file, flag or value.
NN_NORETURN void nn_fatal(const char* fmt, ...) NN_PRINTF(1, 2);

// Like nn_fatal, but prefixes the source location: for internal invariants and library failures.
NN_NORETURN void nn_fatal_at(const char* file, int line, const char* fmt, ...) NN_PRINTF(3, 4);

#define NN_ASSERT(cond, ...)                                                                      \
    do {                                                                                          \
        if (!(cond)) nn_fatal_at(__FILE__, __LINE__, __VA_ARGS__);                                \
    } while (0)

// Checked malloc/calloc/fopen: on failure they report the call site, the size or path, and exit.
void* nn_malloc_at(size_t bytes, const char* file, int line);
void* nn_calloc_at(size_t count, size_t size, const char* file, int line);
void* nn_aligned_alloc_at(size_t alignment, size_t bytes, const char* file, int line);
FILE* nn_fopen_at(const char* path, const char* mode, const char* file, int line);
#define NN_MALLOC(bytes) nn_malloc_at((bytes), __FILE__, __LINE__)
#define NN_CALLOC(count, size) nn_calloc_at((count), (size), __FILE__, __LINE__)
#define NN_ALIGNED_ALLOC(alignment, bytes) nn_aligned_alloc_at((alignment), (bytes), __FILE__, __LINE__)
#define NN_FOPEN(path, mode) nn_fopen_at((path), (mode), __FILE__, __LINE__)

// Files a user names (data, checkpoints, logs, configs, locks) are opened only through these two, so
// that a FIFO, a device or a directory where a file belongs is refused by name instead of blocking
// in open() (a FIFO without a writer or reader), reading forever (/dev/zero) or failing later.
// The path is checked with stat before it is opened (opening some devices has effects of its own),
// then opened with O_NONBLOCK and checked again with fstat (it may have been replaced in between);
// O_NONBLOCK is cleared before the descriptor is returned. flags are open()'s (O_CREAT creates a
// regular file, mode 0666 less the umask). Returns the descriptor, or -1 with errno set and why
// holding "is a FIFO (not a regular file)" and the like, or strerror(errno).
int nn_open_file(const char* path, int flags, char* why, size_t whylen);
// The same for stdio: mode is fopen's ("r", "rb", "w", "wb", "a", with or without "+").
FILE* nn_fopen_file(const char* path, const char* mode, char* why, size_t whylen);
// What a file that is not a regular one is, for messages: "a FIFO", "a directory", "a character
// device", "a block device", "a socket" or "not a regular file"; NULL for a regular file.
const char* nn_file_kind(unsigned mode);

// Monotonic wall clock in seconds.
double nn_now(void);

// A backend's thread count as a note for its device line (buf: "" when there is nothing to say):
// " (--threads R: at most N)" when it runs fewer threads than --threads asked (requested > running),
// " (more than the C CPUs this process may use: usually slower)" when it runs more threads than the
// CPUs it may run on (its affinity: taskset, mpirun's binding), as OpenMP's threads then wait for
// each other at every barrier.
const char* nn_threads_note(char* buf, size_t buflen, int requested, int running);

// Formats a byte count as "12.3 MiB" into buf (returns buf).
const char* nn_format_bytes(char* buf, size_t buflen, double bytes);

// Writes s as a JSON string literal (quotes, backslashes and control characters escaped).
void nn_json_string(FILE* f, const char* s);

#endif
