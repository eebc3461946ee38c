// The run's guards (guard.h): early path checks, and finiteness of the training loss, the weights and
// the test loss. Each failure names what it found and exits with status 1.
#define _POSIX_C_SOURCE 200809L
#include "guard.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../nn/util.h"

void guard_paths(const Options* o) {
    if (o->checkpoint[0] && options_training(o)) {
        struct stat st;
        if (stat(o->checkpoint, &st) == 0 && S_ISDIR(st.st_mode))
            nn_fatal("--checkpoint '%s' is a directory; give a file name (e.g. %s/run.ckpt)", o->checkpoint,
                     o->checkpoint);
        // The save creates PATH.tmp in PATH's directory and renames it over PATH: the directory must
        // exist and be writable, and a stale PATH.tmp (left by a kill) must be writable too. Nothing
        // is created here, so a run that fails later leaves no trace.
        char dir[PATH_LEN], tmp[PATH_LEN + 8];
        snprintf(dir, sizeof(dir), "%s", o->checkpoint);
        char* slash = strrchr(dir, '/');
        if (!slash) snprintf(dir, sizeof(dir), ".");
        else if (slash == dir) dir[1] = '\0';
        else *slash = '\0';
        snprintf(tmp, sizeof(tmp), "%s.tmp", o->checkpoint);
        if (access(dir, W_OK | X_OK) != 0)
            nn_fatal("--checkpoint '%s' cannot be written: directory '%s': %s", o->checkpoint, dir,
                     strerror(errno));
        if (access(tmp, F_OK) == 0 && access(tmp, W_OK) != 0)
            nn_fatal("--checkpoint '%s' cannot be written: '%s': %s", o->checkpoint, tmp, strerror(errno));
    }
    if (o->log[0] && options_training(o)) {
        struct stat st;
        int existed = stat(o->log, &st) == 0;
        if (existed && S_ISDIR(st.st_mode)) nn_fatal("--log '%s' is a directory", o->log);
        FILE* f = fopen(o->log, "a");
        if (!f) nn_fatal("--log '%s' cannot be opened for writing: %s", o->log, strerror(errno));
        fclose(f);
        if (!existed) unlink(o->log);
    }
}

// The lock is a POSIX record lock on PATH.lock (fcntl, which network file systems support too): the
// kernel drops it when the process ends, however it ends, so a file left behind by a kill -9 is
// harmless. At a normal exit the file is removed, before the lock is dropped; a process that opened
// the old file in that moment finds, once it holds the lock, that the path names another file, and
// tries again.
static char lock_path[PATH_LEN + 8];
static int lock_fd = -1;

static void release_lock(void) {
    if (lock_fd < 0) return;
    unlink(lock_path);
    close(lock_fd);
    lock_fd = -1;
}

int guard_lock(const Options* o) {
    if (lock_fd >= 0 || !o->checkpoint[0] || !options_training(o)) return 1;
    snprintf(lock_path, sizeof(lock_path), "%s.lock", o->checkpoint);
    for (int attempt = 0; attempt < 10; attempt++) {
        int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0 && errno == ENOENT) return 0; // the run's directory does not exist yet
        if (fd < 0) nn_fatal("--checkpoint '%s': cannot create its lock file '%s': %s", o->checkpoint, lock_path,
                             strerror(errno));
        struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fcntl(fd, F_SETLK, &lk) != 0) {
            int err = errno;
            struct flock who = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
            long pid = fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK ? (long)who.l_pid : 0;
            close(fd);
            if (err == EACCES || err == EAGAIN) {
                char holder[64] = "another training process";
                if (pid > 0) snprintf(holder, sizeof(holder), "training process %ld", pid);
                nn_fatal("the checkpoint '%s' is in use: %s holds its lock '%s'. Two runs saving one "
                         "checkpoint would overwrite each other and mix their logs: wait for that run to end "
                         "or stop it (Ctrl-C saves; then --resume), or give another --out or --checkpoint",
                         o->checkpoint, holder, lock_path);
            }
            fprintf(stderr, "warning: cannot lock '%s' (%s): nothing stops a second process from training into "
                    "'%s' at the same time\n", lock_path, strerror(err), o->checkpoint);
            return 1;
        }
        struct stat held, named;
        if (fstat(fd, &held) == 0 && stat(lock_path, &named) == 0 && held.st_ino == named.st_ino &&
            held.st_dev == named.st_dev) {
            lock_fd = fd;
            atexit(release_lock);
            return 1;
        }
        close(fd); // the previous holder removed the file just as we opened it: lock the new one
    }
    nn_fatal("--checkpoint '%s': could not lock '%s' (it keeps being replaced)", o->checkpoint, lock_path);
    return 0;
}

