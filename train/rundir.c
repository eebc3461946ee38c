// Run directories (see rundir.h): creating one, writing its config.json, reading it back on --resume.
// config.json is a flat JSON object written by this file; reading it needs only strings and numbers
// (arrays, such as the per-layer groups, are for people and tools and are skipped).
#include "rundir.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../kernels/cpu/cpu_kernels.h"
#include "../nn/checkpoint.h"
#include "../nn/util.h"
#include "dist.h"
#include "settings.h"

#define CONFIG_NAME "config.json"
#define CHECKPOINT_NAME "checkpoint.ckpt"
#define LOG_NAME "log.jsonl"
#define FINAL_NAME "final.ckpt"

static int is_dir(const char* p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char* p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static void join(char* out, const char* dir, const char* name) {
    if ((size_t)snprintf(out, PATH_LEN, "%s/%s", dir, name) >= PATH_LEN)
        nn_fatal("path too long: '%s/%s'", dir, name);
}

// The absolute form of a path (not resolving links: the file may not exist yet).
static void absolute(char* out, const char* p) {
    if (p[0] == '/') {
        snprintf(out, PATH_LEN, "%s", p);
        return;
    }
    char cwd[PATH_LEN];
    if (!getcwd(cwd, sizeof(cwd))) nn_fatal("cannot read the current directory: %s", strerror(errno));
    const char* rel = p;
    while (rel[0] == '.' && rel[1] == '/') rel += 2;
    join(out, cwd, rel);
}

// mkdir -p of the directories above path (not path itself).
static void make_parents(const char* path) {
    char p[PATH_LEN];
    snprintf(p, sizeof(p), "%s", path);
    char* last = strrchr(p, '/');
    for (char* s = p + 1; last && s < last; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) nn_fatal("cannot create the directory '%s': %s", p, strerror(errno));
        *s = '/';
    }
    if (last && last > p) {
        *last = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) nn_fatal("cannot create the directory '%s': %s", p, strerror(errno));
    }
}

// ---------------------------------------------------------------------------------------------
// Reading config.json: the value of a top-level key, as text (strings unescaped, numbers as written).

typedef struct Config {
    char* text;
    char path[PATH_LEN];
    char dir[PATH_LEN]; // paths in the file are relative to it unless absolute
} Config;

static const char* skip_ws(const char* s) {
    while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') s++;
    return s;
}

// Reads a JSON string starting at s (on the quote) into out; returns the position after it.
static const char* read_string(const char* s, char* out, size_t outlen) {
    size_t n = 0;
    for (s++; *s && *s != '"'; s++) {
        char c = *s;
        if (c == '\\') {
            s++;
            c = *s == 'n' ? '\n' : *s == 't' ? '\t' : *s;
            if (!*s) break;
        }
        if (out && n + 1 < outlen) out[n++] = c;
    }
    if (out) out[n] = 0;
    return *s ? s + 1 : s;
}

// The end of the JSON value at s: after a string, after the bracket that closes a nested array or
// object, or at the ',', '}' or line end after a number.
static const char* skip_value(const char* s) {
    if (*s == '"') return read_string(s, NULL, 0);
    if (*s == '[' || *s == '{') {
        int depth = 0;
        for (; *s; s++) {
            if (*s == '"') s = read_string(s, NULL, 0) - 1;
            else if (*s == '[' || *s == '{') depth++;
            else if ((*s == ']' || *s == '}') && --depth == 0) break;
        }
        return *s ? s + 1 : s;
    }
    while (*s && *s != ',' && *s != '}' && *s != '\n') s++;
    return s;
}

// Where the value of a top-level key starts, or NULL.
static const char* config_find(const Config* c, const char* key) {
    const char* s = skip_ws(c->text);
    if (*s != '{') return NULL;
    s++;
    char k[128];
    while (*(s = skip_ws(s)) == '"') {
        s = skip_ws(read_string(s, k, sizeof(k)));
        if (*s != ':') return NULL;
        s = skip_ws(s + 1);
        if (!strcmp(k, key)) return s;
        s = skip_ws(skip_value(s));
        if (*s == ',') s++;
    }
    return NULL;
}

