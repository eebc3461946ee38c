// The data set interface (data/dataset.h): the registry finds CIFAR-10 by name and lists it; its
// descriptor states what the CIFAR-10 reader and the batch builders use (classes, image shape,
// record size, normalization); loader_builds accepts it and refuses a shape the builders cannot make.
#include <stdio.h>
#include <string.h>

#include "../nn/augment.h"
#include "../data/cifar10.h"
#include "../data/loader.h"
#include "test_util.h"

int main(void) {
    const DatasetDef* d = dataset_find("cifar10");
    CHECK(d == &CIFAR10_DATASET, "dataset_find(\"cifar10\") is CIFAR10_DATASET");
    CHECK(dataset_find("imagenet") == NULL && dataset_find("") == NULL, "unknown names are not found");
    CHECK(dataset_at(0) == d && dataset_at(1) == NULL && dataset_at(-1) == NULL, "dataset_at walks the registry");
    CHECK(!strcmp(dataset_names(), "cifar10"), "dataset_names() = \"%s\"", dataset_names());
    if (!d) return test_finish("test_dataset");

    CHECK(d->classes == CIFAR10_CLASSES && d->train_images == CIFAR10_TRAIN, "classes %d, %d training images",
          d->classes, d->train_images);
    CHECK(dataset_image_bytes(d) == CIFAR10_IMAGE && dataset_record_bytes(d) == CIFAR10_RECORD,
          "%zu image bytes, %zu record bytes", dataset_image_bytes(d), dataset_record_bytes(d));
    for (int c = 0; c < d->channels; c++)
        CHECK(d->mean[c] == augment_mean(c) && d->std[c] == augment_std(c), "channel %d normalized as augment.h", c);
    CHECK(d->resolve && d->load && d->free, "the loader functions are set");

    CHECK(loader_builds(d), "the batch builders make CIFAR-10's images");
    DatasetDef other = *d;
    other.channels = 1;
    CHECK(!loader_builds(&other), "a 1-channel data set is refused");
    other = *d;
    other.height = other.width = 64;
    CHECK(!loader_builds(&other), "64x64 images are refused");
    const float mean[3] = {0.5f, 0.5f, 0.5f};
    other = *d;
    other.mean = mean;
    CHECK(!loader_builds(&other), "another normalization is refused");
    return test_finish("test_dataset");
}
