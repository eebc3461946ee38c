#!/usr/bin/env python3
"""The PyTorch/ONNX side of tests/test_export.sh: classifies the first N CIFAR-10 test images with what
tools/export.py wrote and prints the counts the test compares with `./train --eval-only`.

    export_check.py MODEL.pt --width W [--model mobilenet|mobilenetv2] [--onnx MODEL.onnx] [--limit N]

Prints "torch correct C N"; with --onnx also "onnx correct C N" and "onnx agree A N maxdiff D" (A
images where the ONNX graph's argmax equals the PyTorch module's, D the largest logit difference).
The ONNX graph runs on onnxruntime when it is installed, else on tests/reference/onnx_numpy.py; without
the onnx package it prints "onnx skipped: REASON".
"""
import argparse
import os
import sys

import numpy as np
import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(here, "..", "..", "tools"))
import mobilenet  # noqa: E402
import mobilenet_ref  # noqa: E402
import mobilenetv2  # noqa: E402

MODELS = {"mobilenet": mobilenet.MobileNet, "mobilenetv2": mobilenetv2.MobileNetV2}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("weights")
    ap.add_argument("--width", type=float, required=True)
    ap.add_argument("--model", choices=sorted(MODELS), default="mobilenet")
    ap.add_argument("--onnx")
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--data", default=mobilenet_ref.default_data_path())
    args = ap.parse_args()

    model = MODELS[args.model](args.width)
    model.load_state_dict(torch.load(args.weights, map_location="cpu"))
    model.eval()
    images, labels = mobilenet_ref.decode(mobilenet_ref.load_cifar10(args.data, "test")[:args.limit])
    with torch.no_grad():
        logits = torch.cat([model(torch.from_numpy(images[i:i + 250])) for i in range(0, len(images), 250)]).numpy()
    print(f"torch correct {int((logits.argmax(1) == labels).sum())} {len(labels)}")
    if not args.onnx:
        return
    try:
        import onnxruntime
        session = onnxruntime.InferenceSession(args.onnx, providers=["CPUExecutionProvider"])
        out = session.run(None, {session.get_inputs()[0].name: images})[0]
        engine = f"onnxruntime {onnxruntime.__version__}"
    except ImportError:
        try:
            import onnx
            import onnx_numpy
        except ImportError as e:
            print(f"onnx skipped: neither onnxruntime nor the onnx package is installed ({e})")
            return
        onnx.checker.check_model(onnx.load(args.onnx))
        out = np.concatenate([onnx_numpy.run(args.onnx, images[i:i + 100]) for i in range(0, len(images), 100)])
        engine = f"onnx {onnx.__version__} checker + the numpy interpreter in tests/reference/onnx_numpy.py"
    print(f"onnx run by {engine}")
    print(f"onnx correct {int((out.argmax(1) == labels).sum())} {len(labels)}")
    print(f"onnx agree {int((out.argmax(1) == logits.argmax(1)).sum())} {len(labels)} maxdiff {np.abs(out - logits).max():.3g}")


if __name__ == "__main__":
    main()
