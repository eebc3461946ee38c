// Data-parallel training (train/dist.c) against gradient accumulation, through ./train.
//
//   test_dist mpi  TRAIN MPIEXEC   two processes (mpiexec -n 2) against one with --accum-steps 2,
//                                  same global batch: the weights and momentum are bit-identical after
//                                  every step (each run prints a hash per step, DRNET_CHECK_REPLICAS=1)
//                                  and in the final checkpoint, and the ranks' replicas agree after
//                                  every step; running statistics agree to rounding (they are combined
//                                  in a different order). Checkpoints cross over: a 2-process checkpoint
//                                  resumed by one process with --accum-steps 2, and a 1-process one
//                                  resumed by 2 processes, continue as the uninterrupted run.
//                                  MPIEXEC "none" (a build without MPI): skipped (77).
//   test_dist nccl TRAIN           the NCCL path on one GPU: a one-rank NCCL communicator
//                                  (DRNET_DIST_NCCL=1) sums the gradients; one step must match one
//                                  without NCCL to 1e-5, 3 steps must run, and the runs must say they
//                                  used NCCL. All runs use --deterministic: two processes that timed
//                                  cuDNN's algorithms could choose differently (and atomic ones), which
//                                  the comparison would mistake for NCCL's doing. Skipped (77) without a
//                                  GPU or without NCCL in the build, a failure instead when
//                                  DRNET_REQUIRE_GPU=1.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../nn/backend.h"
#include "../nn/checkpoint.h"
#include "../nn/util.h"
#include "test_util.h"

static const char* train;
static const char* mpiexec;
static char dir[256];

