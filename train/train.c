// ./train: trains a model on a dataset from the command line (see --help). The loop: for each batch,
// forward, backward and one SGD step on the chosen backend while the loader prepares the next batch
// on its own thread; at each epoch end, an atomic checkpoint, evaluation on the test set and a JSON
// log line, all in the run directory (rundir.h). Ctrl-C saves the checkpoint and stops; --resume
// continues exactly, with every setting of the run. progress.c draws what the terminal shows,
// guard.c stops a run that went bad before it can overwrite a good checkpoint, and dist.c joins an
// mpirun job (every process runs this same loop; rank 0 writes the files).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../nn/checkpoint.h"
#include "../nn/util.h"
#include "dist.h"
#include "guard.h"
#include "interrupt.h"
#include "progress.h"
#include "rundir.h"
#include "runlog.h"
#include "settings.h"
#include "speed.h"
#include "trainer.h"

static const char* program = "train"; // argv[0], for the command that continues an interrupted run

// The device line: a CPU-only machine is normal, so --device auto says so calmly.
static void print_device(const Backend* be, const char* note) {
    char dev[256];
    be->describe(dev, sizeof(dev));
    if (note[0]) printf("%s\n", note);
    printf("device: %s\n", dev);
}

static void setup(Trainer* t, RunDir* run, int argc, char** argv) {
    Options* o = &t->opt;
    t->run_start = nn_now(); // the run's clock (--resume moves it back by the checkpoint's time)
    options_parse(o, argc, argv);
    dist_init(&argc, &argv, o->device);   // mpirun: join the job, pick this process's GPU
    rundir_prepare(run, o, argc, argv);
    if (dist_rank() == 0) guard_paths(o, run); // given or from config.json; rank 0 writes them
    // Before anything is loaded or written: a resumed run's checkpoint is final, and so is one given
    // outside the run directory. A new run's own checkpoint is locked once its directory is made.
    if (dist_rank() == 0 && !(run->create && run->own_checkpoint)) guard_lock(o);
    char err[2048];

    // Weights from a checkpoint: its width decides the model (--width must agree), and it must be
    // able to hold that model.
    const char* ckpt = o->resume[0] ? o->resume : o->init[0] ? o->init : NULL;
    if (ckpt) trainer_checkpoint_model(ckpt, o);

    BackendOptions bo = {.threads = o->threads, .tf32 = o->tf32, .deterministic = o->deterministic,
                         .bf16 = o->precision == PRECISION_BF16};
    err[0] = 0;
    t->be = backend_open(o->device, &bo, err, sizeof(err));
    if (!t->be) nn_fatal("%s", err);
    speed_resolve(t); // --gpu-data / --cuda-graph auto: on or off for this backend

    const ModelDef* def = model_find(o->model); // options_parse refused unknown names
    const DatasetDef* ds = t->dataset = dataset_find(o->dataset);
    if (!loader_builds(ds))
        nn_fatal("dataset '%s': its %dx%dx%d images are not what the batch builders make (data/loader.h, "
                 "loader_builds)", ds->name, ds->channels, ds->height, ds->width);
    if (o->print_model) { // with the group size --device's backend would use (--dw-group auto: its default)
        Engine* e = engine_create(&(Backend){0});
        int g = o->dw_group > 0 ? o->dw_group : t->be->default_dw_group > 0 ? t->be->default_dw_group : 32;
        model_build(&t->model, def, e, o->width, g, ds->classes);
        if (o->dw_group > 0) printf("depthwise layers: g = %d (--dw-group %d)\n", g, o->dw_group);
        else printf("depthwise layers: g = %d, the %s backend's default%s\n", g, t->be->name,
                    o->dw_group == 0 ? " (--dw-group auto chooses per layer when a run starts)" : "");
        model_print(&t->model, ds->channels, ds->height, ds->width, o->precision == PRECISION_BF16, stdout);
        printf("precision: %s\n", o->precision == PRECISION_BF16
                                       ? "bf16 mixed precision: the layers marked bf16 above (every conv and linear layer) multiply "
                                         "bf16-rounded inputs and weights with FP32 sums; batch norm, ReLU, pooling, loss and SGD in FP32"
                                       : "fp32 throughout");
        exit(0);
    }
    print_device(t->be, err);
    if (o->gpu_data || o->cuda_graph)
        printf("step: %s%s%s\n", o->gpu_data ? "batches built on the device (--gpu-data on)" : "",
               o->gpu_data && o->cuda_graph ? ", " : "", o->cuda_graph ? "replayed as a CUDA graph (--cuda-graph on)" : "");
    speed_check(t);

    t->e = engine_create(t->be);
    dist_attach(t->e);
    int g = o->dw_group > 0 ? o->dw_group : t->be->default_dw_group > 0 ? t->be->default_dw_group : 32;
    model_build(&t->model, def, t->e, o->width, g, ds->classes);
    engine_alloc_params(t->e);
    engine_init_params(t->e, o->seed);
    t->loss_sum = t->be->alloc(2 * sizeof(float), "metrics");
    t->correct = t->be->alloc(2 * sizeof(int), "metrics");
    t->be->zero(t->loss_sum, 2 * sizeof(float));
    t->be->zero(t->correct, 2 * sizeof(int));
    if (o->resume[0]) trainer_resume(t, o->resume);
    else if (o->init[0]) trainer_load_weights(t, o->init);
    if (ckpt) guard_loaded_weights(t, ckpt);

    trainer_setup_micro_batches(t);

    // Data.
    char path[PATH_LEN];
    // A resumed run reads its data where its config.json says. If the data has moved since, name where
    // that path came from (not a --data the user typed) and how to go on.
    if (run->resumed_from_config && o->data[0] && !OPTION_GIVEN(o, "--data") && access(o->data, R_OK) != 0)
        nn_fatal("the run's data '%s' (from its config.json) cannot be read: %s; if it has moved, resume "
                 "with --data PATH", o->data, strerror(errno));
    if (ds->resolve(path, sizeof(path), o->data[0] ? o->data : NULL, DRNET_SOURCE_DIR, err, sizeof(err)) != 0)
        nn_fatal("%s", err);
    double t0 = nn_now();
    if (ds->load(&t->data, path, err, sizeof(err)) != 0) nn_fatal("%s", err);
    int n_train = o->limit_train && o->limit_train < t->data.n_train ? o->limit_train : t->data.n_train;
    int n_test = o->limit_test && o->limit_test < t->data.n_test ? o->limit_test : t->data.n_test;
    printf("data: %s (%d training, %d test images; loaded in %.1f s)\n", path, n_train, n_test, nn_now() - t0);
    if (o->batch > n_train) nn_fatal("--batch %d is larger than the %d training images", o->batch, n_train);
    LoaderConfig lc = {.records = t->data.train, .count = n_train, .batch = o->batch, .train = o->augment,
                       .seed = o->seed};
    t->train_loader = loader_create(&lc);
    LoaderConfig tc = {.records = t->data.test, .count = n_test, .batch = t->micro, .train = 0, .seed = o->seed};
    t->test_loader = loader_create(&tc);
    t->steps_per_epoch = loader_batches_per_epoch(t->train_loader);

    // Recipe.
    t->sgd = (SGD){.lr = o->lr, .momentum = o->momentum, .weight_decay = o->weight_decay, .nesterov = o->nesterov};
    t->schedule = (Schedule){.kind = o->schedule, .base_lr = o->lr,
                             .total_steps = (long)o->epochs * t->steps_per_epoch,
                             .warmup_steps = (long)(o->warmup_epochs * t->steps_per_epoch + 0.5),
                             .step_size = (long)o->step_epochs * t->steps_per_epoch, .gamma = o->step_gamma};

    if (o->dw_group == 0 && !o->resume[0]) {
        printf("dw-group auto: timing diagonalwise refactorization per depthwise layer (batch %d)\n", t->micro);
        model_autotune(&t->model, t->be, t->micro, stdout);
        int layers = model_num_depthwise(&t->model);
        int* groups = NN_MALLOC(sizeof(int) * (layers ? layers : 1)); // several processes: all use rank 0's choices (timings differ)
        for (int i = 0; i < layers; i++) groups[i] = model_depthwise(&t->model, i)->g;
        dist_broadcast(groups, sizeof(int) * layers);
        for (int i = 0; i < layers; i++) depthwise_set_group(model_depthwise(&t->model, i), groups[i]);
        free(groups);
    }

    // Size the activation arena once, for the largest step: training with a full micro-batch.
    engine_plan_begin(t->e);
    engine_backward(t->e, forward_loss(t, t->micro, NULL, NULL));
    engine_plan_end(t->e);

    long params, macs, executed;
    model_count(&t->model, ds->channels, ds->height, ds->width, &params, &macs, &executed);
    char groups[160] = "";
    int uniform = 1, layers = model_num_depthwise(&t->model);
    for (int i = 0; i < layers; i++) {
        int gi = model_depthwise(&t->model, i)->g;
        uniform &= gi == model_depthwise(&t->model, 0)->g;
        snprintf(groups + strlen(groups), sizeof(groups) - strlen(groups), "%s%d", i ? "," : "", gi);
    }
    if (uniform && layers) snprintf(groups, sizeof(groups), "%d", model_depthwise(&t->model, 0)->g);
    printf("model: %s width %g, %.3f M parameters, %.2f M multiply-adds per image "
           "(%.2f M executed: depthwise by diagonalwise refactorization, g = %s%s)\n",
           def->title, (double)o->width, params / 1e6, macs / 1e6, executed / 1e6, uniform ? "" : "per layer ", groups);
    char act[32];
    printf("memory: %s of activations for batch %d\n",
           nn_format_bytes(act, sizeof(act), (double)t->e->act_capacity), t->micro);
    if (o->eval_only) return; // an evaluation only runs the model: no recipe, no micro-batches
    printf("recipe: %d epochs x %d steps, batch %d, SGD lr %g momentum %g%s wd %g, %s schedule%s, seed %llu%s\n",
           o->epochs, t->steps_per_epoch, o->batch, (double)o->lr, (double)o->momentum,
           o->nesterov ? " (nesterov)" : "", (double)o->weight_decay, schedule_name(o->schedule),
           o->warmup_epochs > 0 ? " after warm-up" : "", (unsigned long long)o->seed,
           o->augment ? ", crop+flip augmentation" : ", no augmentation");
    if (o->precision == PRECISION_BF16) {
        int stored = t->be->bf16_activations && t->be->bf16_activations(); // (nn/ops.h, BN_FEEDS_CONV)
        printf("precision: bf16 mixed precision (conv and linear operands rounded to bf16, FP32 sums; FP32 weights, "
               "momentum, batch norm, loss, SGD and checkpoints)%s\n",
               stored ? "; what only convolutions read (batch norms' outputs, the gradients they hand back) stored "
                        "in bf16, as those round it anyway"
                      : "");
    }
    if (t->micro != o->batch)
        printf("micro-batches: each batch of %d runs as %d x %d images (%d per process), one SGD step; "
               "batch norm normalizes each micro-batch\n", o->batch, o->batch / t->micro, t->micro, t->accum);
}

