// Crafted inputs that once hung or crashed a reader (tests/crafted/): each must be refused with a
// message naming the file and the problem, within a few seconds. A hang is a failure, not a stuck
// CI: an alarm ends the test. Archives are read with 2 records per member (cifar10_load_small), so
// the test needs no real data.
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../data/cifar10.h"
#include "test_util.h"

static const char* current = "";

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "FAIL: the reader hung (no answer within 20 s) on a crafted input\n";
    if (write(2, msg, sizeof msg - 1) < 0) {}
    if (write(2, current, strlen(current)) < 0) {}
    _exit(1);
}

static void expect_archive_refused(const char* name, const char* needle) {
    char path[1024], err[2048] = "";
    snprintf(path, sizeof path, "%s/tests/crafted/%s", DRNET_SOURCE_DIR, name);
    current = name;
    alarm(20);
    Cifar10 ds;
    int rc = cifar10_load_small(&ds, path, 2, err, sizeof err);
    alarm(0);
    cifar10_free(&ds);
    CHECK(rc != 0, "%s was accepted", name);
    CHECK(strstr(err, path) && strstr(err, needle), "%s: message '%s' lacks the path or '%s'", name, err,
          needle);
    printf("  %-28s refused: %s\n", name, err);
}

int main(void) {
    signal(SIGALRM, on_alarm);
    expect_archive_refused("pax_negative_length.tar.gz", "pax extended header has a malformed record at byte 6");
    expect_archive_refused("pax_huge_length.tar.gz", "pax extended header has a malformed record at byte 0");
    expect_archive_refused("pax_no_newline.tar.gz", "pax extended header has a malformed record at byte 0");
    return test_finish("test_crafted");
}
