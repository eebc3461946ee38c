#!/usr/bin/env python3
"""Converts one of our checkpoints into a PyTorch state_dict of the reference MobileNet.

    /usr/bin/python3 tests/reference/ckpt_to_torch.py IN.ckpt OUT.pt [--width W]

IN is any checkpoint ./train writes (a training state or weights only): its parameters and running
statistics go under the same names into OUT, which `mobilenet_ref.MobileNet(width).load_state_dict()`
accepts as it is, as would kuangliu/pytorch-cifar's MobileNet at width 1. num_batches_tracked (which
our batch norm does not need: its momentum is always 0.1) is the checkpoint's train.step, else 0. The
width comes from the checkpoint's meta.width; --width is needed only for a checkpoint without it. The
optimizer state is not converted.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import drnet_ckpt  # noqa: E402
import mobilenet_ref  # noqa: E402


def convert(records, width=None):
    """(model with the checkpoint's weights loaded, its state_dict) for checkpoint records."""
    model_name = drnet_ckpt.text(records, "meta.model", "mobilenet")
    if model_name != "mobilenet":
        raise SystemExit(f"error: the checkpoint holds model '{model_name}', not mobilenet")
    width = drnet_ckpt.scalar(records, "meta.width", width)
    if width is None:
        raise SystemExit("error: the checkpoint has no meta.width: pass --width")
    if "linear.weight" not in records:
        raise SystemExit("error: the checkpoint has no tensor 'linear.weight': not a MobileNet's weights")
    classes = drnet_ckpt.scalar(records, "meta.num_classes", records["linear.weight"].shape[0])
    model = mobilenet_ref.MobileNet(width, classes)
    state = mobilenet_ref.tensors_to_state(model, records, drnet_ckpt.scalar(records, "train.step", 0))
    model.load_state_dict(state, strict=True)
    return model, state


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input", help="our checkpoint (.ckpt)")
    ap.add_argument("output", help="PyTorch state_dict to write (.pt)")
    ap.add_argument("--width", type=float, help="only for a checkpoint without meta.width")
    args = ap.parse_args()
    try:
        records = drnet_ckpt.read(args.input)
        model, state = convert(records, args.width)
    except (drnet_ckpt.CheckpointError, KeyError, ValueError) as e:
        raise SystemExit(f"error: {e}")
    torch.save(state, args.output)
    params = sum(p.numel() for p in model.parameters())
    print(f"{args.output}: MobileNet width {drnet_ckpt.scalar(records, 'meta.width', args.width):g}, "
          f"{len(state)} tensors, {params} parameters")


if __name__ == "__main__":
    main()
