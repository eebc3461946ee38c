#!/usr/bin/env python3
"""PyTorch side of the GPU training-speed comparison (tests/device/speed.sh runs it next to
`train --bench-steps`).

Trains the identical MobileNet-CIFAR (mobilenet_ref.py: kuangliu/pytorch-cifar layout, width 1)
with SGD (lr 0.1, momentum 0.9, weight decay 5e-4) at batch 128 and reports training images/s in
several modes, each in its own child process (a hung or slow compile cannot take the others down):

  eager          NCHW, PyTorch's defaults
  channels_last  the model and the batch in torch.channels_last (cuDNN runs the depthwise convs)
  compile        torch.compile(model), default mode
  max-autotune   torch.compile(model, mode="max-autotune") (Triton autotuning plus CUDA graphs),
                 only if it compiles within --compile-timeout seconds (else reported as such)

TF32: PyTorch's defaults, i.e. on for cuDNN convolutions (torch.backends.cudnn.allow_tf32 = True) and
off for matmuls (the 1024x10 classifier only). cudnn.benchmark is on: cuDNN times its algorithms as
our backend does. The batch is a fixed random tensor already on the device (no loader cost: PyTorch's
advantage). Each mode: --warmup steps (compilation included), then --repeats timed runs of --steps
steps, each run ended by torch.cuda.synchronize(); the median run is reported.

--autocast bf16 runs each step's forward and loss under torch.autocast(dtype=torch.bfloat16), PyTorch's
mixed precision (on the CPU: bf16 convolutions and matmuls through oneDNN; compare with our
--precision bf16, which rounds less: tests/reference/make_bf16_reference.py says how). On the CPU the
child keeps freed memory (cpu_malloc.py), as the other CPU comparisons do.

Output: one "BENCH {json}" line per mode and a table at the end. On a machine without CUDA, --device
cpu runs the same code on the CPU (tests use it with tiny step counts so that the script cannot rot).

    python3 tests/reference/bench_train_torch.py [--device cuda] [--modes eager,channels_last,compile,max-autotune]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

MODES = ["eager", "channels_last", "compile", "max-autotune"]


def child(a):
    """Runs one mode in this process and prints its BENCH line."""
    import torch
    import torch.nn.functional as F

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from mobilenet_ref import MobileNet

    dev = torch.device(a.device)
    if dev.type == "cpu":
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from cpu_malloc import keep_freed_memory
        keep_freed_memory()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = True        # PyTorch's default, stated explicitly
    torch.backends.cuda.matmul.allow_tf32 = False  # PyTorch's default
    torch.manual_seed(0)
    model = MobileNet(a.width).to(dev)
    model.train()
    x = torch.randn(a.batch, 3, 32, 32, device=dev)
    y = torch.randint(0, 10, (a.batch,), device=dev)
    if a.mode in ("channels_last",):
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    fwd = model
    if a.mode in ("compile", "max-autotune"):
        if not hasattr(torch, "compile"):
            print("BENCH " + json.dumps({"impl": "torch", "mode": a.mode, "status": "unavailable",
                                         "note": f"torch {torch.__version__} has no torch.compile"}))
            return
        fwd = torch.compile(model) if a.mode == "compile" else torch.compile(model, mode="max-autotune")

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.autocast == "bf16"):
            loss = F.cross_entropy(fwd(x), y)
        loss.backward()
        opt.step()
        return loss

    t0 = time.perf_counter()
    step()  # the first step compiles (compile modes) and runs the cuDNN searches
    sync()
    first = time.perf_counter() - t0
    for _ in range(a.warmup - 1):
        step()
    sync()
    runs = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        for _ in range(a.steps):
            loss = step()
        sync()
        runs.append((time.perf_counter() - t0) * 1e3 / a.steps)
    med = statistics.median(runs)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print("BENCH " + json.dumps({
        "impl": "torch", "mode": a.mode, "status": "ok", "torch": torch.__version__, "device": name,
        "batch": a.batch, "width": a.width, "warmup": a.warmup, "steps": a.steps, "repeats": a.repeats,
        "first_step_s": round(first, 3), "median_ms": round(med, 5), "img_per_s": round(a.batch * 1e3 / med, 1),
        "repeat_ms": [round(r, 5) for r in runs], "final_loss": round(float(loss), 5),
        "autocast": a.autocast, "tf32_conv": torch.backends.cudnn.allow_tf32, "tf32_matmul": torch.backends.cuda.matmul.allow_tf32}))


def parent(a):
    rows = []
    deadline = time.time() + a.deadline if a.deadline else None
    for mode in a.modes.split(","):
        if mode not in MODES:
            sys.exit(f"error: --modes: unknown mode '{mode}' (known: {', '.join(MODES)})")
        limit = a.compile_timeout + a.run_timeout if mode in ("compile", "max-autotune") else a.run_timeout
        if deadline is not None:
            limit = min(limit, deadline - time.time() - 2)
            if limit < 5:
                rows.append({"mode": mode, "status": "skipped", "note": "no time left before the deadline"})
                continue
        cmd = [sys.executable, os.path.abspath(__file__), "--child", "--mode", mode, "--device", a.device,
               "--batch", str(a.batch), "--width", str(a.width), "--warmup", str(a.warmup),
               "--steps", str(a.steps), "--repeats", str(a.repeats), "--threads", str(a.threads),
               "--autocast", a.autocast]
        t0 = time.time()
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
            out = p.stdout + p.stderr
            line = [l for l in p.stdout.splitlines() if l.startswith("BENCH ")]
            if p.returncode == 0 and line:
                row = json.loads(line[-1][6:])
            else:
                tail = " | ".join(out.strip().splitlines()[-3:])
                row = {"mode": mode, "status": "failed", "note": f"exit {p.returncode}: {tail[-300:]}"}
        except subprocess.TimeoutExpired:
            what = "did not compile and run" if mode in ("compile", "max-autotune") else "did not finish"
            row = {"mode": mode, "status": "timeout", "note": f"{what} within {limit:.0f} s"}
        row["wall_s"] = round(time.time() - t0, 1)
        row.setdefault("mode", mode)
        print("BENCH " + json.dumps(row), flush=True)
        rows.append(row)

    print(f"\nPyTorch training step, MobileNet-CIFAR width {a.width}, batch {a.batch}, device {a.device}, "
          f"autocast {a.autocast}: "
          f"{a.warmup} warm-up steps, median of {a.repeats} runs of {a.steps} steps")
    print(f"{'mode':<15} {'img/s':>10} {'ms/step':>9} {'first step s':>13} {'wall s':>7}  note")
    for r in rows:
        if r.get("status") == "ok":
            print(f"{r['mode']:<15} {r['img_per_s']:>10.1f} {r['median_ms']:>9.3f} {r['first_step_s']:>13.1f} "
                  f"{r.get('wall_s', 0):>7.1f}  {r['device']}, torch {r['torch']}")
        else:
            print(f"{r['mode']:<15} {'-':>10} {'-':>9} {'-':>13} {r.get('wall_s', 0):>7.1f}  "
                  f"{r['status']}: {r.get('note', '')}")
    ok = [r for r in rows if r.get("status") == "ok"]
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--autocast", choices=["off", "bf16"], default="off",
                    help="bf16: forward and loss under torch.autocast(dtype=torch.bfloat16)")
    ap.add_argument("--compile-timeout", type=float, default=90,
                    help="seconds a compile mode may take beyond --run-timeout before it is abandoned")
    ap.add_argument("--run-timeout", type=float, default=60, help="seconds for a mode's whole child process")
    ap.add_argument("--deadline", type=float, default=0, help="seconds for everything (0: none)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="eager", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.warmup < 1 or a.steps < 1 or a.repeats < 1 or a.batch < 1:
        sys.exit("error: --warmup, --steps, --repeats and --batch must be at least 1")
    if a.child:
        child(a)
        return 0
    return parent(a)


if __name__ == "__main__":
    sys.exit(main())