// Where the run's files go, or what --resume restored.
static void announce_run(const Trainer* t, const RunDir* run) {
    const Options* o = &t->opt;
    if (o->resume[0]) {
        printf("resuming '%s' at epoch %d, batch %d/%d (step %ld)\n", o->resume, t->epoch + 1, t->batch,
               t->steps_per_epoch, t->step);
        if (run->resumed_from_config)
            printf("restored from %s: checkpoint %s, log %s (appending)%s; the recipe and position from the "
                   "checkpoint\n", run->config, o->checkpoint, o->log[0] ? o->log : "none", run->restored);
        else
            printf("no config.json of this run beside the checkpoint: the recipe, --width and --limit-train "
                   "come from the checkpoint; saving to %s%s%s\n", o->checkpoint, o->log[0] ? ", log " : "", o->log);
    } else if (run->dir[0]) {
        printf("run directory: %s (checkpoint %s, log %s)\n", run->dir, o->checkpoint, o->log[0] ? o->log : "none");
    }
}

// Where in the run the trainer is, as a checkpoint saved now would hold it.
static void position(char* out, size_t len, const Trainer* t) {
    if (t->batch >= t->steps_per_epoch) snprintf(out, len, "end of epoch %d, step %ld", t->epoch + 1, t->step);
    else snprintf(out, len, "epoch %d, batch %d/%d, step %ld", t->epoch + 1, t->batch, t->steps_per_epoch, t->step);
}

