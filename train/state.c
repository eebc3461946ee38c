// Saving and restoring a whole training run. Besides the model's tensors and the SGD momentum, the
// checkpoint records what the run was (model, width, depthwise groups, the recipe) and where it
// stands (epoch, batch, step, the epoch's running metrics), so that --resume continues exactly:
// the data order and augmentation are functions of (seed, epoch, index), so nothing else is needed.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/cpu/cpu_kernels.h"
#include "../nn/checkpoint.h"
#include "../nn/util.h"
#include "dist.h"
#include "settings.h"
#include "speed.h"
#include "trainer.h"

void trainer_read_metrics(Trainer* t, int slot, double* loss_sum, long* correct) {
    float l;
    int c;
    t->be->download(&l, t->loss_sum + slot, sizeof(float));
    t->be->download(&c, t->correct + slot, sizeof(int));
    double sums[2] = {l, c}; // several processes: the sum of every process's share (dist.h)
    dist_sum(sums, 2);
    *loss_sum = sums[0];
    *correct = (long)sums[1];
}

void trainer_set_metrics(Trainer* t, int slot, float loss_sum, int correct) {
    t->be->upload(t->loss_sum + slot, &loss_sum, sizeof(float));
    t->be->upload(t->correct + slot, &correct, sizeof(int));
}

// CPU threads the run computes with (0 where the count does not change the arithmetic: on a GPU, and
// on the reference backend, whose every output is summed by one thread in a fixed order).
static int64_t run_threads(const Trainer* t) { return strcmp(t->be->name, "cpu") == 0 ? cpu_max_threads() : 0; }

int trainer_destroy(Trainer* t, int rc) {
    if (t->train_loader) loader_destroy(t->train_loader);
    if (t->test_loader) loader_destroy(t->test_loader);
    if (t->dataset) t->dataset->free(&t->data);
    if (t->loss_sum) t->be->free(t->loss_sum);
    if (t->correct) t->be->free(t->correct);
    if (t->grad_sum) t->be->free(t->grad_sum);
    speed_destroy(t);
    model_free(&t->model);
    engine_destroy(t->e);
    dist_finalize(); // after the engine: NCCL's communicator outlives the buffers it reduced
    memset(t, 0, sizeof(*t));
    return rc;
}

void trainer_save(Trainer* t, const char* path) {
    double loss_sum; // read first: with several processes every one takes part, then rank 0 writes
    long correct;
    trainer_read_metrics(t, METRICS_TRAIN, &loss_sum, &correct);
    if (dist_rank() != 0) return;
    char err[1200];
    CkptWriter w;
    if (ckpt_begin(&w, path, err, sizeof(err)) != 0) nn_fatal("%s", err);
    const Options* o = &t->opt;
    ckpt_put_str(&w, "meta.model", o->model);
    ckpt_put_str(&w, "meta.dataset", o->dataset);
    trainer_put_settings(&w, o, "meta.");
    ckpt_put_i64(&w, "meta.num_classes", t->model.num_classes);
    trainer_put_dw_groups(&w, t);

    trainer_put_settings(&w, o, "recipe.");
    // Data parallelism and accumulation: micro-batches per step in all (--accum-steps x processes).
    ckpt_put_i64(&w, "recipe.micro_batches", (int64_t)o->accum_steps * dist_size());

    ckpt_put_i64(&w, "train.epoch", t->epoch);
    ckpt_put_i64(&w, "train.batch", t->batch);
    ckpt_put_i64(&w, "train.step", t->step);
    ckpt_put_f32(&w, "train.epoch_loss_sum", (float)loss_sum);
    ckpt_put_i64(&w, "train.epoch_correct", correct);
    ckpt_put_i64(&w, "train.epoch_seen", t->seen);
    ckpt_put_f32(&w, "train.epoch_seconds", (float)t->epoch_seconds);
    ckpt_put_f32(&w, "train.run_seconds", (float)(nn_now() - t->run_start));
    // What the arithmetic depended on besides the recipe: the backend, and on the CPU the thread
    // count (reductions are split per thread, so another count rounds differently).
    ckpt_put_str(&w, "run.device", t->be->name);
    ckpt_put_i64(&w, "run.threads", run_threads(t));

    ckpt_put_engine(&w, t->e, 1);
    if (ckpt_commit(&w, err, sizeof(err)) != 0) nn_fatal("%s", err);
}

