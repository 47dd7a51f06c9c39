"""A PyTorch process that the benchmarks time beside the addon: it loads one model once, then answers one timed
request per line on stdin, as a user's own Python loop would run it (warm after its first request).

    anchor.py --model M.pt --impl torchvision|eager|channels-last|autocast|compile [--threads T]

Request: {"a": FILE, "b": FILE, "width": W, "height": H, "iterations": N} (raw RGB frames). Reply, one line:
{"seconds": s, "minorFaults": n, "peakRssMb": m}: the request's wall time (padding, the network, cropping), the
minor page faults it took (fresh pages the allocator asked the kernel for) and the process's peak memory so far.

`torchvision` runs torchvision's RAFT with the export's weights (needs torchvision: Debian's torch 1.13); `eager`
this package's own model definition (FlowNet always); the others are PyTorch 2.x paths on the eager model:
channels-last tensors, bfloat16 autocast, and torch.compile (its compile time is the first request's).
"""
import argparse
import json
import resource
import sys
import time

import numpy as np
import torch

from baseline import estimate, load as load_twin
from flowlib import models


def build(path: str, impl: str):
    """The export's metadata and a function (image1, image2, iterations) -> flow at padded size."""
    if impl == "torchvision":
        return load_twin(path)
    scripted = torch.jit.load(path, map_location="cpu")
    info = json.loads(scripted.flow_metadata)
    model = models.build(info["arch"]).eval()
    model.load_state_dict(scripted.state_dict())
    if hasattr(model, "div_flow"):
        model.div_flow = scripted.div_flow
    if impl == "channels-last":
        model = model.to(memory_format=torch.channels_last)

        def run(image1, image2, iterations):
            return model(image1.contiguous(memory_format=torch.channels_last),
                         image2.contiguous(memory_format=torch.channels_last), iterations)
    elif impl == "autocast":
        def run(image1, image2, iterations):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return model(image1, image2, iterations).float()
    elif impl == "compile":
        compiled = torch.compile(model)

        def run(image1, image2, iterations):
            return compiled(image1, image2, iterations)
    else:
        def run(image1, image2, iterations):
            return model(image1, image2, iterations)
    return info, run


def read(path: str, width: int, height: int) -> torch.Tensor:
    data = np.fromfile(path, dtype=np.uint8).reshape(height, width, 3)
    return torch.from_numpy(data.copy()).permute(2, 0, 1).unsqueeze(0).float()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--impl", required=True,
                        choices=("torchvision", "eager", "channels-last", "autocast", "compile"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    info, run = build(args.model, args.impl)
    print(json.dumps({"ready": True, "torch": torch.__version__}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        image1 = read(request["a"], request["width"], request["height"])
        image2 = read(request["b"], request["width"], request["height"])
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        with torch.inference_mode():
            start = time.perf_counter()
            estimate(run, info, image1, image2, request["iterations"])
            seconds = time.perf_counter() - start
        usage = resource.getrusage(resource.RUSAGE_SELF)
        print(json.dumps({"seconds": seconds, "minorFaults": usage.ru_minflt - faults,
                          "peakRssMb": usage.ru_maxrss / 1024}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
