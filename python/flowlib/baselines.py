"""Classical baselines: zero flow, OpenCV Farneback, DIS (fast, medium) and DeepFlow.

    scripts/baselines [--json training/baselines.json]      # the table on the shared validation data
    scripts/baselines --pairs pairs.json --flows-out DIR      # flows of given pairs, for `optical-flow eval`

With --pairs, the file lists [first image, second image] paths; each method's flow of pair k is written as
DIR/<method>/<k>.flo, so that the caller measures every method with its own code.
"""
import argparse
import json
import os
import sys
from typing import Dict

from .evaluation import Method, evaluate_full, format_table, validation_sets, zero_flow
from .flowio import read_rgb, write_flo


def methods() -> Dict[str, Method]:
    import cv2

    def grey(img):
        return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)

    def farneback(a, b):
        return cv2.calcOpticalFlowFarneback(grey(a), grey(b), None, 0.5, 5, 15, 5, 7, 1.5, 0)

    def dis(preset):
        def run(a, b):
            return cv2.DISOpticalFlow_create(preset).calc(grey(a), grey(b), None)
        return run

    found = {"zero": zero_flow, "farneback": farneback, "dis-fast": dis(cv2.DISOPTICAL_FLOW_PRESET_FAST),
             "dis-medium": dis(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)}
    if hasattr(cv2, "optflow"):  # opencv_contrib, which Debian's python3-opencv includes
        found["deepflow"] = lambda a, b: cv2.optflow.createOptFlow_DeepFlow().calc(grey(a), grey(b), None)
    return found


def write_flows(pairs_file: str, out: str, names) -> int:
    available = methods()
    unknown = [name for name in names if name not in available]
    if unknown:
        print(f"unknown method {unknown[0]!r}; the methods are {', '.join(available)}", file=sys.stderr)
        return 2
    with open(pairs_file) as f:
        pairs = json.load(f)
    for name in names:
        os.makedirs(os.path.join(out, name), exist_ok=True)
    for k, (first, second) in enumerate(pairs):
        a, b = read_rgb(first), read_rgb(second)
        for name in names:
            write_flo(os.path.join(out, name, f"{k}.flo"), available[name](a, b))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="also write the table as JSON: {method: {set: {measure: value}}}")
    parser.add_argument("--pairs", help="a JSON list of [first image, second image] to compute flows for")
    parser.add_argument("--flows-out", help="with --pairs: the folder to write DIR/<method>/<k>.flo in")
    parser.add_argument("--methods", help="with --pairs: the methods, comma-separated (default all)")
    args = parser.parse_args()
    if args.pairs:
        if not args.flows_out:
            parser.error("--pairs needs --flows-out")
        return write_flows(args.pairs, args.flows_out, args.methods.split(",") if args.methods else list(methods()))
    sets = validation_sets()
    if not sets:
        print("no validation data found (../shared/data)", file=sys.stderr)
        return 1
    results = {name: evaluate_full(fn, sets) for name, fn in methods().items()}
    print(format_table(results))
    if args.json:
        finite = {m: {n: {k: (v if v == v else None) for k, v in row.items()} for n, row in per_set.items()}
                  for m, per_set in results.items()}  # a band without pixels is null, not NaN
        with open(args.json, "w") as f:
            json.dump(finite, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
