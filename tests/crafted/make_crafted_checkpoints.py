"""Writes the crafted checkpoints in this directory (*.bin: *.ckpt is git-ignored): resumable-looking training states (valid CRCs,
every meta/recipe/train record, no tensors) with one value no command line could have produced.
`train --resume FILE` must refuse each with a message naming the file and the record, before it
touches data or tensors; without the value checks they reached internal asserts, exited 0 doing
nothing, or silently ran a cosine schedule. Needs numpy: /usr/bin/python3 make_crafted_checkpoints.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import drnet_ckpt  # noqa: E402

BASE = {
    "meta.model": "mobilenet", "meta.dataset": "cifar10", "meta.width": 0.125, "meta.num_classes": 10,
    "meta.dw_groups": np.ones(13, dtype=np.int64),
    "recipe.epochs": 3, "recipe.batch": 32, "recipe.lr": 0.1, "recipe.momentum": 0.9,
    "recipe.weight_decay": 5e-4, "recipe.nesterov": 0, "recipe.schedule": "cosine",
    "recipe.warmup_epochs": 0.0, "recipe.step_epochs": 30, "recipe.step_gamma": 0.1, "recipe.seed": 1,
    "recipe.augment": 1, "recipe.limit_train": 64,
    "train.epoch": 0, "train.batch": 5, "train.step": 5, "train.epoch_loss_sum": 300.0,
    "train.epoch_correct": 20, "train.epoch_seen": 160, "train.epoch_seconds": 1.0,
    "run.device": "cpu", "run.threads": 2,
}

CASES = {  # file: (record, bad value)
    "batch_zero.bin": ("recipe.batch", 0),
    "batch_huge.bin": ("recipe.batch", 1 << 40),
    "epochs_zero.bin": ("recipe.epochs", 0),
    "dw_groups_negative.bin": ("meta.dw_groups", np.full(13, -4, dtype=np.int64)),
    "schedule_unknown.bin": ("recipe.schedule", "linear"),
    "warmup_nan.bin": ("recipe.warmup_epochs", float("nan")),
    "width_nan.bin": ("meta.width", float("nan")),
    "lr_inf.bin": ("recipe.lr", float("inf")),
    "epoch_negative.bin": ("train.epoch", -1),
    "seen_huge.bin": ("train.epoch_seen", 1 << 50),
    # below --width's range: once reported as "--width 0.01 leaves a layer ... with none", a flag
    # the user never typed
    "width_tiny.bin": ("meta.width", 0.01),
    # does not divide recipe.batch 32: once reported as "--accum-steps 3 does not divide --batch 32"
    "micro_batches_3.bin": ("recipe.micro_batches", 3),
    # a model of about 10 GB to build (823 M parameters, their momentum and gradients) for a file
    # of a few hundred bytes: refused from the tensors' shapes before anything is allocated
    "width_huge.bin": ("meta.width", 16.0),
    # of the wrong type: once read as absent (so accepted), where tools/export.py refuses it
    "classes_f32.bin": ("meta.num_classes", 10.0),
    "model_number.bin": ("meta.model", 7),
}

if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    for name, (record, value) in CASES.items():
        records = dict(BASE)
        records[record] = value
        drnet_ckpt.write(os.path.join(here, name), records)
    drnet_ckpt.write(os.path.join(here, "no_tensors.bin"), BASE)  # the control: valid, no tensors
