#!/usr/bin/env python3
"""What this device can do at best, measured, for the "fraction of the machine" column of the
training-speed table (tests/device/speed.sh): memory bandwidth as a device-to-device copy (bytes read
plus bytes written, per second) and the TF32 matrix-multiply rate (an n x n x n float32 product with
TF32 allowed, 2 n^3 FLOP). Each is the median of --repeats timed runs after two warm-ups, timed with
CUDA events. On the CPU (--device cpu, the rehearsal) the same code measures a memory copy and a
float32 product with small sizes; those numbers mean little.

Output: one line `PEAK {json}`.

    python3 tests/reference/gpu_peaks.py [--device cuda] [--copy-mib 2048] [--n 8192] [--repeats 10]
"""
import argparse
import json
import statistics
import time

import torch


def timed(dev, fn, repeats):
    """Median seconds of fn() over repeats runs, after two warm-ups."""
    fn(), fn()
    out = []
    for _ in range(repeats):
        if dev.type == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            out.append(a.elapsed_time(b) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return statistics.median(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--copy-mib", type=int, default=None, help="size of the copied buffer (default 2048 on a GPU, 64 on the CPU)")
    ap.add_argument("--n", type=int, default=None, help="matrix size (default 8192 on a GPU, 1024 on the CPU)")
    ap.add_argument("--repeats", type=int, default=10)
    a = ap.parse_args()
    dev = torch.device(a.device)
    gpu = dev.type == "cuda"
    mib = a.copy_mib or (2048 if gpu else 64)
    n = a.n or (8192 if gpu else 1024)
    # The legacy switch, as bench_train_torch.py sets it: mixing it with the newer fp32_precision API
    # makes some PyTorch versions raise.
    torch.backends.cuda.matmul.allow_tf32 = True

    src = torch.empty(mib * 2**20 // 4, dtype=torch.float32, device=dev).uniform_()
    dst = torch.empty_like(src)
    copy_s = timed(dev, lambda: dst.copy_(src), a.repeats)
    del src, dst

    x = torch.randn(n, n, device=dev)
    y = torch.randn(n, n, device=dev)
    mm_s = timed(dev, lambda: torch.mm(x, y), a.repeats)

    name = torch.cuda.get_device_name(dev) if gpu else "CPU"
    print("PEAK " + json.dumps({
        "device": name, "torch": torch.__version__,
        "copy_mib": mib, "copy_gb_s": round(2 * mib * 2**20 / copy_s / 1e9, 1),
        "matmul_n": n, "matmul_tflop_s": round(2 * n**3 / mm_s / 1e12, 3),
        "matmul_precision": "tf32" if gpu else "fp32"}), flush=True)


if __name__ == "__main__":
    main()
