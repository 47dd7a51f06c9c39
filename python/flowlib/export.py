"""Exports a model to a self-contained TorchScript file with its metadata embedded.

    scripts/export --arch raft-small --out models/raft-small.pt
    scripts/export --arch raft --weights raft-things.pth --out raft-things.pt
    scripts/export --reexport models/raft-small.pt --out models/raft-small.pt

`--weights` accepts the RAFT authors' checkpoints (DataParallel `module.` keys), torchvision's RAFT state dicts,
FlowNetPytorch's and FlowNet2's `.pth.tar` files (their `div_flow` is kept) and plain state dicts. Without it the
weights are random (seeded), which is what the parity tests use.

`--weightless` writes the architecture alone: every tensor is stored as one zero broadcast to its shape, so the file
is small, and the library refuses to run it until weights are given (a published set by name, a file, or an explicit
request for random ones).
"""
import argparse
import json
import os
import subprocess
import sys

import torch
from torch import nn

from . import checkpoints, models


def strip_weights(module: torch.jit.ScriptModule, memo: dict = None) -> None:
    """Replaces every parameter and buffer by a zero broadcast to its shape: saved, each takes one element. A tensor
    the module holds under two names (the RAFT authors' norm layers inside `downsample`) stays one tensor."""
    memo = {} if memo is None else memo

    def stripped(tensor, make):
        if id(tensor) not in memo:
            memo[id(tensor)] = (tensor, make(torch.zeros((), dtype=tensor.dtype).expand(tensor.shape)))
        return memo[id(tensor)][1]

    for name, param in list(module.named_parameters(recurse=False)):
        setattr(module, name, stripped(param, lambda t: nn.Parameter(t, requires_grad=False)))
    for name, buffer in list(module.named_buffers(recurse=False)):
        setattr(module, name, stripped(buffer, lambda t: t))
    for child in module.children():
        strip_weights(child, memo)


def export(arch: str, out: str, *, weights: str = None, source: str = "auto", seed: int = 0,
           name: str = None, trained_on: str = None, weightless: bool = False, metrics: dict = None) -> dict:
    torch.manual_seed(seed)
    model = models.build(arch)
    if weights:
        checkpoint = torch.load(weights, map_location="cpu")
        checkpoints.load_into(model, checkpoints.state_from(checkpoint, source=source, small=models.is_small(arch)))
        scale = checkpoints.flow_scale(checkpoint)
        if scale is not None and hasattr(model, "div_flow"):
            model.div_flow = scale
    model.eval()
    if weightless and weights:
        raise checkpoints.CheckpointError("--weightless writes no weights: leave out --weights")
    default_trained_on = "none (weights are given at load)" if weightless else (
        "see weights file" if weights else f"random (seed {seed})")
    info = models.metadata(arch, name=name or os.path.splitext(os.path.basename(out))[0],
                           trained_on=trained_on or default_trained_on,
                           weights_source=os.path.basename(weights) if weights else (
                               "none" if weightless else "random"))
    info["weightless"] = weightless
    if metrics:
        info["metrics"] = metrics
    if hasattr(model, "div_flow"):
        info["div_flow"] = model.div_flow
    models.attach_metadata(model, info)
    scripted = torch.jit.script(model)
    if weightless:
        strip_weights(scripted)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp"
    scripted.save(tmp)
    os.replace(tmp, out)
    return info


# Debian's Python and its torch 1.13, the oldest LibTorch the addon builds against. A file it writes loads in every
# later version; one written by 2.x may not load in 1.13 (unknown ops such as `_upsample_lanczos2d_aa`).
SHIPPING_PYTHON = "/usr/bin/python3"


