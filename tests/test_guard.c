// What ./train does when something is wrong, each case provoked for real: crafted checkpoints whose
// CRCs pass but whose values no command line could give (tests/crafted/*.bin) are refused naming
// the file and the record; an unwritable --checkpoint or --log, a FIFO, device or directory where a
// file belongs (never opened: a FIFO would block), and one path for two of the run's files are refused
// at start-up, before the data is read; a --log write error stops the run; a NaN test loss and non-finite weights stop the
// run with the epoch and step, exit 1 and leave the previous checkpoint byte for byte; resuming with
// another --threads says that bit-identity is lost; the run's clock carries across --resume (and a
// damaged one is refused). Usage: test_guard PATH-TO-TRAIN
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../nn/checkpoint.h"
#include "../nn/util.h"
#include "test_util.h"

static const char* train;
static char dir[256];
static char data_flag[400]; // --data DIR: a folder, so that each run loads quickly (test_data_folder)

static char* slurp(const char* path) {
    FILE* f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char* s = NN_MALLOC((size_t)n + 1);
    s[fread(s, 1, (size_t)n, f)] = 0;
    fclose(f);
    return s;
}

// Runs ./train with args (after the small model's recipe unless args start with "--resume"); output
// goes to dir/out. Returns the exit status.
static int run(const char* args, const char* out) {
    char cmd[4096];
    const char* small = strncmp(args, "--resume", 8) == 0 ? "" : "--width 0.125 --batch 32 --epochs 2";
    // timeout: a run that blocks (a FIFO opened for reading or writing) fails instead of hanging the suite
    const char* limit = getenv("DRNET_TEST_TIMEOUT");
    snprintf(cmd, sizeof(cmd), "timeout -k 10 %s %s mobilenet cifar10 --device cpu --limit-train 64 --limit-test 32 "
             "--threads 2 %s %s %s %s > %s/%s 2>&1", limit ? limit : "120", train, data_flag, small, args, test_out_flag(dir, args), dir, out);
    int status = system(cmd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// ./train ARGS must exit with code and print every needle (NULL-terminated).
static void expect(int code, const char* what, const char* args, const char* const* needles) {
    int rc = run(args, "out");
    char path[300];
    snprintf(path, sizeof(path), "%s/out", dir);
    char* out = slurp(path);
    int ok = CHECK(rc == code, "%s: exit %d, expected %d", what, rc, code);
    for (int i = 0; needles[i]; i++)
        ok &= CHECK(out && strstr(out, needles[i]), "%s: output lacks '%s'", what, needles[i]);
    if (!ok) fprintf(stderr, "    output:\n%s\n", out ? out : "(none)");
    else printf("ok   %-34s exit %d\n", what, rc);
    free(out);
}

static int same_file(const char* a, const char* b) {
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "cmp -s %s %s", a, b);
    return system(cmd) == 0;
}

// Copies checkpoint src to dst with fill applied to the data of the named records; with drop, the
// named records are left out instead (a checkpoint from an older version).
static void copy_checkpoint(const char* src, const char* dst, const char* const* names, float value, int drop) {
    Checkpoint c;
    CkptWriter w;
    char err[1200];
    if (ckpt_load(&c, src, err, sizeof(err))) nn_fatal("%s", err);
    if (ckpt_begin(&w, dst, err, sizeof(err))) nn_fatal("%s", err);
    for (int i = 0; i < c.count; i++) {
        CkptRecord* r = &c.records[i];
        int named = 0;
        for (int k = 0; names[k]; k++) named |= !strcmp(r->name, names[k]);
        if (named && drop) continue;
        if (named)
            for (size_t j = 0; j < r->nbytes / 4; j++) ((float*)r->data)[j] = value;
        ckpt_put(&w, r->name, r->dtype, r->ndim, r->dims, r->data, r->nbytes);
    }
    if (ckpt_commit(&w, err, sizeof(err))) nn_fatal("%s", err);
    ckpt_free(&c);
}

static void rewrite(const char* src, const char* dst, const char* const* names, float value) {
    copy_checkpoint(src, dst, names, value, 0);
}

// The run's clock (elapsed time, the summary's total) goes on from where the checkpoint left it: 3600 s
// in the file make the resumed run's total "1:00:xx"; NaN there is refused as damage; a checkpoint
// from before the record takes the time its log records instead.
static void run_clock(const char* base, const char* bad) {
    static const char* const clock[] = {"train.run_seconds", NULL};
    char args[1200], named[400], log[300];
    rewrite(base, bad, clock, 3600.0f);
    snprintf(args, sizeof(args), "--resume %s --max-steps 2", bad);
    expect(0, "resume: the run's clock carries on", args, (const char*[]){"(step 2), 1:00:", "in this session", NULL});
    rewrite(base, bad, clock, NAN);
    snprintf(named, sizeof(named), "checkpoint '%s': train.run_seconds is nan", bad);
    expect(1, "resume: a NaN run clock", args, (const char*[]){named, NULL});
    copy_checkpoint(base, bad, clock, 0, 1);
    snprintf(log, sizeof(log), "%s/old.jsonl", dir);
    FILE* f = NN_FOPEN(log, "w");
    fprintf(f, "{\"epoch\": 1, \"step\": 1, \"train_loss\": 2.3, \"train_acc\": 10.0, \"test_loss\": 2.3, "
            "\"test_acc\": 10.0, \"lr\": 0.1, \"seconds\": 7200.0, \"img_per_s\": 1.0}\n");
    fclose(f);
    snprintf(args, sizeof(args), "--resume %s --max-steps 2 --log %s", bad, log);
    expect(0, "resume: an older checkpoint's clock from its log", args, (const char*[]){"(step 2), 2:00:", NULL});
}

static void crafted_checkpoints(void) {
    static const char* const cases[][2] = {
        {"batch_zero.bin", "recipe.batch is 0"},
        {"batch_huge.bin", "recipe.batch is 1099511627776"},
        {"epochs_zero.bin", "recipe.epochs is 0"},
        {"dw_groups_negative.bin", "meta.dw_groups is -4"},
        {"schedule_unknown.bin", "recipe.schedule is 'linear'"},
        {"warmup_nan.bin", "recipe.warmup_epochs is nan"},
        {"width_nan.bin", "meta.width is nan"},
        {"lr_inf.bin", "recipe.lr is inf"},
        {"epoch_negative.bin", "train.epoch is out of range"},
        {"seen_huge.bin", "train.epoch_seen is out of range"},
        {"no_tensors.bin", "has no tensor 'conv1.weight'"},
        {"width_tiny.bin", "meta.width is 0.01, expected a number in 0.03125..16"},
        {"micro_batches_3.bin", "recipe.micro_batches is 3, expected a divisor of recipe.batch 32"},
        {"classes_f32.bin", "meta.num_classes is not an int64 scalar"},
        {"model_number.bin", "meta.model is not a string"},
        {"width_huge.bin", "a MobileNet of width 16 (meta.width) has 805.3 M parameters and statistics"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[1024], args[1200], named[1100];
        snprintf(path, sizeof(path), "%s/tests/crafted/%s", DRNET_SOURCE_DIR, cases[i][0]);
        snprintf(args, sizeof(args), "--resume %s", path);
        snprintf(named, sizeof(named), "checkpoint '%s'", path);
        expect(1, cases[i][0], args, (const char*[]){named, cases[i][1], NULL});
    }
    // --width against a checkpoint of another width: refused before a model of that width is built
    // (at 16, about 10 GB).
    char path[1024], args[1200], named[1200];
    snprintf(path, sizeof(path), "%s/tests/crafted/no_tensors.bin", DRNET_SOURCE_DIR);
    snprintf(args, sizeof(args), "--resume %s --width 16", path);
    snprintf(named, sizeof(named), "checkpoint '%s' holds a model of width 0.125 (meta.width); this run uses --width 16", path);
    expect(1, "--width 16 against width 0.125", args, (const char*[]){named, NULL});
}

// A FIFO, a device or a directory where the run writes a file is refused at start-up, by name: a FIFO
// would block open() forever (at the first save, for PATH.tmp, after an epoch of training), a
// directory at PATH.tmp would fail the first save.
static void not_regular_paths(void) {
    char args[1200], flag[700], fifo[300], ckpt[300], tmpfile[320], run[300];
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo %s", fifo);
    snprintf(flag, sizeof(flag), "--log '%s' is a FIFO (not a regular file)", fifo);
    snprintf(args, sizeof(args), "--log %s --data /nonexistent", fifo);
    expect(1, "--log FIFO", args, (const char*[]){flag, NULL});
    snprintf(args, sizeof(args), "--log /dev/zero --data /nonexistent");
    expect(1, "--log /dev/zero", args, (const char*[]){"--log '/dev/zero' is a character device", NULL});
    snprintf(flag, sizeof(flag), "--checkpoint '%s' is a FIFO (not a regular file)", fifo);
    snprintf(args, sizeof(args), "--checkpoint %s --data /nonexistent", fifo);
    expect(1, "--checkpoint FIFO", args, (const char*[]){flag, NULL});
    snprintf(ckpt, sizeof(ckpt), "%s/tmp-fifo.ckpt", dir);
    snprintf(tmpfile, sizeof(tmpfile), "%s.tmp", ckpt);
    CHECK(mkfifo(tmpfile, 0600) == 0, "mkfifo %s", tmpfile);
    snprintf(flag, sizeof(flag), "its temporary file '%s' is a FIFO", tmpfile);
    snprintf(args, sizeof(args), "--checkpoint %s --data /nonexistent", ckpt);
    expect(1, "--checkpoint whose PATH.tmp is a FIFO", args, (const char*[]){flag, NULL});
    snprintf(ckpt, sizeof(ckpt), "%s/tmp-dir.ckpt", dir);
    snprintf(tmpfile, sizeof(tmpfile), "%s.tmp", ckpt);
    CHECK(mkdir(tmpfile, 0700) == 0, "mkdir %s", tmpfile);
    snprintf(flag, sizeof(flag), "its temporary file '%s' is a directory", tmpfile);
    snprintf(args, sizeof(args), "--checkpoint %s --data /nonexistent", ckpt);
    expect(1, "--checkpoint whose PATH.tmp is a directory", args, (const char*[]){flag, NULL});
    snprintf(ckpt, sizeof(ckpt), "%s/lock-fifo.ckpt", dir);
    snprintf(tmpfile, sizeof(tmpfile), "%s.lock", ckpt);
    CHECK(mkfifo(tmpfile, 0600) == 0, "mkfifo %s", tmpfile);
    snprintf(flag, sizeof(flag), "cannot create its lock file '%s': is a FIFO", tmpfile);
    snprintf(args, sizeof(args), "--checkpoint %s --data /nonexistent", ckpt);
    expect(1, "--checkpoint whose PATH.lock is a FIFO", args, (const char*[]){flag, NULL});
    // Reading: --resume, --init and a run directory's config.json.
    snprintf(flag, sizeof(flag), "--resume '%s' is a FIFO (not a regular file)", fifo);
    snprintf(args, sizeof(args), "--resume %s", fifo);
    expect(1, "--resume FIFO", args, (const char*[]){flag, NULL});
    snprintf(flag, sizeof(flag), "--init '%s' is a FIFO (not a regular file)", fifo);
    snprintf(args, sizeof(args), "--init %s --data /nonexistent", fifo);
    expect(1, "--init FIFO", args, (const char*[]){flag, NULL});
    snprintf(args, sizeof(args), "--eval-only --init %s --data /nonexistent", fifo);
    expect(1, "--eval-only --init FIFO", args, (const char*[]){flag, NULL});
    snprintf(run, sizeof(run), "%s/fifo-run", dir);
    snprintf(tmpfile, sizeof(tmpfile), "%s/config.json", run);
    CHECK(mkdir(run, 0700) == 0 && mkfifo(tmpfile, 0600) == 0, "mkfifo %s", tmpfile);
    snprintf(flag, sizeof(flag), "cannot read the run configuration '%s': is a FIFO", tmpfile);
    snprintf(args, sizeof(args), "--resume %s", run);
    expect(1, "--resume DIR whose config.json is a FIFO", args, (const char*[]){flag, NULL});
}

// One path given for two of the run's files is refused at start-up, before either is written: the
// log would overwrite the checkpoint, the data archive or config.json (compared by device and inode
// when both exist, a hard link included, else by the resolved path).
static void aliased_paths(void) {
    char args[1200], flag[1200], a[300], b[300], data[300];
    snprintf(a, sizeof(a), "%s/alias.ckpt", dir);
    snprintf(flag, sizeof(flag), "--checkpoint '%s' and --log '%s' are the same file", a, a);
    snprintf(args, sizeof(args), "--checkpoint %s --log %s --data /nonexistent", a, a);
    expect(1, "--checkpoint F --log F", args, (const char*[]){flag, NULL});
    snprintf(flag, sizeof(flag), "the temporary file '%s.tmp' of --checkpoint '%s' and --log '%s.tmp'", a, a, a);
    snprintf(args, sizeof(args), "--checkpoint %s --log %s.tmp --data /nonexistent", a, a);
    expect(1, "--checkpoint F --log F.tmp", args, (const char*[]){flag, NULL});
    snprintf(b, sizeof(b), "%s/alias-link.jsonl", dir);
    FILE* f = NN_FOPEN(a, "w");
    fclose(f);
    CHECK(link(a, b) == 0, "link %s %s", a, b);
    snprintf(flag, sizeof(flag), "--checkpoint '%s' and --log '%s' are the same file", a, b);
    snprintf(args, sizeof(args), "--checkpoint %s --log %s --data /nonexistent", a, b);
    expect(1, "--log a hard link of --checkpoint", args, (const char*[]){flag, NULL});
    snprintf(data, sizeof(data), "%s/alias-data.tar.gz", dir);
    f = NN_FOPEN(data, "w");
    fprintf(f, "not an archive, but the user's file all the same\n");
    fclose(f);
    snprintf(flag, sizeof(flag), "--log '%s' and the data '%s' are the same file", data, data);
    snprintf(args, sizeof(args), "--log %s --data %s", data, data);
    expect(1, "--log at the data archive", args, (const char*[]){flag, NULL});
    snprintf(args, sizeof(args), "--out %s/alias-run --log %s/alias-run/config.json --data /nonexistent", dir, dir);
    snprintf(flag, sizeof(flag), "--log '%s/alias-run/config.json' and the run's config.json", dir);
    expect(1, "--log at the run's config.json", args, (const char*[]){flag, NULL});
    snprintf(args, sizeof(args), "--init %s --log %s --data /nonexistent", a, a);
    snprintf(flag, sizeof(flag), "--log '%s' and --init '%s' are the same file", a, a);
    expect(1, "--log at the --init weights", args, (const char*[]){flag, NULL});
}

static void early_paths(void) {
    char args[1200], flag[700];
    // Refused before the data is read ("data:" is printed once it is).
    snprintf(flag, sizeof(flag), "--checkpoint '%s/no/such/dir/x.ckpt' cannot be written", dir);
    snprintf(args, sizeof(args), "--checkpoint %s/no/such/dir/x.ckpt --data /nonexistent", dir);
    expect(1, "--checkpoint in a missing directory", args, (const char*[]){flag, NULL});
    snprintf(flag, sizeof(flag), "--checkpoint '%s' is a directory", dir);
    snprintf(args, sizeof(args), "--checkpoint %s --data /nonexistent", dir);
    expect(1, "--checkpoint is a directory", args, (const char*[]){flag, NULL});
    snprintf(flag, sizeof(flag), "--log '%s/no/such/dir/log.json' cannot be opened", dir);
    snprintf(args, sizeof(args), "--log %s/no/such/dir/log.json --data /nonexistent", dir);
    expect(1, "--log in a missing directory", args, (const char*[]){flag, NULL});
    not_regular_paths();
    aliased_paths();
}

int main(int argc, char** argv) {
    if (argc < 2) nn_fatal("usage: test_guard PATH-TO-TRAIN");
    train = argv[1];
    snprintf(dir, sizeof(dir), "/tmp/drnet-guard-XXXXXX");
    if (!mkdtemp(dir)) nn_fatal("mkdtemp failed");
    crafted_checkpoints();
    early_paths();

    char why[600];
    if (!test_data_path(why, sizeof(why))) {
        printf("skipping the runs that need data: %s\n", why);
    } else {
        char base[300], out[300], bad[300], args[2048], named[400], cmd[700];
        char folder[300];
        test_data_folder(dir, folder, sizeof(folder));
        snprintf(data_flag, sizeof(data_flag), "--data %s", folder);
        snprintf(base, sizeof(base), "%s/base.ckpt", dir);
        snprintf(out, sizeof(out), "%s/out.ckpt", dir);
        snprintf(bad, sizeof(bad), "%s/bad.ckpt", dir);
        snprintf(args, sizeof(args), "--max-steps 1 --checkpoint %s", base);
        expect(0, "a one-step run (the base checkpoint)", args, (const char*[]){"stopped at --max-steps 1", NULL});
        run_clock(base, bad);

        // /dev/full under --log is refused at start-up: a device is not a log (test_rundir.sh fills
        // a real log file to its size limit instead).
        snprintf(args, sizeof(args), "--max-steps 2 --log /dev/full --checkpoint %s", out);
        expect(1, "--log /dev/full", args, (const char*[]){"--log '/dev/full' is a character device", NULL});

        // Resuming with another thread count: allowed, but the run says it is no longer bit-identical.
        snprintf(args, sizeof(args), "--resume %s --max-steps 2 --threads 1", base);
        expect(0, "resume with another --threads", args,
               (const char*[]){"saved by a run with 2 CPU threads, this run uses 1", "not be bit-identical", NULL});

        // A huge running mean is finite (the weight check passes) and unused in training mode (batch
        // statistics), but in evaluation the last block's outputs overflow: the test loss is not finite.
        static const char* const mean[] = {"layers.12.bn2.running_mean", NULL};
        rewrite(base, bad, mean, -3e38f);
        snprintf(cmd, sizeof(cmd), "cp %s %s", base, out);
        CHECK(system(cmd) == 0, "%s", cmd);
        snprintf(args, sizeof(args), "--init %s --lr 0 --max-steps 2 --checkpoint %s", bad, out);
        snprintf(named, sizeof(named), "the checkpoint '%s' still holds the last good state", out);
        expect(1, "NaN test loss in training", args,
               (const char*[]){"the test loss became", "at epoch 1, step 2", named, NULL});
        CHECK(same_file(out, base), "the run with a NaN test loss changed the previous checkpoint");
        snprintf(args, sizeof(args), "--eval-only --init %s", bad);
        expect(1, "NaN test loss in --eval-only", args, (const char*[]){"the test loss became", NULL});

        // A finite momentum near the float maximum with the learning rate at 100 makes the weights
        // infinite after the next step, while that step's loss (computed before the update) is still
        // finite: the weight check must stop the run. The checkpoint ends epoch 1 (step 2), so
        // --max-steps 3 runs one step of epoch 2.
        static const char* const mom[] = {"optimizer.momentum.conv1.weight", NULL};
        static const char* const lr[] = {"recipe.lr", NULL};
        char big[300];
        snprintf(big, sizeof(big), "%s/big.ckpt", dir);
        rewrite(base, big, mom, 3e38f);
        rewrite(big, bad, lr, 100.0f);
        CHECK(system(cmd) == 0, "%s", cmd);
        snprintf(args, sizeof(args), "--resume %s --max-steps 3 --checkpoint %s", bad, out);
        expect(1, "non-finite weights after a step", args,
               (const char*[]){"the weights became non-finite: tensor 'conv1.weight'", "at epoch 2, step 3", named, NULL});
        CHECK(same_file(out, base), "the run with infinite weights changed the previous checkpoint");

        // Weights that are already non-finite in the file: --eval-only says so instead of blaming the
        // test loss on finite weights, and --resume or --init refuse to continue from them instead of
        // calling the file "the last good state". Each names the file and the first tensor.
        static const char* const conv[] = {"conv1.weight", NULL};
        rewrite(base, bad, conv, NAN);
        snprintf(named, sizeof(named), "checkpoint '%s' holds non-finite values: tensor 'conv1.weight' (element 0 is nan)", bad);
        snprintf(args, sizeof(args), "--eval-only --init %s", bad);
        expect(1, "--eval-only of NaN weights", args, (const char*[]){named, NULL});
        snprintf(args, sizeof(args), "--eval-only --resume %s", bad);
        expect(1, "--eval-only --resume of NaN weights", args, (const char*[]){named, NULL});
        snprintf(args, sizeof(args), "--resume %s --max-steps 3 --checkpoint %s", bad, out);
        expect(1, "--resume of NaN weights", args, (const char*[]){named, NULL});
        snprintf(args, sizeof(args), "--init %s --max-steps 3 --checkpoint %s", bad, out);
        expect(1, "--init of NaN weights", args, (const char*[]){named, NULL});
        rewrite(base, bad, mom, INFINITY);
        snprintf(named, sizeof(named), "checkpoint '%s' holds non-finite values: SGD momentum of tensor 'conv1.weight' (element 0 is inf)", bad);
        snprintf(args, sizeof(args), "--resume %s --max-steps 3 --checkpoint %s", bad, out);
        expect(1, "--resume of an infinite momentum", args, (const char*[]){named, NULL});
        CHECK(same_file(out, base), "a refused resume changed the checkpoint");
    }
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (!test_failures && system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    return test_finish("test_guard");
}
