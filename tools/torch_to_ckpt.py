#!/usr/bin/env python3
"""Converts a PyTorch MobileNet state_dict into one of our checkpoints, holding weights only.

    python3 tools/torch_to_ckpt.py IN.pt OUT.ckpt --width W [--dataset cifar10]

IN: what torch.save wrote for tools/mobilenet.py's MobileNet (what tools/export.py writes) or for
kuangliu/pytorch-cifar's MobileNet (width 1): a bare state_dict, or a dict holding it under 'net'
(kuangliu's checkpoints), 'state_dict' or 'model'; a DataParallel 'module.' prefix is removed. It is
loaded into the reference model of --width first, so a missing tensor or another width is refused
naming the tensor.

OUT holds meta.model, meta.dataset, meta.width, meta.num_classes and every parameter and running
statistic under its own name (num_batches_tracked is dropped): what `./train --init OUT` and
`./train --eval-only --init OUT` need. It is not a resumable training state (no recipe, position or
momentum), so --resume refuses it. The file is written atomically.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tool_deps  # noqa: E402 (standard library only)
try:
    import torch
    import drnet_ckpt  # noqa: E402 (needs numpy)
    import mobilenet  # noqa: E402
except ImportError as e:  # a sentence naming the interpreter, not a traceback
    tool_deps.missing(f"tools/{os.path.basename(__file__)}", e)


def convert(state, width, dataset="cifar10"):
    """Checkpoint records for a state_dict, after loading it into tools/mobilenet.py's model (validation)."""
    state = mobilenet.unwrap_state(state)
    if "linear.weight" not in state:
        raise ValueError("no tensor 'linear.weight': not a MobileNet state_dict")
    classes = state["linear.weight"].shape[0]
    model = mobilenet.MobileNet(width, classes)
    full = dict(state)
    for name, t in model.state_dict().items():  # older or hand-made state_dicts may lack the counters
        if name.endswith("num_batches_tracked"):
            full.setdefault(name, t)
    try:
        model.load_state_dict(full, strict=True)
    except RuntimeError as e:
        raise ValueError(f"the state_dict does not fit MobileNet width {width}: {e}") from None
    records = {
        "meta.model": "mobilenet",
        "meta.dataset": dataset,
        "meta.width": float(width),
        "meta.num_classes": int(classes),
    }
    records.update(mobilenet.state_to_tensors(model.state_dict()))
    return records


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input", help="PyTorch state_dict (.pt)")
    ap.add_argument("output", help="our checkpoint to write (.ckpt)")
    ap.add_argument("--width", type=float, required=True, help="the model's width multiplier")
    ap.add_argument("--dataset", default="cifar10")
    args = ap.parse_args()
    try:
        records = convert(torch.load(args.input, map_location="cpu"), args.width, args.dataset)
    except (ValueError, TypeError) as e:
        raise SystemExit(f"error: {args.input}: {e}")
    drnet_ckpt.write(args.output, records)
    print(f"{args.output}: MobileNet width {args.width:g}, {len(records) - 4} tensors (weights only)")


if __name__ == "__main__":
    main()
