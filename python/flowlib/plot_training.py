"""Plots training/log.csv (validation figures over training time, beside the classical baselines on the same pairs)
to training/curve.png. Each training stage (training/runs.csv) starts at a solid line labelled S1, S2, ...; below
the panels, what each stage changed; dotted lines mark changes resumed runs made within a stage.

    scripts/plot-training [--baselines training/baselines.json] [--diagnosis training/diagnosis.json]
"""
import argparse
import csv
import json
import os
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FormatStrFormatter  # noqa: E402

from .paths import TRAINING_DIR  # noqa: E402
from .runs import read_runs, stages  # noqa: E402

# (log column, set and measure in baselines.json, or in diagnosis.json for the sky, panel title); log scale for
# the EPE panels.
PANELS = (("chairs_epe", ("chairs", "epe"), "FlyingChairs samples (9 pairs): EPE"),
          ("sintel_epe", ("sintel", "epe"), "Sintel training pairs (5, clean and final): EPE"),
          ("kitti2015_epe", ("kitti2015", "epe"), "KITTI 2015 (5 pairs): EPE"),
          ("kitti2015_fl_all", ("kitti2015", "fl_all"), "KITTI 2015: Fl-all"),
          ("kitti2012_epe", ("kitti2012", "epe"), "KITTI 2012 (2 pairs): EPE"),
          ("sintel_demo_epe", ("sintel-demo", "epe"), "Sintel demo pair: EPE"),
          ("sky_median_px", ("still-sky", "median_vector_px"), "dashcam sky: median flow vector, px (truth ~0)"),
          ("score", None, "selection score (geometric mean of ratios to DIS medium)"))
BASELINE_COLOURS = (("zero", "k"), ("farneback", "c"), ("dis-fast", "m"), ("dis-medium", "r"), ("deepflow", "g"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log", default=os.path.join(TRAINING_DIR, "log.csv"))
    parser.add_argument("--baselines", default=os.path.join(TRAINING_DIR, "baselines.json"))
    parser.add_argument("--runs", default=os.path.join(TRAINING_DIR, "runs.csv"))
    parser.add_argument("--diagnosis", default=os.path.join(TRAINING_DIR, "diagnosis.json"),
                        help="scripts/diagnose's figures: the baselines' still sky")
    parser.add_argument("--out", default=os.path.join(TRAINING_DIR, "curve.png"))
    args = parser.parse_args()
    rows = list(csv.DictReader(open(args.log)))
    if not rows:
        raise SystemExit(f"{args.log} has no rows yet")
    found = stages(read_runs(args.runs))
    baselines = json.load(open(args.baselines)) if os.path.exists(args.baselines) else {}
    bundle_sky = None  # diagnose's "raft-small" is the bundled model, whose sky a new stage may not exceed
    if os.path.exists(args.diagnosis):
        for name, figures in json.load(open(args.diagnosis)).items():
            if name in baselines and "still-sky" in figures:
                baselines[name]["still-sky"] = figures["still-sky"]
            elif name.startswith("raft-small") and "still-sky" in figures:
                bundle_sky = figures["still-sky"]["median_vector_px"]
    footer = []
    for number, stage in enumerate(found, start=1):
        later = "; ".join(f"at {hours:.1f} h: {said}" for hours, said in stage["later"])
        said = f"S{number} ({stage['hours']:.1f} h, from {stage['start']}): {stage['changed'] or 'start'}"
        footer += textwrap.wrap(said + (f"; then {later}" if later else ""), 150, subsequent_indent="      ")
    fig, axes = plt.subplots(2, 4, figsize=(22, 8 + 0.16 * len(footer)))
    last_change = max([s["hours"] for s in found] + [h for s in found for h, _ in s["later"]], default=0)
    end = max(float(rows[-1]["wall_hours"]), last_change) + 0.25
    for ax, (column, measure, title) in zip(axes.flat, PANELS):
        points = [(float(r["wall_hours"]), float(r[column])) for r in rows if r.get(column, "") != ""]
        if points:
            ax.plot(*zip(*points), "o-", markersize=3, label="RAFT-S (this project)")
        if column == "chairs_epe":
            ax.plot([float(r["wall_hours"]) for r in rows], [float(r["train_epe"]) for r in rows], ":", color="grey",
                    label="training EPE (synthetic)")
        if column == "sky_median_px" and bundle_sky is not None:
            ax.axhline(bundle_sky, linestyle=":", color="tab:blue", label=f"bundle {bundle_sky:.2f} (the guard)")
        if measure is None:
            ax.axhline(1.0, linestyle="--", color="r", label="DIS medium = 1")
        else:
            for name, colour in BASELINE_COLOURS:
                value = baselines.get(name, {}).get(measure[0], {}).get(measure[1])
                if value is not None:
                    shown = f"{100 * value:.1f}%" if measure[1] == "fl_all" else f"{value:.2f}"
                    if column == "sky_median_px" and name == "zero":
                        continue  # the truth's own value: the axis
                    ax.axhline(value, linestyle="--", color=colour, label=f"{name} {shown}")
        for number, stage in enumerate(found, start=1):
            ax.axvline(stage["hours"], color="dimgrey", linewidth=1.0)
            ax.annotate(f"S{number}", (stage["hours"], 1), xycoords=("data", "axes fraction"), xytext=(2, -2),
                        textcoords="offset points", fontsize=7, color="dimgrey", va="top")
            for at, _ in stage["later"]:
                ax.axvline(at, color="grey", linewidth=0.6, linestyle=":", alpha=0.7)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("training hours (wall clock, 2 CPU cores)", fontsize=8)
        if measure is not None and measure[1] == "epe":
            ax.set_yscale("log")  # the late, small differences matter more than the first hour
            for axis_format in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
                axis_format(FormatStrFormatter("%g"))
        ax.grid(alpha=0.3)
        ax.set_xlim(0, end)
        ax.legend(fontsize=6, loc="upper right")
    bottom = (0.3 + 0.16 * len(footer)) / fig.get_figheight()
    fig.text(0.01, bottom - 0.01, "\n".join(footer), fontsize=7, family="monospace", va="top", color="dimgrey")
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(args.out, dpi=100)
    print(args.out)


if __name__ == "__main__":
    main()
