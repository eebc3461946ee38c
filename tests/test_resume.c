// --resume continues a run bit-identically: a run stopped by --max-steps 5 and resumed to step 12
// (crossing an epoch boundary, with augmentation and a cosine schedule) must end with exactly the
// checkpoint of an uninterrupted 12-step run — every weight, momentum, running statistic, position
// and metric; only the wall-clock record may differ; for each registered model (MobileNet and
// MobileNetV2). Also: a resumed run refuses a contradicting recipe flag and a checkpoint of another
// model, and a corrupted checkpoint is refused by ./train.
// Usage: test_resume PATH-TO-TRAIN [cpu|cuda]. cuda trains on the GPU with --deterministic (cuDNN
// algorithms chosen by heuristics, never by timing, and free of atomics: the only way two GPU
// processes compute the same bits); it skips without a usable GPU (fails under DRNET_REQUIRE_GPU).
#define _POSIX_C_SOURCE 200809L
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
static const char* device_args = "--device cpu"; // pinned: auto would train on a GPU where there is one
static int on_gpu;                                // the cuda variant (its runs log the cuDNN searches)
static char dir[256];
static const char* model = "mobilenet"; // the MODEL word of the runs

static int run(const char* args, const char* out) {
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "%s %s cifar10 --width 0.125 --batch 32 --limit-train 256 "
             "--limit-test 64 --epochs 3 --threads 2 %s %s %s > %s/%s 2>&1", train, model, device_args, args,
             test_out_flag(dir, args), dir, out);
    int status = system(cmd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

// A run's output for a failed check (tests/test_util.c: without the cuDNN candidate tables that
// DRNET_CUDA_VERBOSE=1 adds), and the algorithms it chose.
static void show(const char* out) { test_show_output(dir, out, 0); }
static void show_algorithms(const char* out) { test_show_algorithms(dir, out); }

static void expect_precision(const char* path, const char* want) {
    Checkpoint c;
    char err[1200], word[16] = "";
    if (!CHECK(ckpt_load(&c, path, err, sizeof(err)) == 0, "%s", err)) return;
    CHECK(ckpt_get_str(&c, "recipe.precision", word, sizeof(word)) == 0 && !strcmp(word, want),
          "%s: recipe.precision is '%s', expected '%s'", path, word, want);
    ckpt_free(&c);
}

static int output_has(const char* out, const char* text) {
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "grep -qF -e '%s' %s/%s", text, dir, out);
    return system(cmd) == 0;
}

// --precision is part of the recipe (recipe.precision): a resume continues in it, a contradicting
// flag is refused, and a checkpoint from before the flag (no record) continues in FP32. a: the FP32
// run's checkpoint, b_path (copied here without the record).
static void check_precision(const char* b_path) {
    char args[1024], p_path[300], old_path[300], err[1200];
    snprintf(p_path, sizeof(p_path), "%s/p.ckpt", dir);
    snprintf(old_path, sizeof(old_path), "%s/old.ckpt", dir);
    expect_precision(b_path, "fp32");
    snprintf(args, sizeof(args), "--max-steps 3 --precision bf16 --checkpoint %s", p_path);
    CHECK(run(args, "p1.out") == 0, "a --precision bf16 run failed");
    expect_precision(p_path, "bf16");
    snprintf(args, sizeof(args), "--resume %s --precision fp32 --max-steps 4", p_path);
    CHECK(run(args, "p2.out") == 2, "--resume of a bf16 run with --precision fp32 was not refused with 2");
    CHECK(output_has("p2.out", "--precision fp32 contradicts"), "the refusal does not name --precision fp32");
    snprintf(args, sizeof(args), "--resume %s --max-steps 4 --checkpoint %s", p_path, p_path);
    CHECK(run(args, "p3.out") == 0, "resuming the bf16 run failed");
    CHECK(output_has("p3.out", "precision: bf16 mixed precision"), "the resumed run does not say it runs bf16");
    expect_precision(p_path, "bf16");

    // The same FP32 checkpoint without recipe.precision, as runs before the flag wrote it.
    Checkpoint b;
    CkptWriter w;
    if (!CHECK(ckpt_load(&b, b_path, err, sizeof(err)) == 0, "%s", err)) return;
    CHECK(ckpt_begin(&w, old_path, err, sizeof(err)) == 0, "%s", err);
    for (int i = 0; i < b.count; i++) {
        const CkptRecord* r = &b.records[i];
        if (strcmp(r->name, "recipe.precision") != 0)
            ckpt_put(&w, r->name, r->dtype, r->ndim, r->dims, r->data, r->nbytes);
    }
    CHECK(ckpt_commit(&w, err, sizeof(err)) == 0, "%s", err);
    ckpt_free(&b);
    snprintf(args, sizeof(args), "--resume %s --max-steps 13 --checkpoint %s", old_path, old_path);
    CHECK(run(args, "old.out") == 0, "a checkpoint without recipe.precision did not resume");
    CHECK(!output_has("old.out", "precision: bf16"), "a checkpoint without recipe.precision resumed in bf16");
    expect_precision(old_path, "fp32");
    if (test_failures) show("p1.out"), show("p2.out"), show("p3.out"), show("old.out");
}