void trainer_put_settings(CkptWriter* w, const Options* o, const char* prefix) {
    char word[32];
    for (const Setting* s = SETTINGS; s->flag; s++) {
        if (!s->record || strncmp(s->record, prefix, strlen(prefix)) != 0) continue;
        if (s->type == SET_FLOAT) ckpt_put_f32(w, s->record, (float)setting_value(s, o));
        else if (s->type == SET_CHOICE) {
            setting_text(s, o, word, sizeof(word));
            ckpt_put_str(w, s->record, word);
        } else ckpt_put_i64(w, s->record, (int64_t)setting_value(s, o));
    }
}

void trainer_put_dw_groups(CkptWriter* w, const Trainer* t) {
    int n = model_num_depthwise(&t->model);
    int64_t* groups = NN_MALLOC(sizeof(int64_t) * (n ? n : 1)), dims[1] = {n};
    for (int i = 0; i < n; i++) groups[i] = model_depthwise(&t->model, i)->g;
    ckpt_put(w, "meta.dw_groups", CKPT_I64, 1, dims, groups, sizeof(int64_t) * n);
    free(groups);
}

static void load_or_die(Checkpoint* c, const char* path) {
    char err[1200];
    if (ckpt_load(c, path, err, sizeof(err)) != 0) nn_fatal("%s", err);
}

// The checkpoint's width multiplier into *width: 0, or 1 if it has none. A width --width would
// refuse, or one stored as anything but a float32 scalar, is refused naming the file and the record.
static int checkpoint_width(const Checkpoint* c, float* width) {
    const CkptRecord* r = ckpt_find(c, "meta.width");
    if (!r) return 1;
    if (ckpt_get_f32(c, "meta.width", width))
        nn_fatal("checkpoint '%s': meta.width is not a float32 scalar: the file is damaged or was not "
                 "written by this program", c->path);
    const Setting* s = setting_by_record("meta.width");
    if (setting_check(s, *width) != SETTING_OK) {
        char want[128];
        setting_want(s, want, sizeof(want));
        nn_fatal("checkpoint '%s': meta.width is %g, expected %s: the file is damaged or was not "
                 "written by this program", c->path, (double)*width, want);
    }
    return 0;
}

// The model a checkpoint holds must be the one built (same width and classes).
static void check_model(Trainer* t, const Checkpoint* c) {
    char model[32] = "";
    float width;
    int64_t classes;
    if (ckpt_get_str(c, "meta.model", model, sizeof(model)) || strcmp(model, t->opt.model) != 0)
        nn_fatal("checkpoint '%s' holds model '%s', not '%s'", c->path, model, t->opt.model);
    if (checkpoint_width(c, &width) == 0 && width != t->opt.width)
        nn_fatal("checkpoint '%s' holds a model of width %g (meta.width); this run uses --width %g", c->path,
                 (double)width, (double)t->opt.width);
    if (!ckpt_get_i64(c, "meta.num_classes", &classes) && classes != t->model.num_classes)
        nn_fatal("checkpoint '%s' has %lld classes, the model %d", c->path, (long long)classes,
                 t->model.num_classes);
}

#define MODEL_SLACK_VALUES (16u << 20)

// The float32 values a checkpoint's tensors hold (weights, running statistics, a few scalars;
// the SGD momentum not counted): the most a model loaded from it can have.
static uint64_t checkpoint_values(const Checkpoint* c) {
    uint64_t n = 0;
    for (int i = 0; i < c->count; i++)
        if (c->records[i].dtype == CKPT_F32 && strncmp(c->records[i].name, "optimizer.", 10) != 0)
            n += c->records[i].nbytes / 4;
    return n;
}

