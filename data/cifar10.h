// CIFAR-10 in the official "binary version" layout, read into memory and validated. The dataset is
// read straight from the distributed cifar-10-binary.tar.gz (streamed through zlib and a small tar
// reader, never extracted to disk) or from an extracted cifar-10-batches-bin/ directory. Every way
// the input can be wrong -- missing, truncated, corrupt gzip, bad tar header, wrong member size, a
// label outside 0..9 -- is reported as a one-line message that names the file, the tar member and
// the byte offset, so that a broken download is diagnosed in one look rather than by a model that
// silently trains on garbage.
#ifndef DATA_CIFAR10_H
#define DATA_CIFAR10_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"

#define CIFAR10_SIDE 32
#define CIFAR10_IMAGE 3072   // 3 planes of 32x32 bytes
#define CIFAR10_RECORD 3073  // label byte, then the image
#define CIFAR10_CLASSES 10
#define CIFAR10_PER_FILE 10000
#define CIFAR10_FILE_BYTES (CIFAR10_PER_FILE * CIFAR10_RECORD) // 30730000, every .bin member
#define CIFAR10_TRAIN 50000
#define CIFAR10_TEST 10000
#define CIFAR10_URL "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"

// CIFAR-10 in memory is a DataSet (dataset.h): train (50000, 3073) records in official order, label
// byte, then R, G, B planes 32x32; test (10000, 3073).
typedef DataSet Cifar10;

// CIFAR-10 behind the data set interface (registered in data/dataset.c).
extern const DatasetDef CIFAR10_DATASET;

// path: a .tar.gz (read directly, streaming through zlib + a small tar reader, never extracting to
// disk), or a directory that contains cifar-10-batches-bin/ or is itself that directory.
// Returns 0, or non-zero with a one-line message in err that names the file (and the tar member) and
// the byte offset where it went wrong. On failure *ds is left empty (cifar10_free is still safe).
// The train records are data_batch_1..5 in that order, whatever the order of the tar members.
int cifar10_load(Cifar10* ds, const char* path, char* err, size_t errlen);
void cifar10_free(Cifar10* ds);
// The same reader for files of `records` records each (1..10000) instead of 10000: n_train is
// 5 x records, n_test records. The fuzz harnesses and tests use it so that an input of a few
// kilobytes reaches every check without allocating the full 184 MB.
int cifar10_load_small(Cifar10* ds, const char* path, int records, char* err, size_t errlen);
// A tar.gz held in memory (len bytes at data), read as cifar10_load_small reads a file; messages
// name it "(memory)".
int cifar10_load_targz_memory(Cifar10* ds, const void* data, size_t len, int records, char* err,
                              size_t errlen);

// Resolution order: flag_path if non-NULL; else $CIFAR10_PATH (if set and non-empty); else
// data/cifar-10-binary.tar.gz (or an extracted data/cifar-10-batches-bin/) relative to the working
// directory; else the same two under fallback_dir (the build bakes in the source dir; may be NULL).
// An explicit choice (flag or environment) is binding: if it does not exist that is an error, not a
// reason to quietly load some other copy. Writes the chosen path into out and returns 0; otherwise
// returns non-zero and err says every place it looked, where to get the official file and where to
// put it. errlen of 2048 is enough for any message.
int cifar10_resolve_path(char* out, size_t outlen, const char* flag_path, const char* fallback_dir,
                         char* err, size_t errlen);

#endif
