#!/usr/bin/env python3
"""Exports the weights of a drnet run to PyTorch (a state_dict, .pt) or to ONNX (.onnx).

    python3 tools/export.py RUN_DIR_OR_CKPT OUT.pt             a state_dict for tools/mobilenet.py (or mobilenetv2.py)
    python3 tools/export.py RUN_DIR_OR_CKPT OUT.onnx           an ONNX graph (logits for (n, 3, 32, 32))
    python3 tools/export.py runs/mobilenet-cifar10-... model.pt model.onnx    both at once

The input is a run directory (its final.ckpt, or its checkpoint.ckpt when that one is further on) or
any checkpoint ./train writes (a training state or weights only); the model (meta.model), the width
and the number of classes come from it. The state_dict loads as it is, under the same names, into
`tools/mobilenet.py`'s MobileNet(width) or `tools/mobilenetv2.py`'s MobileNetV2(width) (as it would
into kuangliu/pytorch-cifar's MobileNet or MobileNetV2 at width 1);
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
import tool_deps  # noqa: E402 (standard library only)
try:
    import torch
    import numpy as np
    import drnet_ckpt  # noqa: E402 (needs numpy)
    import mobilenet  # noqa: E402
    import mobilenetv2  # noqa: E402
except ImportError as e:  # a sentence naming the interpreter, not a traceback
    tool_deps.missing(f"tools/{os.path.basename(__file__)}", e)


# meta.model -> (the PyTorch class, its module's name, the model's name in messages). A checkpoint
# without meta.model (an early format) holds a MobileNet.
MODELS = {"mobilenet": (mobilenet.MobileNet, "mobilenet", "MobileNet"),
          "mobilenetv2": (mobilenetv2.MobileNetV2, "mobilenetv2", "MobileNetV2")}


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


def convert(records, path, width=None):
    """(model with the checkpoint's weights loaded, its state_dict, its MODELS entry) for checkpoint
    records. The meta records are checked before a model is built (drnet_ckpt.meta), as ./train
    checks them."""
    model_name, saved_width, classes = drnet_ckpt.meta(records, path)
    model_name = model_name or "mobilenet"
    if model_name not in MODELS:
        raise SystemExit(f"error: checkpoint '{path}' holds model '{model_name}', not one of {', '.join(MODELS)}")
    cls, _, noun = MODELS[model_name]
    width = saved_width if saved_width is not None else width
    if width is None:
        raise SystemExit(f"error: checkpoint '{path}' has no meta.width: pass --width")
    linear = records.get("linear.weight")
    if not isinstance(linear, np.ndarray) or linear.ndim != 2:
        raise SystemExit(f"error: checkpoint '{path}' has no 2-D tensor 'linear.weight': not a {noun}'s weights")
    if classes is not None and classes != linear.shape[0]:
        raise SystemExit(f"error: checkpoint '{path}': meta.num_classes is {classes}, but linear.weight has "
                         f"{linear.shape[0]} rows")
    model = cls(width, linear.shape[0])
    state = mobilenet.tensors_to_state(model, records, drnet_ckpt.scalar(records, "train.step", 0))
    model.load_state_dict(state, strict=True)
    return model, state, MODELS[model_name]


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
        model, state, (cls, module, noun) = convert(records, path, args.width)
    except (OSError, drnet_ckpt.CheckpointError) as e:
        raise SystemExit(f"error: {e}")
    except (KeyError, ValueError) as e:  # a tensor missing or of another shape
        raise SystemExit(f"error: checkpoint '{path}': {e}")
    width = drnet_ckpt.scalar(records, "meta.width", args.width)
    params = sum(p.numel() for p in model.parameters())
    for out in args.outputs:
        try:
            if out.endswith(".onnx"):
                export_onnx(model, out)
                print(f"{out}: ONNX (opset 13) of {noun} width {width:g} from {path}: input 'images' "
                      f"(batch, 3, 32, 32), output 'logits'")
            else:
                torch.save(state, out)
                print(f"{out}: PyTorch state_dict of {noun} width {width:g} from {path}, {len(state)} tensors, "
                      f"{params} parameters; load it with tools/{module}.py: {cls.__name__}({width:g})")
        except OSError as e:
            raise SystemExit(f"error: cannot write '{out}': {e.strerror or e}")


if __name__ == "__main__":
    main()