// 1 and the value in out when the key exists with a string or number value; 0 otherwise.
static int config_get(const Config* c, const char* key, char* out, size_t outlen) {
    const char* s = config_find(c, key);
    if (!s || *s == '[' || *s == '{') return 0;
    if (*s == '"') {
        read_string(s, out, outlen);
        return 1;
    }
    const char* e = skip_value(s);
    while (e > s && e[-1] == ' ') e--;
    snprintf(out, outlen, "%.*s", (int)(e - s), s);
    return 1;
}

// The value of a top-level key as written (a string with its quotes and escapes): 1, or 0 when it is
// missing or does not fit.
static int config_raw(const Config* c, const char* key, char* out, size_t outlen) {
    const char* s = config_find(c, key);
    if (!s) return 0;
    size_t n = (size_t)(skip_value(s) - s);
    if (n + 1 > outlen) return 0;
    memcpy(out, s, n);
    out[n] = 0;
    return 1;
}

#define HISTORY_MAX 100 // resume commands kept in config.json (the newest, this one included)

// The "resumed" entries of a run's config.json, one per line into r->history, so that this resume
// adds to them: the newest HISTORY_MAX - 1, fewer where they would not fit (the file must stay far below
// config_load's 1 MB).
static void keep_history(RunDir* r, const Config* c) {
    const char* s = config_find(c, "resumed");
    if (!s || *s != '[') return;
    const char* start[HISTORY_MAX];
    size_t len[HISTORY_MAX];
    int count = 0;
    for (s = skip_ws(s + 1); *s == '{'; count++) {
        const char* e = skip_value(s);
        start[count % HISTORY_MAX] = s, len[count % HISTORY_MAX] = (size_t)(e - s);
        s = skip_ws(e);
        if (*s == ',') s = skip_ws(s + 1);
    }
    int first = count > HISTORY_MAX - 1 ? count - (HISTORY_MAX - 1) : 0; // room for this resume
    size_t used = 0;
    for (int i = count - 1; i >= first; i--) { // from the newest back, while they fit
        if (used + len[i % HISTORY_MAX] + 8 > sizeof(r->history)) {
            first = i + 1;
            break;
        }
        used += len[i % HISTORY_MAX] + 8;
    }
    size_t n = 0;
    for (int i = first; i < count; i++)
        n += (size_t)snprintf(r->history + n, sizeof(r->history) - n, "    %.*s,\n", (int)len[i % HISTORY_MAX],
                              start[i % HISTORY_MAX]);
}

// Returns 0 when there is no file at path; anything there that cannot be read as a run configuration
// (a FIFO, a device, a directory, an unreadable or oversized file) stops the run naming it.
static int config_load(Config* c, const char* path) {
    memset(c, 0, sizeof(*c));
    char why[128];
    FILE* f = nn_fopen_file(path, "rb", why, sizeof(why));
    if (!f && errno == ENOENT) return 0;
    if (!f) nn_fatal("cannot read the run configuration '%s': %s", path, why);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0 || n > (1 << 20)) nn_fatal("'%s' is not a run configuration (%ld bytes)", path, n);
    c->text = NN_MALLOC((size_t)n + 1);
    if (fread(c->text, 1, (size_t)n, f) != (size_t)n) nn_fatal("cannot read '%s': %s", path, strerror(errno));
    c->text[n] = 0;
    fclose(f);
    char fmt[64] = "";
    if (!config_get(c, "format", fmt, sizeof(fmt)) || strcmp(fmt, "drnet-run"))
        nn_fatal("'%s' is not a drnet run configuration (no \"format\": \"drnet-run\")", path);
    snprintf(c->path, sizeof(c->path), "%s", path);
    snprintf(c->dir, sizeof(c->dir), "%s", path);
    char* slash = strrchr(c->dir, '/');
    if (slash) *slash = 0;
    else strcpy(c->dir, ".");
    return 1;
}

// A setting's config.json key, from the table that writes it.
#define KEY(flag) (setting_named(flag)->key)

