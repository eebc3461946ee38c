// kill -9 never costs more than the work since the last save: a real training run is killed with
// SIGKILL at several moments -- while its checkpoint is being written (PATH.tmp present), and at
// random times (loading data, training, evaluating, saving) -- and after every kill the checkpoint
// must be either the previous one, byte for byte, or a newer complete one (it loads, CRCs pass, its
// step is larger); never damaged or missing. The run is then resumed from what is left and must
// finish normally. Usage: test_kill PATH-TO-TRAIN
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../nn/checkpoint.h"
#include "../nn/util.h"
#include "test_util.h"

static const char* train;
static char dir[256], data[300], ckpt[300], tmp[310], prev[300];

static pid_t start(const char* extra_flag, const char* extra_value, long max_steps) {
    char steps[32];
    snprintf(steps, sizeof(steps), "%ld", max_steps);
    char out[300];
    snprintf(out, sizeof(out), "%s/out", dir);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        FILE* f = freopen(out, "a", stdout);
        if (!f || dup2(fileno(stdout), 2) < 0) _exit(126);
        // width 0.5: a checkpoint of several MB, so that a write takes long enough to be hit
        execl(train, train, "mobilenet", "cifar10", "--device", "cpu", "--threads", "2", "--width", "0.5",
              "--batch", "16", "--limit-train", "32", "--limit-test", "16", "--epochs", "1000", "--data", data,
              "--checkpoint", ckpt, "--max-steps", steps, extra_flag, extra_value, (char*)NULL);
        _exit(127);
    }
    return pid;
}

static void pause_us(long us) {
    struct timespec ts = {us / 1000000, us % 1000000 * 1000};
    nanosleep(&ts, NULL);
}

static int file_equal(const char* a, const char* b) {
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "cmp -s %s %s", a, b);
    return system(cmd) == 0;
}

// The step a complete checkpoint holds, or -1 if there is none (-2: damaged).
static long saved_step(const char* path) {
    if (access(path, F_OK) != 0) return -1;
    Checkpoint c;
    char err[1200];
    if (ckpt_load(&c, path, err, sizeof(err)) != 0) {
        CHECK(0, "after kill -9 the checkpoint is damaged: %s", err);
        return -2;
    }
    int64_t step = -2;
    CHECK(ckpt_get_i64(&c, "train.step", &step) == 0, "checkpoint without train.step");
    ckpt_free(&c);
    return (long)step;
}

// One run killed at a moment chosen by mode: 0 = while the checkpoint is being written, 1 = after
// a random delay. Returns 1 if the kill landed while PATH.tmp existed (mid-write).
static int kill_once(int mode, unsigned* seed) {
    long before = saved_step(ckpt);
    if (before >= 0) {
        char cmd[700];
        snprintf(cmd, sizeof(cmd), "cp %s %s", ckpt, prev);
        CHECK(system(cmd) == 0, "%s", cmd);
    }
    // A kill mid-write leaves a stale PATH.tmp. The next run copes with it (it truncates it), which
    // the random-time kills check; before a kill aimed at a write it is removed, so that the test
    // sees when the next write begins.
    if (mode == 0) unlink(tmp);
    pid_t pid = before >= 0 ? start("--resume", ckpt, 1L << 40) : start("--out", test_run_dir(dir), 1L << 40);
    double t0 = nn_now(), delay = 0.5 + 4.0 * rand_r(seed) / RAND_MAX;
    int status = 0, mid_write = 0, exited = 0;
    for (;;) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            exited = 1;
            break;
        }
        int writing = access(tmp, F_OK) == 0;
        // a random-time kill comes after the run's first save: on a busy machine the first save
        // can take longer than any fixed delay, and a run killed before it would prove nothing
        if (mode == 1 && before < 0 && access(ckpt, F_OK) != 0) t0 = nn_now();
        if ((mode == 0 && writing) || (mode == 1 && nn_now() - t0 > delay) || nn_now() - t0 > 120) {
            if (mode == 0) pause_us(rand_r(seed) % 3000); // somewhere inside the write
            kill(pid, SIGKILL);
            mid_write = mode == 0 && access(tmp, F_OK) == 0;
            waitpid(pid, &status, 0);
            break;
        }
        pause_us(200);
    }
    CHECK(!exited, "the run ended by itself (status %d) before it was killed", status);
    long after = saved_step(ckpt);
    const char* what;
    if (after == before && (before < 0 || file_equal(ckpt, prev))) what = "the previous checkpoint, unchanged";
    else if (after > before) what = "a newer complete checkpoint";
    else what = NULL;
    CHECK(what != NULL, "after kill -9 the checkpoint went from step %ld to %ld", before, after);
    printf("killed %s (%.2f s after start%s): %s (step %ld -> %ld)\n",
           mode == 0 ? "while saving" : "at a random time", nn_now() - t0, mid_write ? ", PATH.tmp half written" : "",
           what ? what : "DAMAGED", before, after);
    return mid_write;
}

int main(int argc, char** argv) {
    if (argc < 2) nn_fatal("usage: test_kill PATH-TO-TRAIN");
    train = argv[1];
    char why[600];
    if (!test_data_path(why, sizeof(why))) {
        printf("skipped: %s\n", why);
        return TEST_SKIP;
    }
    snprintf(dir, sizeof(dir), "/tmp/drnet-kill-XXXXXX");
    if (!mkdtemp(dir)) nn_fatal("mkdtemp failed");
    snprintf(ckpt, sizeof(ckpt), "%s/run.ckpt", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", ckpt);
    snprintf(prev, sizeof(prev), "%s/prev.ckpt", dir);
    // A folder, so that each of the many starts loads in a fraction of a second.
    test_data_folder(dir, data, sizeof(data));

    unsigned seed = 12345;
    int mid_writes = 0, kills = 0;
    // First a random kill (maybe before any save), then alternate; at least 3 mid-write kills wanted.
    for (int i = 0; i < 12 && !test_failures && (kills < 6 || mid_writes < 3); i++, kills++)
        mid_writes += kill_once(i % 2 == 0 ? 1 : 0, &seed);
    CHECK(mid_writes >= 1, "no kill landed while the checkpoint was being written (%d kills)", kills);
    printf("%d kills, %d of them while the checkpoint was half written\n", kills, mid_writes);

    // What is left resumes and finishes normally.
    long step = saved_step(ckpt);
    CHECK(step >= 0, "no checkpoint after %d kills", kills);
    pid_t pid = start("--resume", ckpt, step + 2);
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the resumed run failed (status %d)", status);
    CHECK(saved_step(ckpt) == step + 2, "the resumed run saved step %ld, expected %ld", saved_step(ckpt), step + 2);
    printf("resumed at step %ld and finished at step %ld\n", step, step + 2);
    char cmd[400];
    if (test_failures) {
        snprintf(cmd, sizeof(cmd), "tail -20 %s/out", dir);
        if (system(cmd) != 0) fprintf(stderr, "(no output)\n");
    }
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    return test_finish("test_kill");
}
