"""Exports a model to a self-contained TorchScript file with its metadata embedded.

    scripts/export --arch raft-small --out models/raft-small.pt
    scripts/export --arch raft --weights raft-things.pth --out raft-things.pt

`--weights` accepts the RAFT authors' checkpoints (DataParallel `module.` keys), torchvision's RAFT state dicts,
FlowNetPytorch's and FlowNet2's `.pth.tar` files (their `div_flow` is kept) and plain state dicts. Without it the
weights are random (seeded), which is what the parity tests use.
"""
import argparse
import json
import os
import sys

import torch

from . import checkpoints, models


def export(arch: str, out: str, *, weights: str = None, source: str = "auto", seed: int = 0,
           name: str = None, trained_on: str = None) -> dict:
    torch.manual_seed(seed)
    model = models.build(arch)
    if weights:
        checkpoint = torch.load(weights, map_location="cpu")
        checkpoints.load_into(model, checkpoints.state_from(checkpoint, source=source, small=models.is_small(arch)))
        scale = checkpoints.flow_scale(checkpoint)
        if scale is not None and hasattr(model, "div_flow"):
            model.div_flow = scale
    model.eval()
    info = models.metadata(arch, name=name or os.path.splitext(os.path.basename(out))[0],
                           trained_on=trained_on or ("see weights file" if weights else f"random (seed {seed})"),
                           weights_source=os.path.basename(weights) if weights else "random")
    if hasattr(model, "div_flow"):
        info["div_flow"] = model.div_flow
    models.attach_metadata(model, info)
    scripted = torch.jit.script(model)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp"
    scripted.save(tmp)
    os.replace(tmp, out)
    return info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", required=True, choices=sorted(models.ARCHITECTURES))
    parser.add_argument("--out", required=True)
    parser.add_argument("--weights", help="checkpoint to convert (authors', torchvision or plain state dict)")
    parser.add_argument("--source", default="auto", choices=["auto", "authors", "torchvision"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name")
    parser.add_argument("--trained-on")
    args = parser.parse_args(argv)
    try:
        info = export(args.arch, args.out, weights=args.weights, source=args.source, seed=args.seed,
                      name=args.name, trained_on=args.trained_on)
    except checkpoints.CheckpointError as err:
        print(f"export: {args.weights}: {err}", file=sys.stderr)
        return 2
    print(json.dumps({"out": args.out, **info}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
