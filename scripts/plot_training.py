"""Plots training/log.csv (validation EPE over samples seen, with the classical baselines) to training/curve.png.

    /usr/bin/python3 scripts/plot_training.py [--baselines training/baselines.json]
"""
import argparse
import csv
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log", default=os.path.join(ROOT, "training", "log.csv"))
    parser.add_argument("--baselines", default=os.path.join(ROOT, "training", "baselines.json"))
    parser.add_argument("--out", default=os.path.join(ROOT, "training", "curve.png"))
    args = parser.parse_args()
    rows = list(csv.DictReader(open(args.log)))
    if not rows:
        raise SystemExit(f"{args.log} has no rows yet")
    hours = [float(r["wall_hours"]) for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    baselines = json.load(open(args.baselines)) if os.path.exists(args.baselines) else {}
    for ax, key, title in ((axes[0], "chairs_epe", "FlyingChairs samples (9 pairs)"), (axes[1], "sintel_epe", "Sintel pair")):
        values = [float(r[key]) for r in rows if r[key] != ""]
        ax.plot(hours[:len(values)], values, "o-", label="RAFT-S (this project)")
        ax.plot(hours, [float(r["train_epe"]) for r in rows], ":", color="grey", label="training EPE (synthetic)") if key == "chairs_epe" else None
        set_name = key.split("_")[0]
        for name, style in (("zero", "k--"), ("farneback", "c--"), ("dis-fast", "m--"), ("dis-medium", "r--")):
            if name in baselines and set_name in baselines[name]:
                ax.axhline(baselines[name][set_name], linestyle="--", color=style[0], label=f"{name} {baselines[name][set_name]:.2f}")
        ax.set_title(title)
        ax.set_xlabel("training hours (wall clock, 2 CPU cores)")
        ax.set_ylabel("end-point error (px)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(args.out)


if __name__ == "__main__":
    main()
