// The data set interface: what the trainer knows about a data set. A data set is a DatasetDef (a
// name, the shape and classes of its images, how its pixels are normalized, and the functions that
// find and load its files) registered by name in data/dataset.c, as models are in models/model.c.
// The trainer takes the number of classes, the input shape and the normalization from here, never
// from one data set's constants.
#ifndef DATA_DATASET_H
#define DATA_DATASET_H

#include <stddef.h>
#include <stdint.h>

// A data set in memory: records of 1 + channels * height * width bytes (the label, then the image's
// channel planes, row by row), the training set's and the test set's.
typedef struct DataSet {
    uint8_t* train; // (n_train, record bytes)
    uint8_t* test;  // (n_test, record bytes)
    int n_train, n_test;
    char source[1024]; // the path actually loaded
} DataSet;

typedef struct DatasetDef {
    const char* name;    // the DATASET word of ./train, meta.dataset in checkpoints, "dataset" in config.json
    const char* summary; // one line for --help
    int classes;         // labels 0..classes-1: the model's outputs
    int channels, height, width;
    int train_images;    // images in the whole training set (what --limit-train cuts), known before loading
    const float* mean;   // (channels) a pixel v is (v / 255 - mean[c]) / std[c]
    const float* std;
    // Where the data is: given (--data, may be NULL), else the data set's environment variable and
    // default places (relative to the working directory, then to fallback_dir). 0 and the path in
    // out, or non-zero and a message in err (errlen 2048 holds any) that says where it looked and
    // how to get the data.
    int (*resolve)(char* out, size_t outlen, const char* given, const char* fallback_dir, char* err, size_t errlen);
    // Reads and checks the files at path into d: 0, or non-zero with a message naming the file (d is
    // then empty; free is still safe).
    int (*load)(DataSet* d, const char* path, char* err, size_t errlen);
    void (*free)(DataSet* d);
} DatasetDef;

// The registered data set of that name, or NULL.
const DatasetDef* dataset_find(const char* name);
// The registered names, ", "-separated ("cifar10"), for --help and error messages.
const char* dataset_names(void);
// The i-th registered data set (NULL past the last).
const DatasetDef* dataset_at(int i);

// Bytes of one image and of one record (the label byte and the image).
static inline size_t dataset_image_bytes(const DatasetDef* d) { return (size_t)d->channels * d->height * d->width; }
static inline size_t dataset_record_bytes(const DatasetDef* d) { return 1 + dataset_image_bytes(d); }

#endif
