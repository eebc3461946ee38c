// Saving and restoring a whole training run. Besides the model's tensors and the SGD momentum, the
// checkpoint records what the run was (model, width, depthwise groups, the recipe) and where it
// stands (epoch, batch, step, the epoch's running metrics), so that --resume continues exactly:
// the data order and augmentation are functions of (seed, epoch, index), so nothing else is needed.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../nn/checkpoint.h"
#include "../nn/util.h"
#include "dist.h"
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
    ckpt_put_f32(&w, "meta.width", o->width);
    ckpt_put_i64(&w, "meta.num_classes", t->model.num_classes);
    int64_t groups[MOBILENET_BLOCKS], dims[1] = {MOBILENET_BLOCKS};
    for (int i = 0; i < MOBILENET_BLOCKS; i++) groups[i] = t->model.blocks[i].conv1.g;
    ckpt_put(&w, "meta.dw_groups", CKPT_I64, 1, dims, groups, sizeof(groups));

    ckpt_put_i64(&w, "recipe.epochs", o->epochs);
    ckpt_put_i64(&w, "recipe.batch", o->batch);
    ckpt_put_f32(&w, "recipe.lr", o->lr);
    ckpt_put_f32(&w, "recipe.momentum", o->momentum);
    ckpt_put_f32(&w, "recipe.weight_decay", o->weight_decay);
    ckpt_put_i64(&w, "recipe.nesterov", o->nesterov);
    ckpt_put_str(&w, "recipe.schedule", schedule_name(o->schedule));
    ckpt_put_f32(&w, "recipe.warmup_epochs", o->warmup_epochs);
    ckpt_put_i64(&w, "recipe.step_epochs", o->step_epochs);
    ckpt_put_f32(&w, "recipe.step_gamma", o->step_gamma);
    ckpt_put_i64(&w, "recipe.seed", (int64_t)o->seed);
    ckpt_put_i64(&w, "recipe.augment", o->augment);
    ckpt_put_i64(&w, "recipe.limit_train", o->limit_train);
    // Data parallelism and accumulation: micro-batches per step in all (--accum-steps x processes).
    ckpt_put_i64(&w, "recipe.micro_batches", (int64_t)o->accum_steps * dist_size());

    ckpt_put_i64(&w, "train.epoch", t->epoch);
    ckpt_put_i64(&w, "train.batch", t->batch);
    ckpt_put_i64(&w, "train.step", t->step);
    ckpt_put_f32(&w, "train.epoch_loss_sum", (float)loss_sum);
    ckpt_put_i64(&w, "train.epoch_correct", correct);
    ckpt_put_i64(&w, "train.epoch_seen", t->seen);
    ckpt_put_f32(&w, "train.epoch_seconds", (float)t->epoch_seconds);

    ckpt_put_engine(&w, t->e, 1);
    if (ckpt_commit(&w, err, sizeof(err)) != 0) nn_fatal("%s", err);
}

static void load_or_die(Checkpoint* c, const char* path) {
    char err[1200];
    if (ckpt_load(c, path, err, sizeof(err)) != 0) nn_fatal("%s", err);
}

// The model a checkpoint holds must be the one built (same width and classes).
static void check_model(Trainer* t, const Checkpoint* c) {
    char model[32] = "";
    float width;
    int64_t classes;
    if (ckpt_get_str(c, "meta.model", model, sizeof(model)) || strcmp(model, t->opt.model) != 0)
        nn_fatal("checkpoint '%s' holds model '%s', not '%s'", c->path, model, t->opt.model);
    if (!ckpt_get_f32(c, "meta.width", &width) && width != t->opt.width)
        nn_fatal("checkpoint '%s' was saved with --width %g; this run uses --width %g", c->path,
                 (double)width, (double)t->opt.width);
    if (!ckpt_get_i64(c, "meta.num_classes", &classes) && classes != t->model.num_classes)
        nn_fatal("checkpoint '%s' has %lld classes, the model %d", c->path, (long long)classes,
                 t->model.num_classes);
}

void trainer_load_weights(Trainer* t, const char* path) {
    Checkpoint c;
    char err[1200];
    load_or_die(&c, path);
    check_model(t, &c);
    if (ckpt_get_engine(&c, t->e, 0, err, sizeof(err)) != 0) nn_fatal("%s", err);
    ckpt_free(&c);
}

// Recipe values: taken from the checkpoint; an explicit flag that disagrees is an error.
static void restore_i64(const Checkpoint* c, const char* name, const char* flag, int given, long* value) {
    int64_t v;
    if (ckpt_get_i64(c, name, &v))
        nn_fatal("checkpoint '%s' has no '%s': it is not a resumable training state (use --init to "
                 "start from its weights)", c->path, name);
    if (given && v != *value) {
        fprintf(stderr, "error: %s %ld contradicts the checkpoint '%s', saved with %s %lld; --resume "
                "continues the saved run as it was (use --init to start a new run from its weights)\n",
                flag, *value, c->path, flag, (long long)v);
        exit(2);
    }
    *value = (long)v;
}

static void restore_f32(const Checkpoint* c, const char* name, const char* flag, int given, float* value) {
    float v;
    if (ckpt_get_f32(c, name, &v))
        nn_fatal("checkpoint '%s' has no '%s': it is not a resumable training state", c->path, name);
    if (given && v != *value) {
        fprintf(stderr, "error: %s %g contradicts the checkpoint '%s', saved with %s %g; --resume "
                "continues the saved run as it was (use --init to start a new run from its weights)\n",
                flag, (double)*value, c->path, flag, (double)v);
        exit(2);
    }
    *value = v;
}

