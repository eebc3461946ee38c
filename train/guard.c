// The run's guards (guard.h): early path checks, and finiteness of the training loss, the weights and
// the test loss. Each failure names what it found and exits with status 1.
#define _XOPEN_SOURCE 700 // realpath
#include "guard.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../nn/util.h"
#include "rundir.h"
#include "settings.h"

// How a message names a path: by its flag when the command line gave it, else as the run's file
// (from its config.json when a resumed run took it from there).
static void name_path(char* out, size_t len, const Options* o, const RunDir* r, const char* flag, const char* what,
                      const char* path) {
    if (OPTION_GIVEN(o, flag)) snprintf(out, len, "%s '%s'", flag, path);
    else snprintf(out, len, "the run's %s '%s'%s", what, path, r->resumed_from_config ? " (from its config.json)" : "");
}

// The directory part of a path ("." for none).
static void dir_of(char* out, size_t len, const char* path) {
    snprintf(out, len, "%s", path);
    char* slash = strrchr(out, '/');
    if (!slash) snprintf(out, len, ".");
    else if (slash == out) out[1] = '\0';
    else *slash = '\0';
}

// Whether path's directory is one the run creates later (a new run's directory): nothing to check yet.
static int dir_comes_later(const RunDir* r, const char* path) {
    char dir[PATH_LEN];
    dir_of(dir, sizeof(dir), path);
    return r->create && !strcmp(dir, r->dir) && access(dir, F_OK) != 0;
}

// A file the run reads (a checkpoint): where it exists it must be a regular file, or loading it would
// block (a FIFO) or read forever (a device). Missing files are reported by their loader.
static void check_input(const char* flag, const char* path) {
    struct stat st;
    if (!path[0] || stat(path, &st) != 0 || S_ISREG(st.st_mode)) return;
    nn_fatal("%s '%s' is %s (not a regular file)", flag, path, nn_file_kind(st.st_mode));
}

// A file the run saves by writing PATH.tmp and renaming it over PATH (checkpoint.c): PATH, where it
// exists, is a regular file (a rename over a directory fails, and a FIFO or device is not what the
// user meant to replace); PATH.tmp, where a kill left it, is a regular file that can be overwritten
// (a FIFO would block the save, a directory fail it, both after an epoch of training); the directory
// takes new files. Nothing is created here, so a run that fails later leaves no trace.
static void check_saved(const char* name, const char* path, int dir_later) {
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) nn_fatal("%s is %s (not a regular file)", name, nn_file_kind(st.st_mode));
    char dir[PATH_LEN], tmp[PATH_LEN + 8];
    dir_of(dir, sizeof(dir), path);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (!dir_later && access(dir, W_OK | X_OK) != 0)
        nn_fatal("%s cannot be written: directory '%s': %s", name, dir, strerror(errno));
    if (stat(tmp, &st) != 0) return;
    if (!S_ISREG(st.st_mode))
        nn_fatal("%s cannot be saved: its temporary file '%s' is %s (not a regular file); remove it", name, tmp,
                 nn_file_kind(st.st_mode));
    if (access(tmp, W_OK) != 0) nn_fatal("%s cannot be written: '%s': %s", name, tmp, strerror(errno));
}

// The log is appended to or created in place: a regular file that can be written, or a new one in a
// writable directory. A device would never fill (/dev/zero) or always fail (/dev/full), a FIFO block.
static void check_log(const char* name, const char* path, int dir_later) {
    struct stat st;
    if (stat(path, &st) == 0) {
        if (!S_ISREG(st.st_mode)) nn_fatal("%s is %s (not a regular file)", name, nn_file_kind(st.st_mode));
        if (access(path, W_OK) != 0) nn_fatal("%s cannot be opened for writing: %s", name, strerror(errno));
        return;
    }
    char dir[PATH_LEN];
    dir_of(dir, sizeof(dir), path);
    if (!dir_later && access(dir, W_OK | X_OK) != 0)
        nn_fatal("%s cannot be opened for writing: directory '%s': %s", name, dir, strerror(errno));
}

// A path made comparable without the file existing: its directory resolved (links, "..") when that
// exists, else the path made absolute as written.
static void resolved(char* out, size_t len, const char* path) {
    char dir[PATH_LEN], real[PATH_MAX];
    dir_of(dir, sizeof(dir), path);
    const char* base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char cwd[PATH_LEN] = ".";
    if (realpath(dir, real)) snprintf(out, len, "%s/%s", real, base);
    else if (path[0] == '/' || !getcwd(cwd, sizeof(cwd))) snprintf(out, len, "%s", path);
    else snprintf(out, len, "%s/%s", cwd, path);
}

// Whether two paths name one file: the same device and inode when both exist (hard and symbolic
// links included), never when only one does, else the same resolved path.
static int same_path(const char* a, const char* b) {
    struct stat sa, sb;
    int ea = stat(a, &sa) == 0, eb = stat(b, &sb) == 0;
    if (ea && eb) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    if (ea || eb) return 0;
    char ra[PATH_LEN + PATH_MAX], rb[PATH_LEN + PATH_MAX];
    resolved(ra, sizeof(ra), a);
    resolved(rb, sizeof(rb), b);
    return !strcmp(ra, rb);
}