// A run of `name` stopped at step 5 and resumed to 12 against an uninterrupted 12-step run: every
// record bit-identical. b_path gets the resumed run's checkpoint (step 12).
static void resume_identical(const char* name, char* b_path, size_t len) {
    model = name;
    char args[2048], a_path[300];
    snprintf(a_path, sizeof(a_path), "%s/%s-a.ckpt", dir, name);
    snprintf(b_path, len, "%s/%s-b.ckpt", dir, name);

    snprintf(args, sizeof(args), "--max-steps 12 --checkpoint %s", a_path);
    int rc = run(args, "a.out");
    CHECK(rc == 0, "uninterrupted run exited %d", rc);
    snprintf(args, sizeof(args), "--max-steps 5 --checkpoint %s", b_path);
    rc = run(args, "b1.out");
    CHECK(rc == 0, "first half exited %d", rc);
    snprintf(args, sizeof(args), "--resume %s --max-steps 12 --checkpoint %s", b_path, b_path);
    rc = run(args, "b2.out");
    CHECK(rc == 0, "resumed half exited %d", rc);
    if (test_failures) show("a.out"), show("b1.out"), show("b2.out");

    Checkpoint a, b;
    char err[1200];
    CHECK(ckpt_load(&a, a_path, err, sizeof(err)) == 0, "%s", err);
    CHECK(ckpt_load(&b, b_path, err, sizeof(err)) == 0, "%s", err);
    CHECK(a.count == b.count && a.count > 100, "record counts %d and %d", a.count, b.count);
    int compared = 0;
    for (int i = 0; i < a.count && i < b.count; i++) {
        const CkptRecord *ra = &a.records[i], *rb = ckpt_find(&b, ra->name);
        if (test_wall_clock(ra->name)) continue;
        if (!CHECK(rb != NULL, "record '%s' missing after resume", ra->name)) continue;
        CHECK(ra->nbytes == rb->nbytes && memcmp(ra->data, rb->data, ra->nbytes) == 0,
              "record '%s' differs between the uninterrupted and the resumed run", ra->name);
        compared++;
    }
    int64_t step = 0, epoch = -1;
    ckpt_get_i64(&a, "train.step", &step);
    ckpt_get_i64(&a, "train.epoch", &epoch);
    CHECK(step == 12 && epoch == 1, "expected the run to stop at step 12 in the second epoch, got step %lld epoch %lld",
          (long long)step, (long long)epoch);
    printf("resume, %s: %d records bit-identical after 5 + 7 steps vs 12 steps\n", name, compared);
    if (test_failures && on_gpu)
        show_algorithms("a.out"), show_algorithms("b2.out"); // the resumed run must have chosen alike

    ckpt_free(&a), ckpt_free(&b);
}

int main(int argc, char** argv) {
    if (argc < 2 || (argc > 2 && strcmp(argv[2], "cpu") && strcmp(argv[2], "cuda")))
        nn_fatal("usage: test_resume PATH-TO-TRAIN [cpu|cuda]");
    train = argv[1];
    if (argc > 2 && !strcmp(argv[2], "cuda")) {
        char why[512] = "";
        BackendOptions opt = {.deterministic = 1};
        if (!backend_cuda_compiled()) return test_gpu_unavailable("test_resume", "this build has no CUDA backend");
        if (!backend_open("cuda", &opt, why, sizeof(why))) return test_gpu_unavailable("test_resume", why);
        device_args = "--device cuda --deterministic", on_gpu = 1;
        setenv("DRNET_CUDA_VERBOSE", "1", 1); // every algorithm search in the outputs, for a failure
    }
    char why[600];
    if (!test_data_path(why, sizeof(why))) {
        // On a GPU machine (DRNET_REQUIRE_GPU=1) a GPU test that cannot run fails, whatever the reason.
        if (on_gpu) return test_gpu_unavailable("test_resume", why);
        printf("skipped: %s\n", why);
        return TEST_SKIP;
    }
    snprintf(dir, sizeof(dir), "/tmp/drnet-resume-XXXXXX");
    if (!mkdtemp(dir)) nn_fatal("mkdtemp failed");
    char args[2048], b_path[300], v2_path[300];
    resume_identical("mobilenetv2", v2_path, sizeof(v2_path));
    resume_identical("mobilenet", b_path, sizeof(b_path));
    // A checkpoint of one model is refused by a run of the other, naming both.
    snprintf(args, sizeof(args), "--resume %s --max-steps 13", v2_path);
    int rc = run(args, "other.out");
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "grep -q \"holds model 'mobilenetv2', not 'mobilenet'\" %s/other.out", dir);
    CHECK(rc != 0 && system(cmd) == 0, "a mobilenet run resumed from a mobilenetv2 checkpoint (exit %d)", rc);
    if (test_failures) show("other.out");

    // A contradicting recipe flag is refused with exit code 2.
    snprintf(args, sizeof(args), "--resume %s --lr 0.05 --max-steps 13", b_path);
    rc = run(args, "lr.out");
    CHECK(rc == 2, "--resume with a different --lr exited %d, expected 2", rc);

    check_precision(b_path);

    // A corrupted checkpoint is refused, and says why.
    FILE* f = NN_FOPEN(b_path, "r+b");
    fseek(f, -9, SEEK_END);
    fputc(0x42, f);
    fclose(f);
    snprintf(args, sizeof(args), "--resume %s --max-steps 13", b_path);
    rc = run(args, "corrupt.out");
    CHECK(rc != 0, "a corrupted checkpoint was accepted");
    snprintf(cmd, sizeof(cmd), "grep -q 'CRC32' %s/corrupt.out", dir);
    CHECK(system(cmd) == 0, "no CRC message for a corrupted checkpoint");
    if (test_failures) show("lr.out"), show("corrupt.out");

    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    return test_finish("test_resume");
}