def export_shipped(arch: str, out: str, **options) -> dict:
    """export(), written by SHIPPING_PYTHON's torch when this interpreter's is another version, so that the file
    loads in the oldest supported LibTorch (as the bundled model must); the same options and result."""
    found = subprocess.run([SHIPPING_PYTHON, "-c", "import torch; print(torch.__version__)"], capture_output=True,
                           text=True)
    if found.returncode != 0:
        raise RuntimeError(f"{SHIPPING_PYTHON} cannot import torch (setup installs python3-torch): {found.stderr}")
    if found.stdout.strip() == torch.__version__:
        return export(arch, out, **options)
    command = [SHIPPING_PYTHON, "-m", "flowlib.export", "--arch", arch, "--out", out]
    for key, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        command += [flag] if value is True else [flag, json.dumps(value) if key == "metrics" else str(value)]
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": package_parent + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip() or f"status {done.returncode}").splitlines()
        raise RuntimeError(f"export by {SHIPPING_PYTHON} failed: {said[-1]}")
    info = json.loads(done.stdout.strip().splitlines()[-1])
    info.pop("out", None)
    return info


def reexport(source: str, out: str, trained_on: str = None, measure: bool = False) -> dict:
    """Writes an export again with this version's code (new entry points), keeping its weights and metadata (but
    `trained_on`, when given); with `measure`, its metrics are measured anew on the shared validation sets."""
    scripted = torch.jit.load(source, map_location="cpu")
    info = json.loads(scripted.flow_metadata)
    if trained_on:
        info["trained_on"] = trained_on
    model = models.build(info["arch"])
    model.load_state_dict(scripted.state_dict())
    if hasattr(model, "div_flow"):
        model.div_flow = scripted.div_flow
    model.eval()
    if measure:
        from .evaluation import catalogue_metrics, evaluate_full, raft_method, validation_sets
        sets = validation_sets(names=["chairs", "sintel", "kitti2015", "kitti2012"])
        if not sets:
            raise checkpoints.CheckpointError("--measure needs the shared validation data")
        info["metrics"] = catalogue_metrics(evaluate_full(raft_method(model, arch=info["arch"]), sets))
    info.update({key: value for key, value in models.metadata(info["arch"], name=info["name"],
                                                              trained_on=info["trained_on"],
                                                              weights_source=info["weights_source"]).items()
                 if key in ("entry_points", "torch_version")})
    models.attach_metadata(model, info)
    rescripted = torch.jit.script(model)
    tmp = out + ".tmp"
    rescripted.save(tmp)
    os.replace(tmp, out)
    return info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=sorted(models.ARCHITECTURES))
    parser.add_argument("--reexport", metavar="EXPORT",
                        help="write this export again with the current code, keeping its weights and metadata")
    parser.add_argument("--out", required=True)
    parser.add_argument("--weights", help="checkpoint to convert (authors', torchvision or plain state dict)")
    parser.add_argument("--source", default="auto", choices=["auto", "authors", "torchvision"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name")
    parser.add_argument("--trained-on",
                        help="what the weights were trained on (with --reexport: replaces the export's)")
    parser.add_argument("--weightless", action="store_true", help="the architecture alone, without its weights")
    parser.add_argument("--metrics", type=json.loads, metavar="JSON",
                        help="measured accuracy to embed in the metadata (as evaluation.catalogue_metrics gives it)")
    parser.add_argument("--measure", action="store_true",
                        help="with --reexport: measure the export's metrics on the shared validation sets and "
                             "write them into its metadata")
    args = parser.parse_args(argv)
    if args.reexport:
        print(json.dumps({"out": args.out, **reexport(args.reexport, args.out, args.trained_on, args.measure)}))
        return 0
    if not args.arch:
        parser.error("--arch is required (or --reexport)")
    try:
        info = export(args.arch, args.out, weights=args.weights, source=args.source, seed=args.seed,
                      name=args.name, trained_on=args.trained_on, weightless=args.weightless, metrics=args.metrics)
    except checkpoints.CheckpointError as err:
        print(f"export: {args.weights}: {err}", file=sys.stderr)
        return 2
    print(json.dumps({"out": args.out, **info}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