enum { WRITTEN = 1, CHECKPOINT = 2, INIT = 4 }; // what the run does with a path

typedef struct NamedPath {
    char name[2 * PATH_LEN + 128]; // how a message names it: "--log 'x'", "the run's config.json 'y'"
    char path[PATH_LEN + 8];
    int role;
} NamedPath;

static void add_path(NamedPath* list, int* n, int role, const char* path, const char* what, const char* suffix) {
    if (!path[0]) return;
    NamedPath* p = &list[(*n)++];
    snprintf(p->path, sizeof(p->path), "%s%s", path, suffix);
    if (suffix[0]) snprintf(p->name, sizeof(p->name), "the %s file '%s' of %s", strcmp(suffix, ".lock") ? "temporary" : "lock",
                            p->path, what);
    else snprintf(p->name, sizeof(p->name), "%s", what);
    p->role = role;
}

// Two of the run's paths that must not be one file: at least one is written, and they are not the
// checkpoint and the --init weights (--init F --checkpoint F: the first save replaces what the run
// started from, as asked).
static int conflict(const NamedPath* a, const NamedPath* b) {
    if (!((a->role | b->role) & WRITTEN)) return 0;
    if ((a->role | b->role) == (WRITTEN | CHECKPOINT | INIT)) return 0;
    return same_path(a->path, b->path);
}

// Every file the run writes, and the files it reads that a write could destroy: one path given for
// two of them (--log F --checkpoint F, --log at the data archive or at config.json) would make the
// run overwrite one with the other, silently, so it is refused before anything is written.
static void check_aliases(const Options* o, const RunDir* r) {
    NamedPath list[10];
    int n = 0;
    char name[PATH_LEN + 64], data[PATH_LEN], err[2048];
    name_path(name, sizeof(name), o, r, "--checkpoint", "checkpoint", o->checkpoint);
    add_path(list, &n, WRITTEN | CHECKPOINT, o->checkpoint, name, "");
    add_path(list, &n, WRITTEN, o->checkpoint, name, ".tmp");
    add_path(list, &n, WRITTEN, o->checkpoint, name, ".lock");
    name_path(name, sizeof(name), o, r, "--log", "log", o->log);
    add_path(list, &n, WRITTEN, o->log, name, "");
    snprintf(name, sizeof(name), "the run's config.json '%s'", r->config);
    add_path(list, &n, WRITTEN, r->config, name, "");
    add_path(list, &n, WRITTEN, r->config, name, ".tmp");
    snprintf(name, sizeof(name), "the run's final weights '%s'", r->final);
    add_path(list, &n, WRITTEN, r->final, name, "");
    add_path(list, &n, WRITTEN, r->final, name, ".tmp");
    const DatasetDef* ds = dataset_find(o->dataset); // options_parse refused unknown names
    if (ds->resolve(data, sizeof(data), o->data[0] ? o->data : NULL, DRNET_SOURCE_DIR, err, sizeof(err)) == 0) {
        snprintf(name, sizeof(name), "the data '%s'", data);
        add_path(list, &n, 0, data, name, "");
    }
    snprintf(name, sizeof(name), "--init '%s'", o->init);
    add_path(list, &n, INIT, o->init, name, "");
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (conflict(&list[i], &list[j]))
                nn_fatal("%s and %s are the same file: the run would overwrite one with the other; give them "
                         "different paths", list[i].name, list[j].name);
}

void guard_paths(const Options* o, const RunDir* r) {
    check_input("--resume", o->resume);
    check_input("--init", o->init);
    if (!options_training(o)) return;
    char name[PATH_LEN + 64];
    if (o->checkpoint[0]) {
        struct stat st;
        if (stat(o->checkpoint, &st) == 0 && S_ISDIR(st.st_mode))
            nn_fatal("--checkpoint '%s' is a directory; give a file name (e.g. %s/run.ckpt)", o->checkpoint,
                     o->checkpoint);
        name_path(name, sizeof(name), o, r, "--checkpoint", "checkpoint", o->checkpoint);
        check_saved(name, o->checkpoint, dir_comes_later(r, o->checkpoint));
    }
    if (o->log[0]) {
        name_path(name, sizeof(name), o, r, "--log", "log", o->log);
        check_log(name, o->log, dir_comes_later(r, o->log));
    }
    if (r->dir[0]) {
        snprintf(name, sizeof(name), "the run's final weights '%s'", r->final);
        check_saved(name, r->final, dir_comes_later(r, r->final));
    }
    check_aliases(o, r);
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
        char why[128];
        int fd = nn_open_file(lock_path, O_RDWR | O_CREAT, why, sizeof(why)); // a FIFO there: refused, not opened
        if (fd < 0 && errno == ENOENT) return 0; // the run's directory does not exist yet
        if (fd < 0) nn_fatal("--checkpoint '%s': cannot create its lock file '%s': %s", o->checkpoint, lock_path, why);
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