static int first_nonfinite(const float* x, size_t n, size_t* at) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return *at = i, 1;
    return 0;
}

int guard_find_nonfinite(Engine* e, char* what, size_t len) {
    size_t most = e->num_param_floats > e->num_buffer_floats ? e->num_param_floats : e->num_buffer_floats;
    float* host = NN_MALLOC((most ? most : 1) * sizeof(float)); // (most) one arena at a time
    const float* arenas[3] = {e->param_data, e->param_momentum, e->buffer_data};
    const char* kinds[3] = {"", "SGD momentum of ", ""};
    int found = 0;
    for (int a = 0; a < 3 && !found; a++) {
        size_t n = a == 2 ? e->num_buffer_floats : e->num_param_floats;
        if (!n || !arenas[a]) continue;
        e->be->download(host, arenas[a], n * sizeof(float));
        size_t at;
        if (!first_nonfinite(host, n, &at)) continue;
        found = 1;
        const char* name = "?";
        size_t index = at;
        for (int i = 0; i < e->num_params; i++) {
            const Param* p = &e->params[i];
            if (p->is_buffer != (a == 2) || at < p->offset || at >= p->offset + p->numel) continue;
            name = p->name, index = at - p->offset;
            break;
        }
        snprintf(what, len, "%stensor '%s' (element %zu is %g)", kinds[a], name, index, (double)host[at]);
    }
    free(host);
    return found;
}

static NN_NORETURN void stop(const Trainer* t, const char* what) {
    fflush(stdout);
    fprintf(stderr, "\nerror: %s at epoch %d, step %ld (learning rate %g). Stopping without saving, so %s%s%s "
            "still holds the last good state. Try a lower --lr.\n",
            what, t->epoch + 1, t->step, (double)t->sgd.lr,
            t->opt.checkpoint[0] ? "the checkpoint '" : "no checkpoint was written, nothing",
            t->opt.checkpoint, t->opt.checkpoint[0] ? "'" : "");
    exit(1);
}

void guard_weights(Trainer* t) {
    char what[256], msg[320];
    if (!guard_find_nonfinite(t->e, what, sizeof(what))) return;
    snprintf(msg, sizeof(msg), "the weights became non-finite: %s", what);
    stop(t, msg);
}

void guard_loaded_weights(Trainer* t, const char* path) {
    char what[256];
    if (!guard_find_nonfinite(t->e, what, sizeof(what))) return;
    nn_fatal("checkpoint '%s' holds non-finite values: %s. The run that saved it had already diverged (or the "
             "file is damaged): it can be neither evaluated nor continued; start from an earlier checkpoint",
             path, what);
}

void guard_train_loss(Trainer* t, double loss_sum) {
    if (isfinite(loss_sum)) return;
    stop(t, isnan(loss_sum) ? "the training loss became NaN" : "the training loss became infinite");
}

void guard_test_loss(Trainer* t, double test_loss) {
    if (isfinite(test_loss)) return;
    char msg[128];
    snprintf(msg, sizeof(msg), "the test loss became %s", isnan(test_loss) ? "NaN" : "infinite");
    if (t->opt.eval_only) nn_fatal("%s (the weights evaluated are finite but give no usable loss)", msg);
    stop(t, msg);
}
