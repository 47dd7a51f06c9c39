"""Where a model's error comes from, next to the classical baselines, on the shared validation samples.

    scripts/diagnose [--weights training/best.pt] [--iterations 12] [--json training/diagnosis.json]

Per set: EPE over the counted pixels and by ground-truth speed (under 3, 3-10, 10-40 and over 40 px), Fl-all, the
mean error vector (a systematic bias shows here), and the share of the true motion recovered (the projection of the
estimate onto the truth, 1 when perfect, under 1 when motions come out too short). Then each method's selection
score, the trainer's rule (evaluation.selection_score), so that weights made outside a run are judged as its
checkpoints are. Then, where the shared dashcam clip is present (video/solidWhiteRight.mp4, a camera driving down a
highway under a clear sky), the flow of its open sky, which stands still: the truth there is near zero (the sky is
at infinity; the camera's small rotations move it by a fraction of a pixel), so any motion found there is made up.
And the Sintel and KITTI 2012 pairs enlarged 1.5x before the flow, its flow brought back: a method robust to scale
gives about the same EPE.
"""
import argparse
import json
import os
import sys
from typing import Dict

import numpy as np
import torch

from .baselines import methods as baseline_methods
from .checkpoints import load_weights
from .evaluation import SKY_CLIP, SKY_PAIRS, Method, enlarged, evaluate, pair_errors, raft_method, selection_score, \
    set_metrics, sky_drift, sky_pairs, validation_sets
from .raft import RAFT
from .paths import TRAINING_DIR

SPEEDS = (("under 3 px", 0, 3), ("3-10 px", 3, 10), ("10-40 px", 10, 40), ("over 40 px", 40, float("inf")))


def breakdown(method: Method, pairs) -> Dict[str, object]:
    errors, speeds, estimates, truths = [], [], [], []
    for sample in pairs:
        flow = method(sample.image1, sample.image2)
        error, speed = pair_errors(flow, sample)
        errors.append(error)
        speeds.append(speed)
        estimates.append(flow[sample.valid])
        truths.append(sample.flow[sample.valid])
    error, speed = np.concatenate(errors), np.concatenate(speeds)
    estimate, truth = np.concatenate(estimates), np.concatenate(truths)
    metrics = set_metrics(errors, speeds)
    result: Dict[str, object] = {
        # As evaluate_full() reports them (EPE the mean over pairs), so the figures agree with the log and the card.
        "epe": metrics["epe"],
        "fl_all": metrics["fl_all"],
        "bias": [round(float(v), 3) for v in (estimate - truth).mean(axis=0)],
        "recovered": round(float((estimate * truth).sum() / (truth * truth).sum()), 3),
    }
    for name, low, high in SPEEDS:
        band = (speed >= low) & (speed < high)
        result[name] = {"pixels": round(float(band.mean()), 3),
                        "epe": round(float(error[band].mean()), 3) if band.any() else None}
    return result


# The sets measured again on enlarged pairs (their motions are mostly small, where enlarging tells most).
ENLARGED_SETS, ENLARGEMENT = ("sintel", "kitti2012"), 1.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=os.path.join(TRAINING_DIR, "best.pt"),
                        help="a RAFT-S state dict, a trainer checkpoint holding one under 'model', or an export "
                             "(models/raft-small.pt)")
    parser.add_argument("--iterations", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sets = validation_sets()
    if not sets:
        print("no validation data found (../shared/data)", file=sys.stderr)
        return 1
    weights = load_weights(args.weights)
    model = RAFT(small=True)
    model.load_state_dict(weights.get("model", weights))
    model.eval()
    label = f"raft-small (step {weights['step']})" if "step" in weights else "raft-small"
    methods = {label: raft_method(model, args.iterations), **baseline_methods()}
    results = {name: {set_name: breakdown(fn, pairs) for set_name, pairs in sets.items()}
               for name, fn in methods.items()}
    for set_name in sets:
        print(f"\n{set_name}: EPE (all / {' / '.join(s[0] for s in SPEEDS)}), Fl-all, mean error vector, "
              "motion recovered")
        for name, per_set in results.items():
            r = per_set[set_name]
            bands = " / ".join(f"{r[s[0]]['epe']:6.2f}" if r[s[0]]["epe"] is not None else "     -" for s in SPEEDS)
            print(f"  {name:26s} {r['epe']:6.2f} ({bands})  Fl-all {r['fl_all']:6.1%}"
                  f"  bias ({r['bias'][0]:+.2f}, {r['bias'][1]:+.2f})  recovered {r['recovered']:.2f}")
        shares = results[label][set_name]
        print("  pixels per speed band: " + ", ".join(f"{s[0]} {shares[s[0]]['pixels']:.0%}" for s in SPEEDS))
    if "dis-medium" in results:
        # The trainer's selection rule, so that weights made outside a run (an average, another checkpoint) are
        # judged on the same terms as its checkpoints.
        print("\nselection score (evaluation.selection_score: the geometric mean of ratios to DIS medium)")
        scores = {name: selection_score(per_set, results["dis-medium"]) for name, per_set in results.items()}
        for name, score in scores.items():
            results[name]["score"] = score
            print(f"  {name:26s} {score:6.3f}")
    enlarged_sets = {name: sets[name] for name in ENLARGED_SETS if name in sets}
    print(f"\nenlarged {ENLARGEMENT}x before the flow (EPE: {', '.join(enlarged_sets)}): softer detail, larger motions")
    for name, fn in methods.items():
        if name == "zero":
            continue  # zero flow is the same at any size
        results[name][f"enlarged-{ENLARGEMENT}x"] = row = evaluate(enlarged(fn, ENLARGEMENT), enlarged_sets)
        print(f"  {name:26s} " + " ".join(f"{row[s]:6.2f}" for s in enlarged_sets))
    pairs = sky_pairs()
    if pairs is not None:
        print(f"\nstill sky of {os.path.basename(SKY_CLIP)} ({SKY_PAIRS} pairs, truth near 0): length of the sky's "
              "median flow vector, mean flow length (px)")
        for name, fn in methods.items():
            results[name]["still-sky"] = sky = sky_drift(fn, pairs)
            print(f"  {name:26s} {sky['median_vector_px']:6.2f} {sky['mean_length_px']:6.2f}")
    else:
        print(f"\nstill sky: skipped ({SKY_CLIP} is absent)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
