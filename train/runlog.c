// The run's JSON-lines log (see runlog.h).
#include "runlog.h"

#include <errno.h>
#include <string.h>

#include "../nn/util.h"

static void check(RunLog* l) {
    if (fflush(l->f) != 0 || ferror(l->f))
        nn_fatal("cannot write the log '%s': %s (the checkpoint is not affected)", l->path, strerror(errno));
}

void runlog_open(RunLog* l, const char* path, int append) {
    memset(l, 0, sizeof(*l));
    if (!path[0]) return;
    snprintf(l->path, sizeof(l->path), "%s", path);
    char why[128];
    l->f = nn_fopen_file(path, append ? "a" : "w", why, sizeof(why)); // guard_paths refused FIFOs and devices
    if (!l->f) nn_fatal("cannot open the log '%s' for writing: %s", path, why);
}

void runlog_epoch(RunLog* l, const Trainer* t, double train_loss, double train_acc, double test_loss,
                  double test_acc, double seconds, double img_s, int partial) {
    if (!l->f) return;
    fprintf(l->f, "{\"epoch\": %d, \"step\": %ld, \"train_loss\": %.6f, \"train_acc\": %.4f, "
            "\"test_loss\": %.6f, \"test_acc\": %.4f, \"lr\": %.8g, \"seconds\": %.3f, \"img_per_s\": %.2f, "
            "\"run_seconds\": %.1f%s}\n",
            t->epoch + 1, t->step, train_loss, train_acc, test_loss, test_acc, (double)t->sgd.lr, seconds,
            img_s, nn_now() - t->run_start, partial ? ", \"partial\": true" : "");
    check(l);
}

void runlog_step(RunLog* l, const Trainer* t, double loss, double acc) {
    if (!l->f) return;
    fprintf(l->f, "{\"kind\": \"step\", \"epoch\": %d, \"batch\": %d, \"step\": %ld, \"loss\": %.6f, "
            "\"acc\": %.4f, \"lr\": %.8g}\n", t->epoch + 1, t->batch, t->step, loss, acc, (double)t->sgd.lr);
    check(l);
}

void runlog_close(RunLog* l) {
    if (!l->f) return;
    check(l);
    if (fclose(l->f) != 0) nn_fatal("cannot write the log '%s': %s", l->path, strerror(errno));
    l->f = NULL;
}
