// The terminal view of a training run (see progress.h).
#include "progress.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../nn/util.h"
#include "dist.h"

void format_duration(char* buf, size_t len, double seconds) {
    long s = (long)(seconds + 0.5);
    if (s < 0) s = 0;
    if (s >= 3600) snprintf(buf, len, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else snprintf(buf, len, "%ld:%02ld", s / 60, s % 60);
}

// The resumed run's log for reading, or NULL when it has none yet. Only a regular file, read no
// further than its size when opened: /dev/zero would feed fgets forever, a FIFO block in open()
// (guard_paths refuses both at start-up; this holds even if the path changed since).
static FILE* open_log(const char* path, long* size) {
    if (!path || !path[0]) return NULL;
    char why[128];
    FILE* f = nn_fopen_file(path, "r", why, sizeof(why));
    if (!f && errno == ENOENT) return NULL;
    if (!f) nn_fatal("cannot read the run's log '%s': %s", path, why);
    struct stat st;
    if (fstat(fileno(f), &st) != 0) nn_fatal("cannot read the run's log '%s': %s", path, strerror(errno));
    *size = (long)st.st_size;
    return f;
}

// Earlier epochs of a resumed run, from its log: best and last test accuracy. Returns the training
// time its epoch lines record (a partial epoch's time recurs in its continuation, so it counts once).
static double seed_from_log(Progress* p, const char* path) {
    long size = 0, read = 0;
    FILE* f = open_log(path, &size);
    if (!f) return 0;
    char line[1024];
    double seconds = 0;
    while (read < size && fgets(line, sizeof(line), f)) {
        read += (long)strlen(line);
        const char* acc = strstr(line, "\"test_acc\": ");
        const char* ep = strstr(line, "{\"epoch\": ");
        const char* sec = strstr(line, "\"seconds\": ");
        double a, s = 0;
        int e;
        if (!acc || !ep || sscanf(acc + 12, "%lf", &a) != 1 || sscanf(ep + 10, "%d", &e) != 1) continue;
        if (sec) sscanf(sec + 11, "%lf", &s);
        if (!strstr(line, "\"partial\"")) seconds += s;
        p->epochs_logged++;
        p->final_acc = a, p->final_epoch = e;
        if (a > p->best_acc || p->best_epoch == 0) p->best_acc = a, p->best_epoch = e;
    }
    fclose(f);
    return seconds;
}

void progress_init(Progress* p, Trainer* t, const char* log_path, int resumed) {
    memset(p, 0, sizeof(*p));
    p->tty = isatty(fileno(stdout)) && dist_size() == 1; // several processes: print points by step count
    p->start = nn_now();
    p->resumed = resumed;
    const Options* o = &t->opt;
    p->n_test = o->limit_test && o->limit_test < t->data.n_test ? o->limit_test : t->data.n_test;
    if (!resumed) return;
    double logged = seed_from_log(p, log_path);
    // A checkpoint from before train.run_seconds: the run's time is at least the training time its
    // log records, plus the unfinished epoch's from the checkpoint (evaluations and start-ups unknown).
    if (!t->run_clock_restored) t->run_start -= logged + (t->batch < t->steps_per_epoch ? t->epoch_seconds : 0);
}

void progress_add_training(Progress* p, double images, double seconds, int whole) {
    p->train_images += images;
    p->train_seconds += seconds;
    if (whole && images > 0 && seconds > 0) p->whole_epoch_rate = images / seconds;
    p->window_images = p->window_seconds = 0; // the next epoch counts from zero (evaluation excluded)
}

void progress_step(Progress* p, const Trainer* t, double images, double seconds) {
    double tenth = (double)t->steps_per_epoch * t->opt.batch / 10;
    if (images - p->window_images >= tenth && seconds > p->window_seconds) {
        p->recent_rate = (images - p->window_images) / (seconds - p->window_seconds);
        p->window_images = images, p->window_seconds = seconds;
    }
}

// The rate both ETAs plan with: the machine's current speed, not this process's mean, which a pause
// (Ctrl-Z, a suspended laptop, a job that shared the machine for a while) would drag down for the rest
// of the run. So: the faster of the last whole epoch's rate and the last tenth of an epoch's (a few
// steps, perhaps still queued on the GPU, would measure nothing). A pause is forgotten within two
// tenths of an epoch of training after it (at once where the last whole epoch ran at speed); a real
// slowdown shows once it has lasted an epoch. Before either measurement exists
// (the first tenth of an epoch in this process), the mean so far.
double progress_eta_rate(const Progress* p, double images, double seconds) {
    double best = p->whole_epoch_rate > p->recent_rate ? p->whole_epoch_rate : p->recent_rate;
    if (best > 0) return best;
    double all = p->train_seconds + seconds > 0 ? (p->train_images + images) / (p->train_seconds + seconds) : 0;
    return all > 0 ? all : 1;
}

// Seconds left in the whole run: the training steps left at `rate`, plus one evaluation per epoch
// end still to come at the measured (or, before the first, estimated) evaluation time.
double progress_run_eta(const Progress* p, const Trainer* t, double rate) {
    const Options* o = &t->opt;
    long spe = t->steps_per_epoch;
    long left = (long)(o->epochs - t->epoch - 1) * spe + (spe - t->batch);
    if (o->max_steps && o->max_steps - t->step < left) left = o->max_steps - t->step;
    if (left < 0) left = 0;
    long evals = (t->batch + left + spe - 1) / spe; // epoch ends still ahead (a stop also evaluates)
    if (evals < 1) evals = 1;
    double eval_s = p->eval_seconds > 0 ? p->eval_seconds : p->n_test / (3.0 * rate); // forward only: ~1/3 of a step
    return left * (double)o->batch / rate + evals * eval_s;
}

void progress_train(Progress* p, Trainer* t, double images, double seconds, int force) {
    progress_step(p, t, images, seconds);
    double now = nn_now();
    int every = t->steps_per_epoch / 10 + 1;
    if (!force && (p->tty ? now - p->last_print < 0.5 : t->batch % every != 0)) return;
    p->last_print = now;
    double loss_sum;
    long correct;
    trainer_read_metrics(t, METRICS_TRAIN, &loss_sum, &correct);
    double epoch_rate = seconds > 0 ? images / seconds : 0; // shown: this epoch's throughput so far
    double rate = progress_eta_rate(p, images, seconds);
    char eta[32], elapsed[32], run[32];
    format_duration(eta, sizeof(eta), (t->steps_per_epoch - t->batch) * (double)t->opt.batch / rate);
    format_duration(elapsed, sizeof(elapsed), now - t->run_start);
    format_duration(run, sizeof(run), progress_run_eta(p, t, rate));
    long seen = t->seen ? t->seen : 1;
    printf("%sepoch %d/%d [%4d/%d] loss %.4f acc %6.2f%% %6.0f img/s ETA %s | run %s elapsed, ETA %s%s",
           p->tty ? "\r" : "", t->epoch + 1, t->opt.epochs, t->batch, t->steps_per_epoch, loss_sum / seen,
           100.0 * correct / seen, epoch_rate, eta, elapsed, run, p->tty ? "\033[K" : "\n");
    fflush(stdout);
}

static Progress* eval_progress; // the Progress the evaluation hook reports to

void progress_eval_begin(Progress* p) {
    p->eval_start = nn_now();
    p->last_print = p->eval_start;
    eval_progress = p;
}

void progress_eval_batch(Trainer* t, long seen) {
    Progress* p = eval_progress;
    if (!p || !p->tty) return; // plain output: the epoch line after the evaluation says enough
    double now = nn_now();
    if (now - p->last_print < 0.5 || seen >= p->n_test) return;
    p->last_print = now;
    double loss_sum;
    long correct;
    trainer_read_metrics(t, METRICS_EVAL, &loss_sum, &correct);
    char eta[32];
    double rate = seen / (now - p->eval_start);
    format_duration(eta, sizeof(eta), (p->n_test - seen) / (rate > 0 ? rate : 1));
    printf("\revaluating [%5ld/%d] acc %6.2f%% %6.0f img/s ETA %s\033[K", seen, p->n_test,
           100.0 * correct / (seen ? seen : 1), rate, eta);
    fflush(stdout);
}

void progress_eval_end(Progress* p, Trainer* t, double test_acc) {
    p->eval_seconds = nn_now() - p->eval_start;
    eval_progress = NULL;
    if (p->tty) printf("\r\033[K");
    int epoch = t->epoch + 1;
    p->epochs_logged++;
    p->final_acc = test_acc, p->final_epoch = epoch;
    if (test_acc > p->best_acc || p->best_epoch == 0) p->best_acc = test_acc, p->best_epoch = epoch;
}

void progress_summary(const Progress* p, const Trainer* t, const char* weights, const char* checkpoint,
                      const char* log, const char* run_dir) {
    char total[32], here[32];
    double now = nn_now();
    format_duration(total, sizeof(total), now - t->run_start);
    format_duration(here, sizeof(here), now - p->start);
    printf("\nsummary: %d of %d epochs done (step %ld), %s in all", t->epoch + (t->batch >= t->steps_per_epoch),
           t->opt.epochs, t->step, total);
    if (p->resumed) printf(" (%s in this session)", here);
    if (p->train_seconds > 0) printf(", %.0f img/s mean training throughput", p->train_images / p->train_seconds);
    printf("\n");
    if (p->best_epoch)
        printf("  test accuracy: final %.2f%% (epoch %d), best %.2f%% (epoch %d)%s\n", p->final_acc,
               p->final_epoch, p->best_acc, p->best_epoch,
               p->n_test < t->data.n_test ? " on the --limit-test images" : "");
    if (weights) printf("  weights:    %s (use with --init, --eval-only --init, tools/export.py)\n", weights);
    if (checkpoint && checkpoint[0])
        printf("  checkpoint: %s (the whole training state; continue with --resume %s)\n", checkpoint,
               run_dir && run_dir[0] ? run_dir : checkpoint);
    if (log && log[0]) printf("  log:        %s (plot: python3 tools/plot_runs.py %s)\n", log, log);
}
