"""Plots training/log.csv (validation figures over training time, beside the classical baselines on the same pairs)
to training/curve.png.

    scripts/plot-training [--baselines training/baselines.json]
"""
import argparse
import csv
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FormatStrFormatter  # noqa: E402

from .paths import TRAINING_DIR  # noqa: E402
from .runs import read_runs, run_changes  # noqa: E402

# (log column, set and measure in baselines.json, panel title); log scale for all but the score.
PANELS = (("chairs_epe", ("chairs", "epe"), "FlyingChairs samples (9 pairs): EPE"),
          ("sintel_epe", ("sintel", "epe"), "Sintel training pairs (5, clean and final): EPE"),
          ("kitti2015_epe", ("kitti2015", "epe"), "KITTI 2015 (5 pairs): EPE"),
          ("kitti2015_fl_all", ("kitti2015", "fl_all"), "KITTI 2015: Fl-all"),
          ("sintel_demo_epe", ("sintel-demo", "epe"), "Sintel demo pair: EPE"),
          ("score", None, "selection score (geometric mean of ratios to DIS medium)"))
BASELINE_COLOURS = (("zero", "k"), ("farneback", "c"), ("dis-fast", "m"), ("dis-medium", "r"), ("deepflow", "g"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log", default=os.path.join(TRAINING_DIR, "log.csv"))
    parser.add_argument("--baselines", default=os.path.join(TRAINING_DIR, "baselines.json"))
    parser.add_argument("--runs", default=os.path.join(TRAINING_DIR, "runs.csv"))
    parser.add_argument("--out", default=os.path.join(TRAINING_DIR, "curve.png"))
    args = parser.parse_args()
    rows = list(csv.DictReader(open(args.log)))
    if not rows:
        raise SystemExit(f"{args.log} has no rows yet")
    changes = run_changes(read_runs(args.runs))
    baselines = json.load(open(args.baselines)) if os.path.exists(args.baselines) else {}
    fig, axes = plt.subplots(2, 3, figsize=(18, 7.5))
    end = max(float(rows[-1]["wall_hours"]), changes[-1][0] if changes else 0) + 0.25
    for ax, (column, measure, title) in zip(axes.flat, PANELS):
        points = [(float(r["wall_hours"]), float(r[column])) for r in rows if r.get(column, "") != ""]
        if points:
            ax.plot(*zip(*points), "o-", markersize=3, label="RAFT-S (this project)")
        if column == "chairs_epe":
            ax.plot([float(r["wall_hours"]) for r in rows], [float(r["train_epe"]) for r in rows], ":", color="grey",
                    label="training EPE (synthetic)")
        if measure is None:
            ax.axhline(1.0, linestyle="--", color="r", label="DIS medium = 1")
        else:
            for name, colour in BASELINE_COLOURS:
                value = baselines.get(name, {}).get(measure[0], {}).get(measure[1])
                if value is not None:
                    shown = f"{100 * value:.1f}%" if measure[1] == "fl_all" else f"{value:.2f}"
                    ax.axhline(value, linestyle="--", color=colour, label=f"{name} {shown}")
        for at, label in changes:
            ax.axvline(at, color="grey", linewidth=0.8, alpha=0.6)
            ax.annotate(label, (at, 1), xycoords=("data", "axes fraction"), xytext=(3, -3),
                        textcoords="offset points", fontsize=5, color="dimgrey", va="top", rotation=90)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("training hours (wall clock, 2 CPU cores)", fontsize=8)
        if measure is not None and measure[1] == "epe":
            ax.set_yscale("log")  # the late, small differences matter more than the first hour
            for axis_format in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
                axis_format(FormatStrFormatter("%g"))
        ax.grid(alpha=0.3)
        ax.set_xlim(0, end)
        ax.legend(fontsize=6, loc="upper right")
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(args.out)


if __name__ == "__main__":
    main()