// A meta record that is there must have its type: meta.num_classes stored as a float was read as
// absent (and the file accepted), where tools/export.py refuses it.
static void check_meta_types(const Checkpoint* c) {
    const CkptRecord* model = ckpt_find(c, "meta.model");
    const CkptRecord* classes = ckpt_find(c, "meta.num_classes");
    const char* bad = model && (model->dtype != CKPT_BYTES || model->ndim != 1) ? "meta.model is not a string"
                    : classes && (classes->dtype != CKPT_I64 || classes->ndim != 0) ? "meta.num_classes is not an int64 scalar"
                    : NULL;
    if (bad) nn_fatal("checkpoint '%s': %s: the file is damaged or was not written by this program", c->path, bad);
}

void trainer_checkpoint_model(const char* path, Options* o) {
    Checkpoint c;
    load_or_die(&c, path);
    check_meta_types(&c);
    float width;
    if (checkpoint_width(&c, &width) == 0) {
        if (OPTION_GIVEN(o, "--width") && width != o->width)
            nn_fatal("checkpoint '%s' holds a model of width %g (meta.width); this run uses --width %g", path,
                     (double)width, (double)o->width);
        o->width = width;
    }
    // A CRC-valid file of a few hundred bytes can name width 16: a model of about 10 GB (weights,
    // gradients, momentum) to build before its tensors are found missing. Every tensor must be in
    // the file, so the file bounds the model. A shortfall under 16 M values (64 MB per arena) is left
    // to the tensor checks after the build, which name the tensor and come after the recipe's checks.
    const ModelDef* def = model_find(o->model);
    if (!def) nn_fatal("unknown model '%s': known models: %s", o->model, model_names());
    const DatasetDef* ds = dataset_find(o->dataset);
    if (!ds) nn_fatal("unknown dataset '%s': known datasets: %s", o->dataset, dataset_names());
    const uint64_t need = model_values(def, o->width, ds->classes), have = checkpoint_values(&c);
    if (need > have && need - have > MODEL_SLACK_VALUES)
        nn_fatal("checkpoint '%s': a %s of width %g (%s) has %.1f M parameters and statistics (%.1f GB "
                 "as float32), but the file's tensors hold only %.1f M values: the file is damaged or was not "
                 "written by this program", path, def->noun, (double)o->width, OPTION_GIVEN(o, "--width") ? "--width" : "meta.width",
                 need / 1e6, need * 4 / 1e9, have / 1e6);
    ckpt_free(&c);
}

// Which weights --init loaded and how far their run had got: `--init DIR` chose the file (final.ckpt
// or checkpoint.ckpt, rundir.c), and the checkpoint of a run still training is mid-run. A training
// checkpoint holds its position as (completed epochs, batches into the next); its epoch length
// follows from its recipe, the data set's training images cut to --limit-train.
static void announce_weights(const Checkpoint* c, const DatasetDef* ds) {
    int64_t epoch, batch, epochs, step, size, limit;
    const int have_step = ckpt_get_i64(c, "train.step", &step) == 0;
    if (have_step && !ckpt_get_i64(c, "train.epoch", &epoch) && !ckpt_get_i64(c, "train.batch", &batch) &&
        !ckpt_get_i64(c, "recipe.epochs", &epochs) && !ckpt_get_i64(c, "recipe.batch", &size) &&
        !ckpt_get_i64(c, "recipe.limit_train", &limit) && size > 0) {
        const int64_t images = limit > 0 && limit < ds->train_images ? limit : ds->train_images;
        const int64_t per_epoch = (images + size - 1) / size;
        if (batch >= per_epoch) epoch++, batch = 0; // saved at an epoch's end, before the next began
        printf("weights: %s (a training checkpoint ", c->path);
        if (batch == 0 && epoch == 0) printf("before its first step)\n");
        else if (batch == 0)
            printf("after epoch %lld of %lld, step %lld)\n", (long long)epoch, (long long)epochs, (long long)step);
        else
            printf("in epoch %lld of %lld, after batch %lld of %lld, step %lld)\n", (long long)epoch + 1,
                   (long long)epochs, (long long)batch, (long long)per_epoch, (long long)step);
    } else if (have_step) {
        printf("weights: %s (the weights a run ended with, after step %lld)\n", c->path, (long long)step);
    } else {
        printf("weights: %s\n", c->path);
    }
}

