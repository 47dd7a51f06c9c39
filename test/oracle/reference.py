"""PyTorch-side references for the parity tests (run with scripts/python; what needs torchvision, with Debian's
/usr/bin/python3, torch 1.13 and torchvision 0.14).

    reference.py flow --model M.pt --frames a.bin b.bin --size W H [--impl export|eager|torchvision] ...
        Flow between two RGB uint8 frames (raw W*H*3 bytes), padded and cropped exactly as the addon does,
        written as raw float32 (H, W, 2).
    reference.py checkpoint --arch A --seed N --layout authors|torchvision|plain --out F [--legacy]
        A checkpoint with random weights in the exact key layout of the named source.
    reference.py time --model M.pt --size W H [--iterations N --threads T --repeat R]
        Median seconds per pair of PyTorch eager and of the export run from Python.
    reference.py correlation [--size W H]
        Time and peak memory of FlowNetC's correlation layer at that frame size.
    reference.py colors --flow F --size W H --out OUT
        torchvision's flow_to_image of a raw float32 flow, as raw RGB bytes.
    reference.py keys --file F
        The container type and key names of a checkpoint, as JSON.
"""
import argparse
from collections import OrderedDict

import torch

from flowlib import checkpoints, models
from flowlib.padding import crop, pad, padding_for


def read_frame(path: str, width: int, height: int) -> torch.Tensor:
    data = open(path, "rb").read()
    if len(data) != width * height * 3:
        raise SystemExit(f"{path}: expected {width * height * 3} bytes of RGB, got {len(data)}")
    pixels = torch.frombuffer(bytearray(data), dtype=torch.uint8).view(height, width, 3)
    return pixels.permute(2, 0, 1).unsqueeze(0).float()


def randomize_batch_norm(model: torch.nn.Module, seed: int) -> None:
    """Fresh BatchNorm layers are the identity; random statistics make the comparison meaningful."""
    g = torch.Generator().manual_seed(seed + 1000)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.bias.shape, generator=g) * 0.2 - 0.1)


def torchvision_model(arch: str, seed: int):
    from torchvision.models.optical_flow import raft_large, raft_small
    torch.manual_seed(seed)
    model = (raft_small if models.is_small(arch) else raft_large)()
    with torch.no_grad():
        randomize_batch_norm(model, seed)
    return model.eval()


def eager_twin(scripted, info):
    """The eager model with the export's weights and settings."""
    model = models.build(info["arch"]).eval()
    model.load_state_dict(scripted.state_dict())
    if hasattr(model, "div_flow"):
        model.div_flow = scripted.div_flow
    return model


def command_flow(args) -> None:
    torch.set_num_threads(args.threads)
    width, height = args.size
    image1 = read_frame(args.frames[0], width, height)
    image2 = read_frame(args.frames[1], width, height)
    scripted = torch.jit.load(args.model)
    import json
    info = json.loads(scripted.flow_metadata)
    iterations = args.iterations or info["default_iterations"]
    padding = padding_for(height, width, stride=info["stride"], min_size=info["min_size"])
    image1, image2 = pad(image1, padding), pad(image2, padding)
    with torch.inference_mode():
        if args.impl == "export":
            flow = scripted(image1, image2, iterations, None)
        elif args.impl == "eager":
            model = eager_twin(scripted, info)
            flow = model(image1, image2, iterations)
        else:
            model = torchvision_model(info["arch"], args.seed)
            flow = model(2 * image1 / 255 - 1, 2 * image2 / 255 - 1, iterations)[-1]
    flow = crop(flow, padding, height, width)[0].permute(1, 2, 0).contiguous()
    with open(args.out, "wb") as f:
        f.write(flow.numpy().astype("<f4").tobytes())


def command_checkpoint(args) -> None:
    torch.manual_seed(args.seed)
    if args.layout == "torchvision":
        state = torchvision_model(args.arch, args.seed).state_dict()
    else:
        model = models.build(args.arch)
        with torch.no_grad():
            randomize_batch_norm(model, args.seed)
        state = model.state_dict()
        if args.layout == "authors" and models.ARCHITECTURES[args.arch]["family"] == "flownet":
            # As FlowNetPytorch saves it: a dict with the architecture's name and div_flow beside the weights.
            obj = {"epoch": 1, "arch": args.arch.replace("-", "_"), "state_dict": state, "best_EPE": 2.0,
                   "div_flow": args.div_flow}
            torch.save(obj, args.out, _use_new_zipfile_serialization=not args.legacy)
            return
        if args.layout == "authors":
            # As the authors saved it: torch.nn.DataParallel(model).state_dict(), an OrderedDict.
            state = OrderedDict(("module." + k, v) for k, v in state.items())
    if args.drop_key:
        state.pop(args.drop_key)
    if args.extra_key:
        state[args.extra_key] = torch.zeros(3)
    if args.reshape_key:
        state[args.reshape_key] = torch.zeros(7, 7)
    obj = {"arch": args.arch, "state_dict": state, "epoch": 1} if args.wrap else state
    torch.save(obj, args.out, _use_new_zipfile_serialization=not args.legacy)