// A path value: relative ones are relative to the run directory.
static int config_path(const Config* c, const char* key, char* out) {
    char v[PATH_LEN];
    if (!config_get(c, key, v, sizeof(v)) || !v[0]) return 0;
    if (v[0] == '/') snprintf(out, PATH_LEN, "%s", v);
    else join(out, c->dir, v);
    return 1;
}

static int same_file(const char* a, const char* b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

// ---------------------------------------------------------------------------------------------

static void note(RunDir* r, const char* text) {
    size_t n = strlen(r->restored);
    snprintf(r->restored + n, sizeof(r->restored) - n, ", %s", text);
}

// One setting from config.json into o, through the parser and the range of its flag; a value the
// flag would refuse stops the run naming the file and the key (the flag is only the way out). Paths
// are relative to the run directory.
static void restore_setting(RunDir* r, Options* o, const Config* c, const Setting* s) {
    char v[PATH_LEN], shown[PATH_LEN + 64], want[128];
    if (s->type == SET_PATH ? !config_path(c, s->key, v) : !config_get(c, s->key, v, sizeof(v))) return;
    // Versions before the settings table wrote "threads": 0 when --threads was not given, meaning every
    // core: their run directories resume as they ran, and the banner says so (it is not silent).
    if (s == setting_named("--threads") && !strcmp(v, "0")) {
        note(r, "every core (\"threads\": 0, as older versions wrote a run without --threads)");
        return;
    }
    SettingStatus st = setting_parse(s, v, o);
    const int quoted = s->type >= SET_CHOICE; // written as a JSON string
    if (st == SETTING_RANGE) {
        setting_range(s, want, sizeof(want));
        nn_fatal("%s: \"%s\": %s is out of range (%s); correct the file, or give %s to override it", c->path,
                 s->key, v, want, s->flag);
    }
    if (st != SETTING_OK) {
        setting_want(s, want, sizeof(want));
        nn_fatal("%s: \"%s\": %s%s%s is not %s; correct the file, or give %s to override it", c->path, s->key,
                 quoted ? "\"" : "", v, quoted ? "\"" : "", want, s->flag);
    }
    // The banner names the checkpoint and the log itself; defaults are not worth a mention.
    if ((s->type == SET_PATH && s != setting_named("--data")) || setting_is_default(s, o)) return;
    setting_show(s, o, shown, sizeof(shown));
    note(r, shown);
}

// The run settings config.json keeps, unless given again on the command line.
static void apply_config(RunDir* r, Options* o, const Config* c) {
    for (const Setting* s = SETTINGS; s->flag; s++)
        if ((s->keep & KEEP_CONFIG) && !setting_given(s, o)) restore_setting(r, o, c, s);
}

// runs/MODEL-DATASET-STAMP, or with -2, -3, ... when that exists. Only a guess until the directory is
// made (rundir_create): another run started in the same second may take it first.
static void default_run_dir(RunDir* r, const Options* o) {
    int64_t now = (int64_t)time(NULL);
    dist_broadcast(&now, sizeof(now)); // several processes: one name, rank 0's clock
    time_t when = (time_t)now;
    struct tm tm;
    localtime_r(&when, &tm);
    char stamp[32];
    strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
    snprintf(r->base, sizeof(r->base), "runs/%s-%s-%s", o->model, o->dataset, stamp);
    snprintf(r->dir, PATH_LEN, "%s", r->base);
    for (int i = 2; is_dir(r->dir) || is_file(r->dir); i++) snprintf(r->dir, PATH_LEN, "%s-%d", r->base, i);
}

// The training step a checkpoint was saved at, -1 when it cannot be read. A run that stopped at
// --max-steps wrote final.ckpt; resumed and then interrupted, its checkpoint.ckpt is further on, and
// those are the run's latest weights.
static int64_t saved_step(const char* path) {
    Checkpoint c;
    char err[1200];
    int64_t step = -1;
    if (ckpt_load(&c, path, err, sizeof(err)) != 0) return -1;
    if (ckpt_get_i64(&c, "train.step", &step) != 0) step = -1;
    ckpt_free(&c);
    return step;
}

static void set_paths(RunDir* r, Options* o);

void rundir_prepare(RunDir* r, Options* o, int argc, char** argv) {
    memset(r, 0, sizeof(*r));
    for (int i = 0; i < argc; i++) {
        size_t n = strlen(r->command);
        snprintf(r->command + n, sizeof(r->command) - n, "%s%s", i ? " " : "", argv[i]);
    }
    // --init DIR: the run's latest weights: final.ckpt, unless checkpoint.ckpt is further on.
    if (o->init[0] && is_dir(o->init)) {
        char final[PATH_LEN], ckpt[PATH_LEN];
        join(final, o->init, FINAL_NAME);
        join(ckpt, o->init, CHECKPOINT_NAME);
        if (!is_file(final) && !is_file(ckpt))
            nn_fatal("--init '%s': the directory holds neither %s nor %s", o->init, FINAL_NAME, CHECKPOINT_NAME);
        const int64_t final_step = is_file(final) ? saved_step(final) : -1; // -1: damaged, reported by its loader
        const int use_ckpt = !is_file(final) || (final_step >= 0 && saved_step(ckpt) > final_step);
        snprintf(o->init, PATH_LEN, "%s", use_ckpt ? ckpt : final);
    }
    int training = options_training(o);

    if (o->resume[0]) {
        Config c;
        int have = 0;
        char ckpt[PATH_LEN];
        if (is_dir(o->resume)) {
            char cfg[PATH_LEN];
            join(cfg, o->resume, CONFIG_NAME);
            if (!config_load(&c, cfg))
                nn_fatal("--resume '%s': the directory has no %s, so it is not a run directory (give the "
                         "checkpoint file itself to resume from it)", o->resume, CONFIG_NAME);
            have = 1;
            if (!config_path(&c, KEY("--checkpoint"), ckpt)) join(ckpt, o->resume, CHECKPOINT_NAME);
        } else {
            // A checkpoint: its run's settings when its directory holds the config of the run that saved it.
            snprintf(ckpt, PATH_LEN, "%s", o->resume);
            char cfg[PATH_LEN], dir[PATH_LEN], saved[PATH_LEN];
            snprintf(dir, sizeof(dir), "%s", o->resume);
            char* slash = strrchr(dir, '/');
            if (slash) *slash = 0;
            else strcpy(dir, ".");
            join(cfg, dir, CONFIG_NAME);
            if (is_file(cfg) && config_load(&c, cfg)) {
                if (config_path(&c, KEY("--checkpoint"), saved) && same_file(saved, o->resume)) have = 1;
                else free(c.text);
            }
        }
        snprintf(o->resume, PATH_LEN, "%s", ckpt);
        if (have) {
            snprintf(r->dir, PATH_LEN, "%s", c.dir);
            if (training) { // the run's first command stays; this one joins its "resumed" history
                if (!config_raw(&c, "command", r->first_command, sizeof(r->first_command))) r->first_command[0] = 0;
                keep_history(r, &c);
                r->resuming = 1;
            }
            if (training) apply_config(r, o, &c);
            else if (!OPTION_GIVEN(o, "--data") && config_path(&c, KEY("--data"), ckpt)) snprintf(o->data, PATH_LEN, "%s", ckpt);
            r->resumed_from_config = 1;
            free(c.text);
        } else if (training && !o->checkpoint[0]) {
            snprintf(o->checkpoint, PATH_LEN, "%s", o->resume); // keep saving where the run saved
        }
        if (!training || !have) r->dir[0] = 0;
    } else if (training) {
        if (o->out[0]) {
            char cfg[PATH_LEN];
            join(cfg, o->out, CONFIG_NAME);
            if (is_file(cfg))
                nn_fatal("--out '%s' already holds a run (%s): continue it with --resume %s, or choose "
                         "another --out", o->out, cfg, o->out);
            snprintf(r->dir, PATH_LEN, "%s", o->out);
        } else {
            default_run_dir(r, o);
        }
        struct stat st;
        if (stat(r->dir, &st) == 0 && !S_ISDIR(st.st_mode)) nn_fatal("--out '%s' exists and is not a directory", r->dir);
        r->create = 1; // by rundir_create, once the run is set up (a failed start leaves nothing)
        r->own_checkpoint = !o->checkpoint[0], r->own_log = !o->log[0];
    }
    set_paths(r, o);
}

// Points o->out, the config, the final weights and the files the run keeps in its directory by
// default at r->dir.
static void set_paths(RunDir* r, Options* o) {
    if (!r->dir[0]) return;
    if (r->own_checkpoint) join(o->checkpoint, r->dir, CHECKPOINT_NAME);
    if (r->own_log) join(o->log, r->dir, LOG_NAME);
    snprintf(o->out, PATH_LEN, "%s", r->dir);
    join(r->config, r->dir, CONFIG_NAME);
    join(r->final, r->dir, FINAL_NAME);
}

// A default-named directory that no other run has: mkdir is atomic, so of two runs started in the
// same second one gets STAMP, the other STAMP-2.
static void make_fresh_dir(RunDir* r) {
    for (int i = 1; i < 10000; i++) {
        if (i > 1) snprintf(r->dir, PATH_LEN, "%s-%d", r->base, i);
        else snprintf(r->dir, PATH_LEN, "%s", r->base);
        if (mkdir(r->dir, 0777) == 0) return;
        if (errno != EEXIST) nn_fatal("cannot create the run directory '%s': %s", r->dir, strerror(errno));
    }
    nn_fatal("cannot create a run directory: '%s' and 9998 more names like it exist", r->base);
}

void rundir_create(RunDir* r, Options* o) {
    if (!r->create) return;
    if (dist_rank() == 0) {
        make_parents(r->dir);
        if (r->base[0]) make_fresh_dir(r);
        else if (mkdir(r->dir, 0777) != 0 && errno != EEXIST) // --out: an empty directory is fine
            nn_fatal("cannot create the run directory '%s': %s", r->dir, strerror(errno));
        if (!is_dir(r->dir)) nn_fatal("--out '%s' exists and is not a directory", r->dir);
    }
    dist_broadcast(r->dir, sizeof(r->dir)); // several processes: rank 0's name
    set_paths(r, o);
}

// ---------------------------------------------------------------------------------------------
// Writing config.json.

static void put_string(FILE* f, const char* key, const char* v, int last) {
    fprintf(f, "  \"%s\": ", key);
    nn_json_string(f, v);
    fprintf(f, "%s\n", last ? "" : ",");
}

// A path as stored: relative to the run directory when inside it, else absolute.
static void put_path(FILE* f, const char* key, const char* dir_abs, const char* p) {
    if (!p[0]) {
        put_string(f, key, "", 0);
        return;
    }
    char a[PATH_LEN];
    absolute(a, p);
    size_t n = strlen(dir_abs);
    if (!strncmp(a, dir_abs, n) && a[n] == '/') put_string(f, key, a + n + 1, 0);
    else put_string(f, key, a, 0);
}

static NN_NORETURN void taken(const RunDir* r) {
    nn_fatal("--out '%s' already holds a run (%s), started while this one was setting up: continue it with "
             "--resume %s, or choose another --out", r->dir, r->config, r->dir);
}

// A new run's directory that holds a config.json by now belongs to another run.
static void refuse_taken(const RunDir* r) {
    struct stat st;
    if (lstat(r->config, &st) == 0) taken(r);
}

// config.json goes in place atomically. A new run's must not replace one that another run (with
// another checkpoint, so another lock) wrote in the meantime: link() fails where a file exists,
// rename() would not. File systems without hard links get the rename.
static void publish(const RunDir* r, const char* tmp) {
    if (r->create && link(tmp, r->config) == 0) {
        unlink(tmp);
        return;
    }
    if (r->create && errno == EEXIST) {
        unlink(tmp);
        taken(r);
    }
    if (rename(tmp, r->config) != 0)
        nn_fatal("cannot write the run configuration '%s': %s", r->config, strerror(errno));
}

// "command": the run's first command line, kept across resumes; "resumed": one {command, time} per
// --resume since, this one last ([] for a new run).
static void put_commands(FILE* f, const RunDir* r) {
    if (r->resuming && r->first_command[0]) fprintf(f, "  \"command\": %s,\n", r->first_command);
    else put_string(f, "command", r->command, 0);
    if (!r->resuming) {
        fprintf(f, "  \"resumed\": [],\n");
        return;
    }
    char when[64];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S%z", &tm);
    fprintf(f, "  \"resumed\": [\n%s    {\"command\": ", r->history);
    nn_json_string(f, r->command);
    fprintf(f, ", \"time\": \"%s\"}\n  ],\n", when);
}

void rundir_write_config(const RunDir* r, const Trainer* t) {
    if (!r->dir[0] || dist_rank() != 0) return; // rank 0 writes the run's files
    if (r->create) refuse_taken(r); // another run may have started in this directory since the start-up check
    const Options* o = &t->opt;
    char dir_abs[PATH_LEN], tmp[PATH_LEN + 8], data[PATH_LEN], err[2048];
    absolute(dir_abs, r->dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", r->config);
    if (t->dataset->resolve(data, sizeof(data), o->data[0] ? o->data : NULL, DRNET_SOURCE_DIR, err, sizeof(err)) != 0)
        data[0] = 0;
    char why[128];
    FILE* f = nn_fopen_file(tmp, "w", why, sizeof(why)); // a FIFO left there must not block the start
    if (!f) nn_fatal("cannot write the run configuration '%s': %s", tmp, why);
    fprintf(f, "{\n");
    put_string(f, "format", "drnet-run", 0);
    put_commands(f, r);
    // What the run is and ran on, beside its settings.
    put_string(f, "model", o->model, 0);
    put_string(f, "dataset", o->dataset, 0);
    put_string(f, "backend", t->be ? t->be->name : "", 0);
    fprintf(f, "  \"processes\": %d,\n", dist_size());
    put_path(f, "final", dir_abs, r->final);
    // Every setting with a key, in the table's order. Two are written as the run used them: the data
    // path resolved, and the thread count the run computes with, also when --threads was not given
    // (every core), so that a resumed run repeats the same arithmetic and the key holds a value
    // --threads accepts.
    Options used = *o;
    snprintf(used.data, sizeof(used.data), "%s", data);
    if (!used.threads) used.threads = cpu_max_threads();
    char value[64];
    for (const Setting* s = SETTINGS; s->flag; s++) {
        if (!s->key) continue;
        if (s->type == SET_PATH) put_path(f, s->key, dir_abs, (const char*)&used + s->offset);
        else if (setting_json(s, &used, value, sizeof(value))) fprintf(f, "  \"%s\": %s,\n", s->key, value);
    }
    fprintf(f, "  \"dw_groups\": [");
    for (int i = 0; i < model_num_depthwise(&t->model); i++)
        fprintf(f, "%s%d", i ? ", " : "", model_depthwise(&t->model, i)->g);
    fprintf(f, "],\n  \"steps_per_epoch\": %d\n}\n", t->steps_per_epoch);
    if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0) {
        int e = errno;
        fclose(f);
        remove(tmp);
        nn_fatal("cannot write the run configuration '%s': %s", tmp, strerror(e));
    }
    if (fclose(f) != 0) nn_fatal("cannot write the run configuration '%s': %s", tmp, strerror(errno));
    publish(r, tmp);
}

const char* rundir_save_final(const RunDir* r, Trainer* t) {
    if (!r->dir[0]) return NULL;
    if (dist_rank() != 0) return r->final;
    char err[1200];
    CkptWriter w;
    if (ckpt_begin(&w, r->final, err, sizeof(err)) != 0) nn_fatal("%s", err);
    ckpt_put_str(&w, "meta.model", t->opt.model);
    ckpt_put_str(&w, "meta.dataset", t->opt.dataset);
    trainer_put_settings(&w, &t->opt, "meta.");
    ckpt_put_i64(&w, "meta.num_classes", t->model.num_classes);
    trainer_put_dw_groups(&w, t);
    ckpt_put_i64(&w, "train.step", t->step); // PyTorch's num_batches_tracked, for the exporter
    ckpt_put_engine(&w, t->e, 0);
    if (ckpt_commit(&w, err, sizeof(err)) != 0) nn_fatal("%s", err);
    return r->final;
}
