"""Plots training/log.csv (validation EPE over samples seen, with the classical baselines) to training/curve.png.

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
    hours = [float(r["wall_hours"]) for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(14, 4))
    changes = run_changes(read_runs(args.runs))
    baselines = json.load(open(args.baselines)) if os.path.exists(args.baselines) else {}
    panels = ((axes[0], "chairs_epe", "FlyingChairs samples (9 pairs)"), (axes[1], "sintel_epe", "Sintel pair"))
    for ax, key, title in panels:
        values = [float(r[key]) for r in rows if r[key] != ""]
        ax.plot(hours[:len(values)], values, "o-", label="RAFT-S (this project)")
        if key == "chairs_epe":
            ax.plot(hours, [float(r["train_epe"]) for r in rows], ":", color="grey", label="training EPE (synthetic)")
        set_name = key.split("_")[0]
        for name, style in (("zero", "k--"), ("farneback", "c--"), ("dis-fast", "m--"), ("dis-medium", "r--")):
            if name in baselines and set_name in baselines[name]:
                value = baselines[name][set_name]
                ax.axhline(value, linestyle="--", color=style[0], label=f"{name} {value:.2f}")
        for at, label in changes:
            ax.axvline(at, color="grey", linewidth=0.8, alpha=0.6)
            ax.annotate(label, (at, 1), xycoords=("data", "axes fraction"), xytext=(3, -3),
                        textcoords="offset points", fontsize=6, color="dimgrey", va="top", rotation=90)
        ax.set_title(title)
        ax.set_xlabel("training hours (wall clock, 2 CPU cores)")
        ax.set_yscale("log")  # the late, small differences matter more than the first hour
        for axis_format in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
            axis_format(FormatStrFormatter("%g"))
        ax.set_ylabel("end-point error (px, log scale)")
        ax.grid(alpha=0.3)
        ax.set_xlim(right=max(hours[-1], changes[-1][0] if changes else 0) + 0.25)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(args.out)


if __name__ == "__main__":
    main()
