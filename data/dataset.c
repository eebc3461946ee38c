#include "dataset.h"

#include <stdio.h>
#include <string.h>

#include "cifar10.h"

// The registry: one line per data set.
static const DatasetDef* const DATASETS[] = {&CIFAR10_DATASET, NULL};

const DatasetDef* dataset_at(int i) {
    return i >= 0 && i < (int)(sizeof(DATASETS) / sizeof(DATASETS[0])) ? DATASETS[i] : NULL;
}

const DatasetDef* dataset_find(const char* name) {
    for (int i = 0; DATASETS[i]; i++)
        if (!strcmp(DATASETS[i]->name, name)) return DATASETS[i];
    return NULL;
}

const char* dataset_names(void) {
    static char names[256];
    if (!names[0])
        for (int i = 0; DATASETS[i]; i++)
            snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i ? ", " : "", DATASETS[i]->name);
    return names;
}
