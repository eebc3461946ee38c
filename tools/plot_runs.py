#!/usr/bin/env python3
"""Plots one or more training runs: loss and accuracy per epoch (train and test) and the learning rate.

    python3 tools/plot_runs.py runs/mobilenet-cifar10-20261130-235303              -> run.png
    python3 tools/plot_runs.py runs/a runs/b/log.jsonl -o compare.png --title "width 0.5 vs 1"
    python3 tools/plot_runs.py runs/cpu runs/gpu --time -o time.png     -> against wall-clock time

Each argument is a run directory (its log.jsonl) or a log file ./train wrote with --log. Only the
per-epoch lines are plotted (--log-every step lines are skipped); when an epoch appears twice (a run
stopped by --max-steps mid-epoch and resumed), its last line counts. With --time the x axis is the
run's wall-clock time (each line's run_seconds: training, evaluation and saving, across resumes;
lines from before run_seconds existed count the epochs' training time, so evaluations are missing
there). Needs matplotlib (on Debian: apt install python3-matplotlib).
"""
import argparse
import json
import os
import sys


def read_log(path):
    """{epoch: record} of the per-epoch lines of a JSON-lines log."""
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "log.jsonl")):
            raise SystemExit(f"error: '{path}' has no log.jsonl: give a run directory of ./train or a log file")
        path = os.path.join(path, "log.jsonl")
    elif not os.path.exists(path):
        raise SystemExit(f"error: '{path}' does not exist: give a run directory of ./train or a log file")
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise SystemExit(f"error: cannot read '{path}': {getattr(e, 'strerror', None) or e}")
    epochs = {}
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise SystemExit(f"error: {path}:{number}: not JSON ({e})")
        if isinstance(record, dict) and "test_acc" in record and "epoch" in record:
            epochs[int(record["epoch"])] = record
    if not epochs:
        raise SystemExit(f"error: {path} has no per-epoch lines (is it a ./train log?)")
    return path, [epochs[e] for e in sorted(epochs)]


def run_times(recs):
    """The run's wall-clock seconds at each epoch line: run_seconds where the line has it, else the
    time of the previous line plus the epoch's training time."""
    times, last = [], 0.0
    for r in recs:
        last = float(r["run_seconds"]) if "run_seconds" in r else last + float(r.get("seconds", 0.0))
        times.append(last)
    return times


def format_hours(seconds):
    minutes = int(round(seconds / 60))
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{seconds / 60:.1f} min"


def label_of(path):
    parent = os.path.basename(os.path.dirname(os.path.abspath(path)))
    name = os.path.basename(path)
    return parent if name == "log.jsonl" else name.rsplit(".", 1)[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="run directories or log files")
    ap.add_argument("-o", "--output", default="run.png", help="the PNG to write (run.png)")
    ap.add_argument("--title", help="a title over the plots")
    ap.add_argument("--time", action="store_true",
                    help="x axis: the run's wall-clock time (hours, or minutes for short runs) instead of epochs")
    args = ap.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError as e:  # a sentence naming the interpreter, not a traceback
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import tool_deps
        tool_deps.missing(f"tools/{os.path.basename(__file__)}", e)

    runs = [(path, recs, run_times(recs)) for path, recs in map(read_log, args.runs)]
    longest = max(times[-1] for _, _, times in runs)
    unit, scale = ("hours", 3600.0) if longest >= 2 * 3600 else ("minutes", 60.0)
    xlabel = f"wall-clock {unit}" if args.time else "epoch"
    fig, (ax_loss, ax_acc, ax_lr) = plt.subplots(1, 3, figsize=(15, 4.5))
    for i, (path, recs, times) in enumerate(runs):
        color = f"C{i}"
        name = label_of(path) if len(runs) > 1 else ""
        ep = [t / scale for t in times] if args.time else [r["epoch"] for r in recs]
        sep = " " if name else ""
        # Markers for each epoch while they fit; a 200-epoch run's would hide its curves.
        ms, dot = (6, ".") if len(recs) <= 60 else (2.5, None)
        ax_loss.plot(ep, [r["train_loss"] for r in recs], color=color, ls="--", marker=dot, label=f"{name}{sep}train")
        ax_loss.plot(ep, [r["test_loss"] for r in recs], color=color, marker="o", ms=ms, label=f"{name}{sep}test")
        ax_acc.plot(ep, [r["train_acc"] for r in recs], color=color, ls="--", marker=dot, label=f"{name}{sep}train")
        ax_acc.plot(ep, [r["test_acc"] for r in recs], color=color, marker="o", ms=ms, label=f"{name}{sep}test")
        best = max(recs, key=lambda r: r["test_acc"])
        ax_acc.annotate(f"{best['test_acc']:.2f}%", (ep[recs.index(best)], best["test_acc"]), textcoords="offset points",
                        xytext=(0, 6), ha="center", color=color, fontsize=8)
        ax_lr.plot(ep, [r["lr"] for r in recs], color=color, marker=dot, label=name or "lr")
    ax_loss.set(title="loss (cross-entropy)", xlabel=xlabel, ylabel="loss")
    ax_acc.set(title="accuracy", xlabel=xlabel, ylabel="%")
    ax_lr.set(title="learning rate at the epoch's end", xlabel=xlabel, ylabel="lr")
    for ax in (ax_loss, ax_acc, ax_lr):
        if not args.time:
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout()
    fig.savefig(args.output, dpi=100)
    for path, recs, times in runs:
        best = max(recs, key=lambda r: r["test_acc"])
        print(f"{path}: {len(recs)} epochs, final test accuracy {recs[-1]['test_acc']:.2f}% (epoch "
              f"{recs[-1]['epoch']}), best {best['test_acc']:.2f}% (epoch {best['epoch']}), "
              f"{format_hours(times[-1])} of run time")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    sys.exit(main())