// Runs ./train (under mpiexec -n np when np > 0) with the common small recipe and `args`; output to dir/out.
static int run(int np, const char* args, const char* out) {
    char cmd[4096], launcher[600] = "";
    if (np > 0) snprintf(launcher, sizeof(launcher), "%s -n %d ", mpiexec, np);
    snprintf(cmd, sizeof(cmd), "%s%s mobilenet cifar10 --width 0.125 --batch 32 --limit-train 240 "
             "--limit-test 64 --epochs 2 --threads 1 --device cpu %s %s > %s/%s 2>&1", launcher, train, args,
             test_out_flag(dir, args), dir, out);
    int status = system(cmd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

// A run's output for a failed check (tests/test_util.c: without the cuDNN candidate tables that
// DRNET_CUDA_VERBOSE=1 adds), and the algorithms it chose.
static void show(const char* out) { test_show_output(dir, out, 40); }
static void show_algorithms(const char* out) { test_show_algorithms(dir, out); }

static int contains(const char* out, const char* needle) {
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "grep -qF -- '%s' %s/%s", needle, dir, out);
    return system(cmd) == 0;
}

// The per-step hashes "check: step S weights H" of an output: hashes[S] (0 when absent).
#define MAX_STEPS 64
static void read_hashes(const char* out, unsigned long long hashes[MAX_STEPS]) {
    char path[400], line[512];
    snprintf(path, sizeof(path), "%s/%s", dir, out);
    memset(hashes, 0, MAX_STEPS * sizeof(hashes[0]));
    FILE* f = fopen(path, "r");
    if (!f) return;
    while (fgets(line, sizeof(line), f)) {
        long step;
        unsigned long long h;
        if (sscanf(line, "check: step %ld weights %llx", &step, &h) == 2 && step > 0 && step < MAX_STEPS) hashes[step] = h;
    }
    fclose(f);
}

static void compare_hashes(const char* what, const char* a_out, const char* b_out, int from, int to) {
    unsigned long long a[MAX_STEPS], b[MAX_STEPS];
    read_hashes(a_out, a);
    read_hashes(b_out, b);
    for (int s = from; s <= to; s++)
        CHECK(a[s] && a[s] == b[s], "%s: weights after step %d differ (hash %016llx in %s, %016llx in %s)",
              what, s, a[s], a_out, b[s], b_out);
}

// Checkpoints a and b: parameters, momentum, the recipe and the position bit-identical (or within
// `weights_tol` relative when positive); running statistics and the epoch's loss sum within 1e-5
// relative (max |a - b| / max |b|), the wall clock ignored.
static void compare_ckpts(const char* what, const char* a_name, const char* b_name, double weights_tol) {
    char pa[400], pb[400], err[1200];
    snprintf(pa, sizeof(pa), "%s/%s", dir, a_name);
    snprintf(pb, sizeof(pb), "%s/%s", dir, b_name);
    Checkpoint a, b;
    if (!CHECK(ckpt_load(&a, pa, err, sizeof(err)) == 0, "%s: %s", what, err)) return;
    if (!CHECK(ckpt_load(&b, pb, err, sizeof(err)) == 0, "%s: %s", what, err)) return;
    CHECK(a.count == b.count && a.count > 100, "%s: record counts %d and %d", what, a.count, b.count);
    int exact = 0, close = 0;
    double worst = 0;
    const char* worst_name = "";
    for (int i = 0; i < a.count; i++) {
        const CkptRecord *ra = &a.records[i], *rb = ckpt_find(&b, ra->name);
        if (test_wall_clock(ra->name)) continue;
        if (!CHECK(rb && rb->nbytes == ra->nbytes && rb->dtype == ra->dtype, "%s: record '%s' missing or "
                   "of another size in %s", what, ra->name, b_name)) continue;
        int loose = strstr(ra->name, ".running_") || !strcmp(ra->name, "train.epoch_loss_sum");
        double tol = loose ? 1e-5 : weights_tol;
        if (tol > 0 && ra->dtype == CKPT_F32) {
            const float *x = ra->data, *y = rb->data;
            size_t n = ra->nbytes / sizeof(float);
            double diff = 0, scale = 0;
            for (size_t j = 0; j < n; j++) {
                diff = fmax(diff, fabs((double)x[j] - y[j]));
                scale = fmax(scale, fabs((double)y[j]));
            }
            double rel = scale > 0 ? diff / scale : diff;
            if (!(rel <= tol)) rel = INFINITY;
            CHECK(rel <= tol, "%s: '%s' differs by %.3e relative (bound %.0e)", what, ra->name, rel, tol);
            if (rel > worst) worst = rel, worst_name = ra->name;
            close++;
        } else {
            CHECK(memcmp(ra->data, rb->data, ra->nbytes) == 0, "%s: record '%s' differs", what, ra->name);
            exact++;
        }
    }
    printf("%s: %d records bit-identical, %d within bounds (largest difference %.2e relative, %s)\n", what,
           exact, close, worst, worst_name);
    ckpt_free(&a);
    ckpt_free(&b);
}

static int test_mpi(void) {
    // Open MPI only reads these; they let CI (root, maybe fewer cores than processes) launch.
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
    setenv("DRNET_CHECK_REPLICAS", "1", 1);
    // 240 images in batches of 32: 7 full steps and a last one of 16, which only rank 0 has data for,
    // then into the second epoch; the runs stop at step 10.
    char args[1024];
    snprintf(args, sizeof(args), "--accum-steps 2 --max-steps 10 --checkpoint %s/a.ckpt", dir);
    CHECK(run(0, args, "a.out") == 0, "one process with --accum-steps 2 failed");
    snprintf(args, sizeof(args), "--max-steps 10 --checkpoint %s/b.ckpt", dir);
    CHECK(run(2, args, "b.out") == 0, "two processes failed");
    for (int s = 1; s <= 10; s++) {
        char needle[64];
        snprintf(needle, sizeof(needle), "check: step %d replicas identical on 2 ranks", s);
        CHECK(contains("b.out", needle), "two processes: no '%s'", needle);
    }
    CHECK(contains("b.out", "parallel: 2 processes"), "two processes: no 'parallel: 2 processes' line");
    compare_hashes("2 processes vs --accum-steps 2", "a.out", "b.out", 1, 10);
    compare_ckpts("2 processes vs --accum-steps 2", "a.ckpt", "b.ckpt", 0);
    if (test_failures) show("a.out"), show("b.out");

    // A 2-process checkpoint continued by one process (--accum-steps 2), and a 1-process checkpoint
    // continued by two: both must end where the uninterrupted run did.
    int before = test_failures;
    snprintf(args, sizeof(args), "--max-steps 5 --checkpoint %s/c.ckpt", dir);
    CHECK(run(2, args, "c1.out") == 0, "two processes (first 5 steps) failed");
    snprintf(args, sizeof(args), "--accum-steps 2 --resume %s/c.ckpt --max-steps 10 --checkpoint %s/c.ckpt", dir, dir);
    CHECK(run(0, args, "c2.out") == 0, "one process resuming the 2-process checkpoint failed");
    compare_hashes("2 processes, resumed by 1", "a.out", "c2.out", 6, 10);
    compare_ckpts("2 processes, resumed by 1", "a.ckpt", "c.ckpt", 0);
    snprintf(args, sizeof(args), "--accum-steps 2 --max-steps 5 --checkpoint %s/d.ckpt", dir);
    CHECK(run(0, args, "d1.out") == 0, "one process (first 5 steps) failed");
    snprintf(args, sizeof(args), "--resume %s/d.ckpt --max-steps 10 --checkpoint %s/d.ckpt", dir, dir);
    CHECK(run(2, args, "d2.out") == 0, "two processes resuming the 1-process checkpoint failed");
    compare_hashes("1 process, resumed by 2", "a.out", "d2.out", 6, 10);
    compare_ckpts("1 process, resumed by 2", "a.ckpt", "d.ckpt", 0);
    if (test_failures > before) show("c1.out"), show("c2.out"), show("d1.out"), show("d2.out");

    // A batch that does not split over the processes is refused, naming the flags.
    int rc = run(2, "--batch 30 --accum-steps 2 --max-steps 1", "e.out");
    CHECK(rc == 2 && contains("e.out", "--batch 30 does not split into --accum-steps 2 x 2 processes"),
          "--batch 30 on 2 processes with --accum-steps 2: exit %d, expected 2 and a message", rc);
    if (rc != 2) show("e.out");
    return test_finish("test_dist mpi");
}

// Whether the NCCL test can run here: 1, or 0 after saying why (exit 77, or 1 with DRNET_REQUIRE_GPU=1).
static int nccl_ready(int* rc) {
    char err[512] = "no CUDA backend in this build";
    const Backend* be = backend_cuda_compiled() ? backend_open("cuda", &(BackendOptions){0}, err, sizeof(err)) : NULL;
#ifndef WITH_NCCL
    if (backend_cuda_compiled()) be = NULL, snprintf(err, sizeof(err), "this build has no NCCL (nccl.h and libnccl were not found)");
#endif
    if (be) return 1;
    *rc = test_gpu_unavailable("test_dist nccl", err);
    return 0;
}

static int test_nccl(void) {
    // Plain and through a one-rank NCCL communicator, one step and then three, TF32 off, cuDNN's
    // algorithms chosen alike in every process (--deterministic, see the top of the file).
    char args[1024];
    const char* common = "--device cuda --tf32 off --dw-group 32 --deterministic";
    setenv("DRNET_CUDA_VERBOSE", "1", 1); // every algorithm search in the outputs, for a failure
    for (int steps = 1; steps <= 3; steps += 2) {
        char a[32], b[32], ca[32], cb[32];
        snprintf(a, sizeof(a), "plain%d.out", steps), snprintf(ca, sizeof(ca), "plain%d.ckpt", steps);
        snprintf(b, sizeof(b), "nccl%d.out", steps), snprintf(cb, sizeof(cb), "nccl%d.ckpt", steps);
        snprintf(args, sizeof(args), "%s --max-steps %d --checkpoint %s/%s", common, steps, dir, ca);
        CHECK(run(0, args, a) == 0, "plain CUDA run failed");
        setenv("DRNET_DIST_NCCL", "1", 1);
        snprintf(args, sizeof(args), "%s --max-steps %d --checkpoint %s/%s", common, steps, dir, cb);
        CHECK(run(0, args, b) == 0, "CUDA run with NCCL failed");
        unsetenv("DRNET_DIST_NCCL");
        CHECK(contains(b, "gradients summed by NCCL"), "the NCCL run does not say it used NCCL");
        // One step from the same weights: equal to rounding (a one-rank sum copies). The 3-step runs
        // must only run and say NCCL.
        if (steps == 1) compare_ckpts("1 step, NCCL vs plain", ca, cb, 1e-5);
        if (test_failures) show(a), show(b), show_algorithms(a), show_algorithms(b);
    }
    return test_finish("test_dist nccl");
}

int main(int argc, char** argv) {
    if (argc < 3 || (strcmp(argv[1], "mpi") && strcmp(argv[1], "nccl")))
        nn_fatal("usage: test_dist mpi TRAIN MPIEXEC | test_dist nccl TRAIN");
    train = argv[2];
    mpiexec = argc > 3 ? argv[3] : "none";
    if (!strcmp(argv[1], "mpi") && !strcmp(mpiexec, "none")) {
        printf("skipped: this build has no MPI (install libopenmpi-dev and reconfigure)\n");
        return TEST_SKIP;
    }
    int rc;
    if (!strcmp(argv[1], "nccl")) {
        // NCCL says nothing by default; WARN names what failed. Its bootstrap opens a socket on some
        // interface even for one process: loopback is always there, where a sandbox's other
        // interfaces may not be usable. Both can be overridden from the environment.
        setenv("NCCL_DEBUG", "WARN", 0);
        setenv("NCCL_SOCKET_IFNAME", "lo", 0);
        printf("test_dist nccl: NCCL_DEBUG=%s, NCCL_SOCKET_IFNAME=%s (the bootstrap interface)\n",
               getenv("NCCL_DEBUG"), getenv("NCCL_SOCKET_IFNAME"));
        if (!nccl_ready(&rc)) return rc;
    }
    char why[600];
    if (!test_data_path(why, sizeof(why))) {
        // The NCCL test is a GPU test: under DRNET_REQUIRE_GPU=1 it fails, for any reason it cannot run.
        if (!strcmp(argv[1], "nccl")) return test_gpu_unavailable("test_dist nccl", why);
        printf("skipped: %s\n", why);
        return TEST_SKIP;
    }
    snprintf(dir, sizeof(dir), "/tmp/drnet-dist-XXXXXX");
    if (!mkdtemp(dir)) nn_fatal("mkdtemp failed");
    rc = !strcmp(argv[1], "mpi") ? test_mpi() : test_nccl();
    if (rc == 0) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0) fprintf(stderr, "(could not remove %s)\n", dir);
    }
    return rc;
}