// What a second interrupt reports before the loop has saved anything in this process.
static void note_start(const Trainer* t) {
    const Options* o = &t->opt;
    char at[96];
    position(at, sizeof(at), t);
    if (!o->checkpoint[0]) interrupt_on_disk("this run keeps no checkpoint");
    else if (o->resume[0] && !strcmp(o->resume, o->checkpoint))
        interrupt_on_disk("the last checkpoint '%s' (%s) is intact", o->checkpoint, at);
    else interrupt_on_disk("no checkpoint was written yet (it would be '%s')", o->checkpoint);
}

// trainer_save, keeping what a second interrupt would report true: during the save the old file
// stands until the new one is complete (checkpoint.c renames PATH.tmp over it), so either may be there.
static void save(Trainer* t) {
    const char* path = t->opt.checkpoint;
    interrupt_on_disk("it came during a save: '%s' holds the previous state or the new one, either complete", path);
    trainer_save(t, path);
    char at[96];
    position(at, sizeof(at), t);
    interrupt_on_disk("the last checkpoint '%s' (%s) is intact", path, at);
}

// A word as a shell reads it back: as it is when it is plain, else in single quotes.
static void shell_word(char* out, size_t len, const char* w) {
    if (w[0] && strspn(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=@%+,-") == strlen(w)) {
        snprintf(out, len, "%s", w);
        return;
    }
    size_t n = 0;
    if (len < 3) {
        if (len) out[0] = 0;
        return;
    }
    out[n++] = '\'';
    for (; *w && n + 5 < len; w++) {
        if (*w == '\'') memcpy(out + n, "'\\''", 4), n += 4;
        else out[n++] = *w;
    }
    out[n++] = '\'';
    out[n] = 0;
}

// The whole command that continues the run: this program, the model and data set, --resume TARGET.
static void resume_command(char* out, size_t len, const Trainer* t, const char* target) {
    char prog[PATH_LEN + 64], where[2 * PATH_LEN + 8];
    shell_word(prog, sizeof(prog), program);
    shell_word(where, sizeof(where), target);
    snprintf(out, len, "%s %s %s --resume %s%s", prog, t->opt.model, t->opt.dataset, where,
             dist_size() > 1 ? " (under the same launcher, e.g. mpirun, as this run)" : "");
}

// Every epoch of the recipe is done (the checkpoint was saved at the last one's end).
static int finished(const Trainer* t) {
    int last = t->opt.epochs - 1;
    return t->epoch > last || (t->epoch == last && t->batch >= t->steps_per_epoch);
}

// A finished run resumed: what there is to do instead. --epochs is part of the recipe that
// trainer_resume holds a resumed run to (the schedule was planned over it), so --resume cannot
// extend the run; --init starts a new one from its weights.
static void say_finished(const Trainer* t, const RunDir* run) {
    const Options* o = &t->opt;
    char prog[PATH_LEN + 64], from[2 * PATH_LEN + 8];
    shell_word(prog, sizeof(prog), program);
    shell_word(from, sizeof(from), run->dir[0] ? run->dir : o->checkpoint);
    printf("the run is finished: all %d epochs done (step %ld), nothing to resume. --resume cannot add epochs: "
           "--epochs is part of the recipe (the learning-rate schedule was planned over %d epochs), so another "
           "value is refused. To train on from these weights, start a new run (a fresh optimizer and schedule): "
           "%s %s %s --init %s --epochs N; to evaluate them: %s %s %s --eval-only --init %s\n",
           o->epochs, t->step, o->epochs, prog, o->model, o->dataset, from, prog, o->model, o->dataset, from);
}

// The next epoch starts: position and running metrics reset.
static void next_epoch(Trainer* t) {
    t->epoch++, t->batch = 0, t->seen = 0, t->epoch_seconds = 0;
    trainer_set_metrics(t, METRICS_TRAIN, 0.0f, 0);
}

// An epoch (or the part of it up to a stop): training steps, then evaluation, checkpoint, log line.
// The evaluation comes before the save so that a checkpoint is never written from weights whose test
// loss is not finite. Every point that reads the metrics is decided by step counts (or is a terminal's
// clock with one process): with several processes those reads are collective, so all must agree.
// Returns 0 to go on, 1 when the run stops (--max-steps), 130 on Ctrl-C.
static int run_epoch(Trainer* t, const RunDir* run, RunLog* log, Progress* p) {
    Options* o = &t->opt;
    loader_start_epoch(t->train_loader, t->epoch, t->batch);
    double start = nn_now() - t->epoch_seconds;
    long first_seen = t->seen;
    int first_batch = t->batch;
    double first_time = nn_now();
    const Batch* b;
    int stop = 0;
    while ((b = loader_next(t->train_loader))) {
        train_step(t, b, NULL);
        if (dist_any(interrupt_received()) && !interrupt_received()) interrupt_as_peer(); // all stop at one step
        stop = interrupt_received() || (o->max_steps && t->step >= o->max_steps);
        int last = t->batch == t->steps_per_epoch;
        if (last || stop || (o->log_every && t->step % o->log_every == 0)) {
            double loss_sum;
            long correct;
            trainer_read_metrics(t, METRICS_TRAIN, &loss_sum, &correct);
            guard_train_loss(t, loss_sum);
            guard_weights(t);
            if (o->log_every && t->step % o->log_every == 0)
                runlog_step(log, t, loss_sum / t->seen, 100.0 * correct / t->seen);
        }
        progress_train(p, t, t->seen - first_seen, nn_now() - first_time, last || stop);
        if (stop) break;
    }
    if (p->tty) printf("\n");
    double seconds = nn_now() - start;
    t->epoch_seconds = seconds;
    double img_s = (t->seen - first_seen) / (nn_now() - first_time);
    progress_add_training(p, t->seen - first_seen, nn_now() - first_time,
                          first_batch == 0 && t->batch == t->steps_per_epoch);
    double loss_sum;
    long correct;
    trainer_read_metrics(t, METRICS_TRAIN, &loss_sum, &correct);
    double train_loss = loss_sum / t->seen, train_acc = 100.0 * correct / t->seen;
    int epoch_done = t->batch == t->steps_per_epoch;
    if (interrupt_received()) {
        if (o->checkpoint[0]) {
            save(t);
            char cmd[4 * PATH_LEN];
            resume_command(cmd, sizeof(cmd), t, run->dir[0] ? run->dir : o->checkpoint);
            printf("interrupted: saved '%s' at epoch %d, batch %d (step %ld); continue with %s\n",
                   o->checkpoint, t->epoch + 1, t->batch, t->step, cmd);
        } else {
            printf("interrupted at epoch %d, batch %d (no --checkpoint given, nothing saved)\n", t->epoch + 1, t->batch);
        }
        return 130;
    }
    double test_loss, test_acc;
    progress_eval_begin(p);
    evaluate(t, &test_loss, &test_acc);
    progress_eval_end(p, t, test_acc);
    guard_test_loss(t, test_loss);
    if (o->checkpoint[0]) save(t);
    printf("epoch %d/%d%s: train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%% | lr %.5g | %.1f s, %.0f img/s\n",
           t->epoch + 1, o->epochs, epoch_done ? "" : " (stopped early)", train_loss, train_acc,
           test_loss, test_acc, (double)t->sgd.lr, seconds, img_s);
    runlog_epoch(log, t, train_loss, train_acc, test_loss, test_acc, seconds, img_s, !epoch_done);
    if (stop) {
        printf("stopped at --max-steps %ld%s%s\n", o->max_steps, o->checkpoint[0] ? "; saved " : "", o->checkpoint);
        return 1;
    }
    next_epoch(t);
    return 0;
}

int main(int argc, char** argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 0 && argv[0][0]) program = argv[0];
    Trainer t;
    RunDir run;
    memset(&t, 0, sizeof(t));
    setup(&t, &run, argc, argv);
    Options* o = &t.opt;

    if (o->profile) return trainer_destroy(&t, run_profile(&t));
    Progress p;
    progress_init(&p, &t, o->log, o->resume[0] != 0);
    t.on_eval_batch = progress_eval_batch;
    if (o->eval_only) {
        double loss, acc;
        double t0 = nn_now();
        progress_eval_begin(&p);
        evaluate(&t, &loss, &acc);
        progress_eval_end(&p, &t, acc);
        guard_test_loss(&t, loss);
        printf("test: loss %.4f, accuracy %.2f%% (%d images, %.1f s)\n", loss, acc, p.n_test, nn_now() - t0);
        return trainer_destroy(&t, 0);
    }

    if (o->resume[0] && finished(&t)) { // nothing to train; config.json and the log stay as they are
        announce_run(&t, &run);
        rundir_save_final(&run, &t); // in case the run was stopped between its last save and final.ckpt
        say_finished(&t, &run);
        return trainer_destroy(&t, 0);
    }
    // Create the directory, lock, then write: a second run started on the same directory stops at
    // the lock before it rewrites a byte (a resumed run's lock was taken in setup).
    rundir_create(&run, o);
    if (dist_rank() == 0 && !guard_lock(o)) nn_fatal("cannot lock the checkpoint '%s'", o->checkpoint);
    rundir_write_config(&run, &t);
    RunLog log;
    runlog_open(&log, dist_rank() == 0 ? o->log : "", o->resume[0] != 0); // a new run starts its log afresh; a resumed one appends
    announce_run(&t, &run);
    if (o->max_steps && t.step >= o->max_steps) {
        printf("nothing to do: the run already took --max-steps %ld steps; give a larger --max-steps (or "
               "--max-steps 0, no limit) to go on\n", o->max_steps);
        runlog_close(&log);
        return trainer_destroy(&t, 0);
    }
    note_start(&t);
    interrupt_install();

    while (t.epoch < o->epochs) {
        if (t.batch >= t.steps_per_epoch) { // a checkpoint taken right at an epoch's end
            next_epoch(&t);
            continue;
        }
        int rc = run_epoch(&t, &run, &log, &p);
        if (rc == 130) {
            runlog_close(&log);
            return trainer_destroy(&t, 130);
        }
        if (rc) break;
    }
    runlog_close(&log);
    const char* weights = rundir_save_final(&run, &t);
    progress_summary(&p, &t, weights, o->checkpoint, o->log, run.dir);
    return trainer_destroy(&t, 0);
}