void trainer_load_weights(Trainer* t, const char* path) {
    Checkpoint c;
    char err[1200];
    load_or_die(&c, path);
    check_model(t, &c);
    if (ckpt_get_engine(&c, t->e, 0, err, sizeof(err)) != 0) nn_fatal("%s", err);
    announce_weights(&c, t->dataset);
    ckpt_free(&c);
}

// Recipe values: taken from the checkpoint; an explicit flag that disagrees is an error.
// A value the checkpoint holds that the command line could never have given (a damaged or foreign
// file whose CRCs still pass) is refused here, naming the file and record, rather than reaching an
// internal assert or silently running something else.
static NN_NORETURN void bad_value(const Checkpoint* c, const char* name, const char* value, const char* want) {
    nn_fatal("checkpoint '%s': %s is %s, expected %s: the file is damaged or was not written by this "
             "program (use --init to start a new run from its weights)", c->path, name, value, want);
}

// The checkpoint's value of setting s (its record) as text for a message.
static void record_text(const Checkpoint* c, const Setting* s, char* buf, size_t len) {
    float f;
    int64_t i;
    if (s->type == SET_FLOAT && !ckpt_get_f32(c, s->record, &f)) snprintf(buf, len, "%g", (double)f);
    else if (s->type != SET_FLOAT && !ckpt_get_i64(c, s->record, &i)) snprintf(buf, len, "%lld", (long long)i);
    else snprintf(buf, len, "?");
}

// A recipe value from its checkpoint record into o, through the range of its flag (settings.c). An
// explicit flag that disagrees is an error: --resume continues the saved run as it was.
static void restore_number(const Checkpoint* c, const Setting* s, Options* o) {
    float f;
    int64_t i;
    const int missing = s->type == SET_FLOAT ? ckpt_get_f32(c, s->record, &f) : ckpt_get_i64(c, s->record, &i);
    if (missing)
        nn_fatal("checkpoint '%s' has no '%s': it is not a resumable training state (use --init to "
                 "start from its weights)", c->path, s->record);
    const double v = s->type == SET_FLOAT ? (double)f : (double)i;
    char have[64], want[128];
    if (setting_check(s, v) != SETTING_OK) {
        record_text(c, s, have, sizeof(have));
        setting_want(s, want, sizeof(want));
        bad_value(c, s->record, have, want);
    }
    if (setting_given(s, o) && v != setting_value(s, o)) {
        setting_show(s, o, want, sizeof(want));
        record_text(c, s, have, sizeof(have));
        fprintf(stderr, "error: %s contradicts the checkpoint '%s', whose %s is %s; --resume continues the "
                "saved run as it was (use --init to start a new run from its weights)\n", want, c->path,
                s->record, have);
        exit(2);
    }
    setting_store(s, o, v);
}

// A recipe value stored as a word (recipe.schedule), through the same parser as its flag.
static void restore_word(const Checkpoint* c, const Setting* s, Options* o) {
    char word[32], shown[48], want[128];
    // Checkpoints from before --precision hold no recipe.precision: they trained in FP32.
    if (!strcmp(s->record, "recipe.precision") && !ckpt_find(c, s->record)) snprintf(word, sizeof(word), "fp32");
    else if (ckpt_get_str(c, s->record, word, sizeof(word)))
        nn_fatal("checkpoint '%s' has no valid '%s': it is not a resumable training state", c->path, s->record);
    Options saved = *o;
    if (setting_parse(s, word, &saved) != SETTING_OK) {
        snprintf(shown, sizeof(shown), "'%.40s'", word);
        setting_want(s, want, sizeof(want));
        bad_value(c, s->record, shown, want);
    }
    if (setting_given(s, o) && setting_value(s, &saved) != setting_value(s, o)) {
        setting_show(s, o, want, sizeof(want));
        fprintf(stderr, "error: %s contradicts the checkpoint '%s', whose %s is %s; --resume continues the "
                "saved run as it was (use --init to start a new run from its weights)\n", want, c->path,
                s->record, word);
        exit(2);
    }
    setting_store(s, o, setting_value(s, &saved));
}

