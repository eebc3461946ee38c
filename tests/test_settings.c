// The settings table (train/settings.c) as test_settings.sh compares it with what ./train does:
//   test_settings flags        every flag of the table, one a line, in its order (--help's)
//   test_settings keys         every config.json key of the table, one a line
//   test_settings records CKPT each checkpoint record of the table that CKPT lacks, one a line
//                              (exit 1 if any)
// The lists come from the table itself, so the test that compares them with --help, a run's
// config.json and its checkpoint needs no list of its own.
#include <stdio.h>
#include <string.h>

#include "../nn/checkpoint.h"
#include "../train/settings.h"

int main(int argc, char** argv) {
    const char* mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "flags") || !strcmp(mode, "keys")) {
        for (const Setting* s = SETTINGS; s->flag; s++) {
            const char* v = mode[0] == 'f' ? s->flag : s->key;
            if (v) printf("%s\n", v);
        }
        return 0;
    }
    if (!strcmp(mode, "records") && argc == 3) {
        Checkpoint c;
        char err[1200];
        if (ckpt_load(&c, argv[2], err, sizeof(err)) != 0) {
            fprintf(stderr, "%s\n", err);
            return 2;
        }
        int missing = 0;
        for (const Setting* s = SETTINGS; s->flag; s++)
            if (s->record && !ckpt_find(&c, s->record)) printf("%s\n", s->record), missing++;
        ckpt_free(&c);
        return missing ? 1 : 0;
    }
    fprintf(stderr, "usage: test_settings flags | keys | records CHECKPOINT\n");
    return 2;
}
