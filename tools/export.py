#!/usr/bin/env python3
"""Exports the weights of a drnet run to PyTorch (a state_dict, .pt) or to ONNX (.onnx).

    python3 tools/export.py RUN_DIR_OR_CKPT OUT.pt             a state_dict for tools/mobilenet.py
    python3 tools/export.py RUN_DIR_OR_CKPT OUT.onnx           an ONNX graph (logits for (n, 3, 32, 32))
    python3 tools/export.py runs/mobilenet-cifar10-... model.pt model.onnx    both at once

The input is a run directory (its final.ckpt, or its checkpoint.ckpt when that one is further on) or
any checkpoint ./train writes (a training state or weights only); the width and the number of
classes come from it. The state_dict loads into `tools/mobilenet.py`'s MobileNet(width) as it is,
under the same names (as it would into kuangliu/pytorch-cifar's MobileNet at width 1);
num_batches_tracked is the checkpoint's train.step, else 0. The optimizer state is not exported. The
ONNX file comes from torch.onnx.export of that module in eval mode (batch norm with the running
statistics), opset 13, with a dynamic batch dimension; its input "images" is normalized as ./train
normalizes (see tools/mobilenet.py).

Needs torch and numpy (on Debian: apt install python3-torch).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import torch
    import drnet_ckpt  # noqa: E402 (needs numpy)
    import mobilenet  # noqa: E402
except ImportError as e:  # a sentence, not a traceback, on a machine without PyTorch or numpy
    raise SystemExit(f"error: {os.path.basename(__file__)} needs PyTorch and numpy ({e}): "
                     "apt install python3-torch (Debian, Ubuntu), or pip install torch numpy")


def saved_step(path):
    """The training step a checkpoint was saved at, -1 when it cannot be read."""
    try:
        return drnet_ckpt.scalar(drnet_ckpt.read(path), "train.step", -1)
    except (OSError, drnet_ckpt.CheckpointError):
        return -1


def resolve(path):
    """The checkpoint file for a run directory (as ./train --init DIR chooses: final.ckpt, unless
    checkpoint.ckpt is further on -- a run resumed after --max-steps and then interrupted) or a path."""
    if os.path.isdir(path):
        final, ckpt = os.path.join(path, "final.ckpt"), os.path.join(path, "checkpoint.ckpt")
        if not os.path.isfile(final) and not os.path.isfile(ckpt):
            raise SystemExit(f"error: '{path}' holds neither final.ckpt nor checkpoint.ckpt: not a run directory")
        if not os.path.isfile(final):
            return ckpt
        final_step = saved_step(final)  # -1: damaged; chosen anyway, so that reading it says why
        return ckpt if final_step >= 0 and saved_step(ckpt) > final_step else final
    return path


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
    model = mobilenet.MobileNet(width, classes)
    state = mobilenet.tensors_to_state(model, records, drnet_ckpt.scalar(records, "train.step", 0))
    model.load_state_dict(state, strict=True)
    return model, state


def export_onnx(model, path):
    model.eval()
    example = torch.zeros(1, 3, 32, 32)
    torch.onnx.export(model, example, path, input_names=["images"], output_names=["logits"],
                      dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}, opset_version=13)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input", help="a run directory or a checkpoint (.ckpt)")
    ap.add_argument("outputs", nargs="+", help="files to write: NAME.pt (state_dict) and/or NAME.onnx")
    ap.add_argument("--width", type=float, help="only for a checkpoint without meta.width")
    args = ap.parse_args()
    for out in args.outputs:
        if not out.endswith((".pt", ".pth", ".onnx")):
            raise SystemExit(f"error: '{out}': name the output .pt (a PyTorch state_dict) or .onnx")
    path = resolve(args.input)
    try:
        records = drnet_ckpt.read(path)
        model, state = convert(records, args.width)
    except (OSError, drnet_ckpt.CheckpointError, KeyError, ValueError) as e:
        raise SystemExit(f"error: {e}")
    width = drnet_ckpt.scalar(records, "meta.width", args.width)
    params = sum(p.numel() for p in model.parameters())
    for out in args.outputs:
        if out.endswith(".onnx"):
            export_onnx(model, out)
            print(f"{out}: ONNX (opset 13) of MobileNet width {width:g} from {path}: input 'images' "
                  f"(batch, 3, 32, 32), output 'logits'")
        else:
            torch.save(state, out)
            print(f"{out}: PyTorch state_dict of MobileNet width {width:g} from {path}, {len(state)} tensors, "
                  f"{params} parameters; load it with tools/mobilenet.py: MobileNet({width:g})")


if __name__ == "__main__":
    main()
