// Replays files through a libFuzzer harness without libFuzzer: `replay FILE|DIR...` calls
// LLVMFuzzerTestOneInput on each file (a directory: each file in it) and prints how many ran. Lets
// any compiler (and the sanitizer build) run the committed corpus; a finding crashes or traps.
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

static int replay_file(const char* path) {
    FILE* f = fopen(path, "rb");
    if (!f) return perror(path), 1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t* buf = malloc((size_t)n + 1); // (n) the input
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) return fprintf(stderr, "%s: read failed\n", path), 1;
    fclose(f);
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    free(buf);
    return 0;
}

int main(int argc, char** argv) {
    int files = 0, bad = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) return perror(argv[i]), 1;
        if (!S_ISDIR(st.st_mode)) {
            bad |= replay_file(argv[i]), files++;
            continue;
        }
        DIR* d = opendir(argv[i]);
        struct dirent* e;
        while (d && (e = readdir(d))) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
            if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
            bad |= replay_file(path), files++;
        }
        if (d) closedir(d);
    }
    printf("replayed %d inputs without a finding\n", files);
    return bad;
}
