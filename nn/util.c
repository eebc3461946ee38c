#define _GNU_SOURCE // sched_getaffinity, CPU_COUNT
#include "util.h"

#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void nn_fatal(const char* fmt, ...) {
    fflush(stdout);
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

void nn_fatal_at(const char* file, int line, const char* fmt, ...) {
    fflush(stdout);
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "error (%s:%d): ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

void* nn_malloc_at(size_t bytes, const char* file, int line) {
    void* p = malloc(bytes ? bytes : 1);
    if (!p) nn_fatal_at(file, line, "out of host memory allocating %zu bytes", bytes);
    return p;
}

void* nn_calloc_at(size_t count, size_t size, const char* file, int line) {
    void* p = calloc(count ? count : 1, size ? size : 1);
    if (!p) nn_fatal_at(file, line, "out of host memory allocating %zu x %zu bytes", count, size);
    return p;
}

void* nn_aligned_alloc_at(size_t alignment, size_t bytes, const char* file, int line) {
    void* p = NULL;
    if (posix_memalign(&p, alignment, bytes ? bytes : alignment) != 0 || !p)
        nn_fatal_at(file, line, "out of host memory allocating %zu bytes", bytes);
    return p;
}

FILE* nn_fopen_at(const char* path, const char* mode, const char* file, int line) {
    FILE* f = fopen(path, mode);
    if (!f) nn_fatal_at(file, line, "cannot open '%s' (mode %s): %s", path, mode, strerror(errno));
    return f;
}

const char* nn_file_kind(unsigned mode) {
    mode_t m = (mode_t)mode;
    if (S_ISREG(m)) return NULL;
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISDIR(m)) return "a directory";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

// why = "is <kind> (not a regular file)", errno = err; returns -1.
static int not_regular(unsigned mode, int err, char* why, size_t whylen) {
    if (why && whylen) snprintf(why, whylen, "is %s (not a regular file)", nn_file_kind(mode));
    errno = err;
    return -1;
}

static int failed(int err, char* why, size_t whylen) {
    if (why && whylen) snprintf(why, whylen, "%s", strerror(err));
    errno = err;
    return -1;
}

int nn_open_file(const char* path, int flags, char* why, size_t whylen) {
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return not_regular(st.st_mode, S_ISDIR(st.st_mode) ? EISDIR : EINVAL, why, whylen);
    int fd = open(path, flags | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0666);
    if (fd < 0) {
        int err = errno; // ENXIO: a FIFO without a reader appeared in between; say what it is
        if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) return not_regular(st.st_mode, err, why, whylen);
        return failed(err, why, whylen);
    }
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return failed(err, why, whylen);
    }
    if (!S_ISREG(st.st_mode)) { // replaced by something else since the stat above
        close(fd);
        return not_regular(st.st_mode, EINVAL, why, whylen);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        int err = errno;
        close(fd);
        return failed(err, why, whylen);
    }
    return fd;
}

FILE* nn_fopen_file(const char* path, const char* mode, char* why, size_t whylen) {
    int plus = strchr(mode, '+') != NULL, flags;
    if (mode[0] == 'r') flags = plus ? O_RDWR : O_RDONLY;
    else if (mode[0] == 'w') flags = (plus ? O_RDWR : O_WRONLY) | O_CREAT | O_TRUNC;
    else if (mode[0] == 'a') flags = (plus ? O_RDWR : O_WRONLY) | O_CREAT | O_APPEND;
    else return failed(EINVAL, why, whylen), NULL;
    int fd = nn_open_file(path, flags, why, whylen);
    if (fd < 0) return NULL;
    FILE* f = fdopen(fd, mode);
    if (!f) {
        int err = errno;
        close(fd);
        failed(err, why, whylen);
    }
    return f;
}

double nn_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char* nn_threads_note(char* buf, size_t buflen, int requested, int running) {
    // The CPUs this process may run on (taskset, mpirun's binding), else those online.
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) cpus = CPU_COUNT(&set);
    if (requested > running) snprintf(buf, buflen, " (--threads %d: at most %d)", requested, running);
    else if (cpus > 0 && running > cpus)
        snprintf(buf, buflen, " (more than the %ld CPU%s this process may use: usually slower)", cpus, cpus == 1 ? "" : "s");
    else if (buflen) buf[0] = 0;
    return buf;
}

const char* nn_format_bytes(char* buf, size_t buflen, double bytes) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024.0 && u < 4) {
        bytes /= 1024.0;
        u++;
    }
    snprintf(buf, buflen, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
    return buf;
}

void nn_json_string(FILE* f, const char* s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f), fputc(*s, f);
        else if (*s == '\n') fputs("\\n", f);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
        else fputc(*s, f);
    }
    fputc('"', f);
}