// Micro-batches per step (--accum-steps x processes; 1 in checkpoints from before accumulation): any
// split of them over processes continues the same run. They must divide the checkpoint's own batch.
static void restore_micro_batches(const Checkpoint* c, Options* o) {
    int64_t micro_batches = 1;
    char have[32], want[128];
    if (ckpt_get_i64(c, "recipe.micro_batches", &micro_batches) == 0) {
        const Setting* s = setting_by_flag("--accum-steps");
        snprintf(have, sizeof(have), "%lld", (long long)micro_batches);
        if (setting_check(s, (double)micro_batches) != SETTING_OK) {
            setting_want(s, want, sizeof(want));
            bad_value(c, "recipe.micro_batches", have, want);
        }
        if (o->batch % micro_batches != 0) {
            snprintf(want, sizeof(want), "a divisor of recipe.batch %d", o->batch);
            bad_value(c, "recipe.micro_batches", have, want);
        }
    }
    if (micro_batches % dist_size() != 0 ||
        (OPTION_GIVEN(o, "--accum-steps") && (int64_t)o->accum_steps * dist_size() != micro_batches)) {
        fprintf(stderr, "error: checkpoint '%s' was trained with %lld micro-batches per step "
                "(recipe.micro_batches: --accum-steps x processes); --accum-steps %d x %d process%s cannot "
                "continue it\n", c->path, (long long)micro_batches, o->accum_steps, dist_size(),
                dist_size() > 1 ? "es" : "");
        exit(2);
    }
    o->accum_steps = (int)(micro_batches / dist_size());
}