void trainer_resume(Trainer* t, const char* path) {
    Checkpoint c;
    char err[1200];
    load_or_die(&c, path);
    check_model(t, &c);
    Options* o = &t->opt;
    long v;
    unsigned g = o->given;
    v = o->epochs, restore_i64(&c, "recipe.epochs", "--epochs", g & GIVEN_EPOCHS, &v), o->epochs = (int)v;
    v = o->batch, restore_i64(&c, "recipe.batch", "--batch", g & GIVEN_BATCH, &v), o->batch = (int)v;
    restore_f32(&c, "recipe.lr", "--lr", g & GIVEN_LR, &o->lr);
    restore_f32(&c, "recipe.momentum", "--momentum", g & GIVEN_MOMENTUM, &o->momentum);
    restore_f32(&c, "recipe.weight_decay", "--wd", g & GIVEN_WD, &o->weight_decay);
    v = o->nesterov, restore_i64(&c, "recipe.nesterov", "--nesterov", g & GIVEN_NESTEROV, &v), o->nesterov = (int)v;
    char sched[32];
    if (ckpt_get_str(&c, "recipe.schedule", sched, sizeof(sched))) nn_fatal("checkpoint '%s' has no schedule", path);
    if ((g & GIVEN_SCHEDULE) && strcmp(sched, schedule_name(o->schedule)) != 0) {
        fprintf(stderr, "error: --schedule %s contradicts the checkpoint '%s', saved with %s\n",
                schedule_name(o->schedule), path, sched);
        exit(2);
    }
    o->schedule = !strcmp(sched, "step") ? SCHEDULE_STEP : !strcmp(sched, "constant") ? SCHEDULE_CONSTANT : SCHEDULE_COSINE;
    restore_f32(&c, "recipe.warmup_epochs", "--warmup-epochs", g & GIVEN_WARMUP, &o->warmup_epochs);
    v = o->step_epochs, restore_i64(&c, "recipe.step_epochs", "--step-epochs", g & GIVEN_STEP_EPOCHS, &v), o->step_epochs = (int)v;
    restore_f32(&c, "recipe.step_gamma", "--step-gamma", g & GIVEN_STEP_GAMMA, &o->step_gamma);
    v = (long)o->seed, restore_i64(&c, "recipe.seed", "--seed", g & GIVEN_SEED, &v), o->seed = (uint64_t)v;
    v = o->augment, restore_i64(&c, "recipe.augment", "--augment", g & GIVEN_AUGMENT, &v), o->augment = (int)v;
    v = o->limit_train, restore_i64(&c, "recipe.limit_train", "--limit-train", g & GIVEN_LIMIT_TRAIN, &v), o->limit_train = (int)v;
    // Micro-batches per step (--accum-steps x processes; 1 in checkpoints from before accumulation):
    // any split of them over processes continues the same run.
    int64_t micro_batches = 1;
    ckpt_get_i64(&c, "recipe.micro_batches", &micro_batches);
    if (micro_batches % dist_size() != 0 || ((g & GIVEN_ACCUM) && (int64_t)o->accum_steps * dist_size() != micro_batches)) {
        fprintf(stderr, "error: checkpoint '%s' was trained with %lld micro-batches per step (--accum-steps x "
                "processes); --accum-steps %d x %d process%s cannot continue it\n", path,
                (long long)micro_batches, o->accum_steps, dist_size(), dist_size() > 1 ? "es" : "");
        exit(2);
    }
    o->accum_steps = (int)(micro_batches / dist_size());

    // The depthwise group sizes the run used (e.g. chosen by --dw-group auto).
    const CkptRecord* groups = ckpt_find(&c, "meta.dw_groups");
    if (!groups || groups->dtype != CKPT_I64 || groups->nbytes != sizeof(int64_t) * MOBILENET_BLOCKS)
        nn_fatal("checkpoint '%s' has no valid meta.dw_groups", path);
    for (int i = 0; i < MOBILENET_BLOCKS; i++) {
        int gi = (int)((const int64_t*)groups->data)[i];
        if ((g & GIVEN_DW_GROUP) && o->dw_group > 0 && depthwise_group_size(t->model.blocks[i].conv1.c, o->dw_group) != gi) {
            fprintf(stderr, "error: --dw-group %d contradicts the checkpoint '%s' (layer %s used g = %d)\n",
                    o->dw_group, path, t->model.blocks[i].conv1.name, gi);
            exit(2);
        }
        depthwise_set_group(&t->model.blocks[i].conv1, gi);
    }

    int64_t epoch, batch, step, correct, seen;
    float loss_sum, seconds;
    if (ckpt_get_i64(&c, "train.epoch", &epoch) || ckpt_get_i64(&c, "train.batch", &batch) ||
        ckpt_get_i64(&c, "train.step", &step) || ckpt_get_f32(&c, "train.epoch_loss_sum", &loss_sum) ||
        ckpt_get_i64(&c, "train.epoch_correct", &correct) || ckpt_get_i64(&c, "train.epoch_seen", &seen) ||
        ckpt_get_f32(&c, "train.epoch_seconds", &seconds))
        nn_fatal("checkpoint '%s' lacks the run's position (train.*): it is not a resumable training state", path);
    if (ckpt_get_engine(&c, t->e, 1, err, sizeof(err)) != 0) nn_fatal("%s", err);
    t->epoch = (int)epoch, t->batch = (int)batch, t->step = step;
    t->seen = seen;
    t->epoch_seconds = seconds;
    if (dist_rank() != 0) loss_sum = 0.0f, correct = 0; // the saved sums are every process's together
    trainer_set_metrics(t, METRICS_TRAIN, loss_sum, (int)correct);
    ckpt_free(&c);
}
