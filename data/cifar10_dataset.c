// CIFAR-10 as a DatasetDef (dataset.h): its shape, classes and normalization, and the reader of
// cifar10.c (kept out of that file so that the reader's fuzz harness builds it alone).
#include "cifar10.h"
#include "loader.h"

const DatasetDef CIFAR10_DATASET = {
    .name = "cifar10",
    .summary = "CIFAR-10: 32x32 colour images, 10 classes, 50000 training and 10000 test images",
    .classes = CIFAR10_CLASSES,
    .channels = 3,
    .height = CIFAR10_SIDE,
    .width = CIFAR10_SIDE,
    .train_images = CIFAR10_TRAIN,
    .mean = CIFAR10_MEAN,
    .std = CIFAR10_STD,
    .resolve = cifar10_resolve_path,
    .load = cifar10_load,
    .free = cifar10_free,
};