void trainer_resume(Trainer* t, const char* path) {
    Checkpoint c;
    char err[1200];
    load_or_die(&c, path);
    check_model(t, &c);
    Options* o = &t->opt;
    // The recipe's records (meta.width decided the model before it was built: trainer_checkpoint_model).
    for (const Setting* s = SETTINGS; s->flag; s++) {
        if (!(s->keep & KEEP_CHECKPOINT) || strncmp(s->record, "recipe.", 7) != 0) continue;
        if (s->type == SET_CHOICE) restore_word(&c, s, o);
        else restore_number(&c, s, o);
    }
    restore_micro_batches(&c, o);

    // The depthwise group sizes the run used (e.g. chosen by --dw-group auto).
    const CkptRecord* groups = ckpt_find(&c, "meta.dw_groups");
    const int layers = model_num_depthwise(&t->model);
    if (!groups || groups->dtype != CKPT_I64 || groups->nbytes != sizeof(int64_t) * layers)
        nn_fatal("checkpoint '%s' has no valid meta.dw_groups", path);
    for (int i = 0; i < layers; i++) {
        DepthwiseConv2d* dw = model_depthwise(&t->model, i);
        int64_t gv;
        memcpy(&gv, (const char*)groups->data + 8 * i, 8);
        int ci = dw->c;
        if (gv < 1 || gv > ci || ci % gv != 0) {
            char have[64], want[96];
            snprintf(have, sizeof(have), "%lld for layer %d", (long long)gv, i);
            snprintf(want, sizeof(want), "a divisor of its %d channels", ci);
            bad_value(&c, "meta.dw_groups", have, want);
        }
        int gi = (int)gv;
        if (OPTION_GIVEN(o, "--dw-group") && o->dw_group > 0 && depthwise_group_size(ci, o->dw_group) != gi) {
            fprintf(stderr, "error: --dw-group %d contradicts the checkpoint '%s' (layer %s used g = %d)\n",
                    o->dw_group, path, dw->name, gi);
            exit(2);
        }
        depthwise_set_group(dw, gi);
    }

    int64_t epoch, batch, step, correct, seen;
    float loss_sum, seconds;
    if (ckpt_get_i64(&c, "train.epoch", &epoch) || ckpt_get_i64(&c, "train.batch", &batch) ||
        ckpt_get_i64(&c, "train.step", &step) || ckpt_get_f32(&c, "train.epoch_loss_sum", &loss_sum) ||
        ckpt_get_i64(&c, "train.epoch_correct", &correct) || ckpt_get_i64(&c, "train.epoch_seen", &seen) ||
        ckpt_get_f32(&c, "train.epoch_seconds", &seconds))
        nn_fatal("checkpoint '%s' lacks the run's position (train.*): it is not a resumable training state", path);
    char have[256];
    const char* bad = epoch < 0 || epoch >= o->epochs ? "train.epoch" : batch < 0 || batch > (1 << 30) ? "train.batch"
                    : step < 0 ? "train.step" : seen < 0 || seen > (int64_t)batch * o->batch ? "train.epoch_seen"
                    : correct < 0 || correct > seen ? "train.epoch_correct"
                    : !isfinite(loss_sum) || loss_sum < 0 ? "train.epoch_loss_sum"
                    : !isfinite(seconds) || seconds < 0 ? "train.epoch_seconds" : NULL;
    if (bad) {
        snprintf(have, sizeof(have), "out of range (epoch %lld of %d, batch %lld, step %lld, seen %lld, correct "
                 "%lld, loss sum %g, %g s)", (long long)epoch, o->epochs, (long long)batch, (long long)step,
                 (long long)seen, (long long)correct, (double)loss_sum, (double)seconds);
        bad_value(&c, bad, have, "a position inside the run");
    }
    // Bit-identity with an uninterrupted run needs the same arithmetic: same backend, and on the
    // CPU the same thread count. Another one still resumes correctly, only not bit for bit.
    char device[16] = "";
    int64_t threads = -1;
    if (o->eval_only) // an evaluation continues nothing: say what it evaluates instead
        announce_weights(&c, t->dataset);
    else if (!ckpt_get_str(&c, "run.device", device, sizeof(device)) && strcmp(device, t->be->name) != 0)
        printf("note: checkpoint '%s' was saved on the %s backend, this run uses %s: it continues the same "
               "run, but its results will not be bit-identical to an uninterrupted one\n", path, device,
               t->be->name);
    else if (!ckpt_get_i64(&c, "run.threads", &threads) && threads != run_threads(t))
        printf("note: checkpoint '%s' was saved by a run with %lld CPU threads, this run uses %lld "
               "(--threads): it continues the same run, but its results will not be bit-identical to an "
               "uninterrupted one (reductions are split per thread)\n", path, (long long)threads,
               (long long)run_threads(t));
    if (ckpt_get_engine(&c, t->e, 1, err, sizeof(err)) != 0) nn_fatal("%s", err);
    t->epoch = (int)epoch, t->batch = (int)batch, t->step = step;
    t->seen = seen;
    t->epoch_seconds = seconds;
    float run_seconds;
    if (!ckpt_get_f32(&c, "train.run_seconds", &run_seconds)) { // optional: older checkpoints lack it
        if (!isfinite(run_seconds) || run_seconds < seconds) {
            snprintf(have, sizeof(have), "%g s, with %g s in the current epoch", (double)run_seconds, (double)seconds);
            bad_value(&c, "train.run_seconds", have, "the run's time so far");
        }
        t->run_start -= run_seconds;
        t->run_clock_restored = 1;
    }
    if (dist_rank() != 0) loss_sum = 0.0f, correct = 0; // the saved sums are every process's together
    trainer_set_metrics(t, METRICS_TRAIN, loss_sum, (int)correct);
    ckpt_free(&c);
}