def command_time(args) -> None:
    """Median seconds per pair for PyTorch eager (and the TorchScript export from Python), same padding."""
    import json
    import time
    torch.set_num_threads(args.threads)
    scripted = torch.jit.load(args.model)
    info = json.loads(scripted.flow_metadata)
    model = eager_twin(scripted, info)
    width, height = args.size
    g = torch.Generator().manual_seed(0)
    image1 = torch.rand(1, 3, height, width, generator=g) * 255
    image2 = torch.roll(image1, shifts=(2, 3), dims=(2, 3))
    padding = padding_for(height, width, stride=info["stride"], min_size=info["min_size"])
    image1, image2 = pad(image1, padding), pad(image2, padding)
    out = {}
    for name, fn in (("eager", model), ("torchscript", scripted)):
        times = []
        with torch.inference_mode():
            for i in range(args.repeat + 1):
                start = time.perf_counter()
                fn(image1, image2, args.iterations, None)
                if i > 0:  # the first run warms up
                    times.append(time.perf_counter() - start)
        out[name] = sorted(times)[len(times) // 2]
    print(json.dumps(out))


def command_correlation(args) -> None:
    """Seconds and peak extra memory of FlowNetC's correlation on conv3 features of a W x H frame."""
    import json
    import resource
    import time
    from flowlib.flownet import Correlation
    torch.set_num_threads(args.threads)
    width, height = args.size
    h, w = -(-height // 64) * 8, -(-width // 64) * 8  # conv3 is 1/8 of the padded frame
    f1, f2 = torch.randn(1, 256, h, w), torch.randn(1, 256, h, w)
    layer = torch.jit.script(Correlation())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    with torch.inference_mode():
        for _ in range(args.repeat):
            start = time.perf_counter()
            out = layer(f1, f2)
            times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(json.dumps({"features": [256, h, w], "output": list(out.shape), "seconds": sorted(times)[len(times) // 2],
                      "peak_extra_mb": peak / 1024, "output_mb": out.numel() * 4 / 2 ** 20}))


def command_colors(args) -> None:
    """torchvision's flow_to_image of a raw float32 (H, W, 2) flow, written as raw RGB bytes."""
    from torchvision.utils import flow_to_image
    width, height = args.size
    data = open(args.flow, "rb").read()
    flow = torch.frombuffer(bytearray(data), dtype=torch.float32).view(height, width, 2).permute(2, 0, 1)
    image = flow_to_image(flow)
    with open(args.out, "wb") as f:
        f.write(image.permute(1, 2, 0).contiguous().numpy().tobytes())


def command_keys(args) -> None:
    import json
    obj = torch.load(args.file, map_location="cpu")
    state = checkpoints.unwrap(obj)
    print(json.dumps({"container": type(obj).__name__, "state_dict": type(state).__name__, "keys": list(state)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    flow = sub.add_parser("flow")
    flow.add_argument("--model", required=True)
    flow.add_argument("--frames", nargs=2, required=True)
    flow.add_argument("--size", nargs=2, type=int, required=True, metavar=("W", "H"))
    flow.add_argument("--iterations", type=int, default=0)
    flow.add_argument("--threads", type=int, default=2)
    flow.add_argument("--impl", choices=["export", "eager", "torchvision"], default="eager")
    flow.add_argument("--seed", type=int, default=0, help="torchvision weights seed (as for `checkpoint`)")
    flow.add_argument("--out", required=True)
    ckpt = sub.add_parser("checkpoint")
    ckpt.add_argument("--arch", required=True, choices=sorted(models.ARCHITECTURES))
    ckpt.add_argument("--seed", type=int, default=0)
    ckpt.add_argument("--layout", choices=["authors", "torchvision", "plain"], default="authors")
    ckpt.add_argument("--legacy", action="store_true", help="the pre-1.6 (non-zip) serialization")
    ckpt.add_argument("--wrap", action="store_true", help="wrap as {'arch', 'state_dict', 'epoch'}")
    ckpt.add_argument("--div-flow", type=float, default=20.0, help="FlowNet checkpoints: the stored div_flow")
    ckpt.add_argument("--drop-key")
    ckpt.add_argument("--extra-key")
    ckpt.add_argument("--reshape-key")
    ckpt.add_argument("--out", required=True)
    timing = sub.add_parser("time")
    timing.add_argument("--model", required=True)
    timing.add_argument("--size", nargs=2, type=int, required=True, metavar=("W", "H"))
    timing.add_argument("--iterations", type=int, default=12)
    timing.add_argument("--threads", type=int, default=2)
    timing.add_argument("--repeat", type=int, default=3)
    corr = sub.add_parser("correlation")
    corr.add_argument("--size", nargs=2, type=int, default=[1024, 436], metavar=("W", "H"))
    corr.add_argument("--threads", type=int, default=2)
    corr.add_argument("--repeat", type=int, default=5)
    colors = sub.add_parser("colors")
    colors.add_argument("--flow", required=True)
    colors.add_argument("--size", nargs=2, type=int, required=True, metavar=("W", "H"))
    colors.add_argument("--out", required=True)
    keys = sub.add_parser("keys")
    keys.add_argument("--file", required=True)
    args = parser.parse_args()
    {"flow": command_flow, "checkpoint": command_checkpoint, "keys": command_keys, "time": command_time,
     "correlation": command_correlation, "colors": command_colors}[args.command](args)


if __name__ == "__main__":
    main()
