"""Classical baselines on the shared validation samples: zero flow, OpenCV Farneback and DIS (fast, medium).

    scripts/baselines [--json out.json]
"""
import argparse
import json
import sys

from .evaluation import evaluate, validation_sets, zero_flow


def methods():
    import cv2

    def grey(img):
        return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)

    def farneback(a, b):
        return cv2.calcOpticalFlowFarneback(grey(a), grey(b), None, 0.5, 5, 15, 5, 7, 1.5, 0)

    def dis(preset):
        def run(a, b):
            return cv2.DISOpticalFlow_create(preset).calc(grey(a), grey(b), None)
        return run

    return {"zero": zero_flow, "farneback": farneback, "dis-fast": dis(cv2.DISOPTICAL_FLOW_PRESET_FAST),
            "dis-medium": dis(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json")
    args = parser.parse_args()
    sets = validation_sets()
    if not sets:
        print("no validation data found (../shared/data)", file=sys.stderr)
        return 1
    results = {name: evaluate(fn, sets) for name, fn in methods().items()}
    for name, row in results.items():
        print(f"{name:12s} " + "  ".join(f"{k} EPE {v:6.3f}" for k, v in row.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
