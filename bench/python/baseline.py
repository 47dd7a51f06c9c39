"""The PyTorch side of the benchmarks (bench/), run with Debian's /usr/bin/python3 where torchvision's RAFT is the
baseline (torch 1.13 + torchvision 0.14), with scripts/python otherwise; PYTHONPATH holds python/.

    baseline.py time --model M.pt --size W H [--iterations N --threads T --repeat R]
        Median seconds per pair of torchvision's RAFT (eager) with the export's weights (this package's eager model
        for FlowNet), and the process's peak resident memory.
    baseline.py pairs --model M.pt --list L.json --out-dir D [--iterations N --threads T]
        torchvision's RAFT on each listed pair of image files (read with OpenCV): flows as raw float32 (H, W, 2)
        files D/<k>.bin, and seconds per pair.
    baseline.py video --model M.pt --video V --out-dir D [--iterations N --threads T]
        The plain loop over a video: frames read with OpenCV, each consecutive pair through torchvision's RAFT.
    baseline.py flops --model M.pt --size W H [--iterations N]
        Floating-point operations of one pair (convolutions and the correlation's products), in GFLOP.
    baseline.py sgemm [--threads T]
        This machine's float32 matrix-product rate (2048 x 2048), GFLOP/s.
"""
import argparse
import json
import resource
import time

import torch

from flowlib import checkpoints, models
from flowlib.padding import crop, pad, padding_for


def torchvision_twin(scripted, arch: str):
    """torchvision's raft_small / raft_large carrying the export's weights (renamed key by key)."""
    from torchvision.models.optical_flow import raft_large, raft_small
    model = (raft_small if models.is_small(arch) else raft_large)()
    names = {name: torch.tensor([float(i)]) for i, name in enumerate(model.state_dict())}
    order = list(names)
    renamed = checkpoints.torchvision_raft_to_authors(names, small=models.is_small(arch))
    ours = scripted.state_dict()
    state = {order[int(index.item())]: ours[name] for name, index in renamed.items()}
    model.load_state_dict(state)
    return model.eval()


def load(path: str):
    scripted = torch.jit.load(path)
    info = json.loads(scripted.flow_metadata)
    if info["family"] == "raft":
        twin = torchvision_twin(scripted, info["arch"])

        def run(image1, image2, iterations):
            return twin(2 * image1 / 255 - 1, 2 * image2 / 255 - 1, iterations)[-1]
    else:
        twin = models.build(info["arch"]).eval()
        twin.load_state_dict(scripted.state_dict())
        if hasattr(twin, "div_flow"):
            twin.div_flow = scripted.div_flow

        def run(image1, image2, iterations):
            return twin(image1, image2, iterations)
    return info, run


def to_tensor(bgr) -> torch.Tensor:
    return torch.from_numpy(bgr[:, :, ::-1].copy()).permute(2, 0, 1).unsqueeze(0).float()


def estimate(run, info, image1, image2, iterations):
    _, _, height, width = image1.shape
    padding = padding_for(height, width, stride=info["stride"], min_size=info["min_size"])
    flow = run(pad(image1, padding), pad(image2, padding), iterations)
    return crop(flow, padding, height, width)[0].permute(1, 2, 0).contiguous()


def command_time(args) -> None:
    torch.set_num_threads(args.threads)
    info, run = load(args.model)
    width, height = args.size
    g = torch.Generator().manual_seed(0)
    image1 = torch.rand(1, 3, height, width, generator=g) * 255
    image2 = torch.roll(image1, shifts=(2, 3), dims=(2, 3))
    times = []
    with torch.inference_mode():
        for i in range(args.repeat + 1):
            start = time.perf_counter()
            estimate(run, info, image1, image2, args.iterations)
            if i > 0:
                times.append(time.perf_counter() - start)
    print(json.dumps({"seconds": sorted(times)[len(times) // 2],
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def command_pairs(args) -> None:
    import cv2
    torch.set_num_threads(args.threads)
    info, run = load(args.model)
    pairs = json.load(open(args.list))
    seconds = []
    with torch.inference_mode():
        for k, (first, second) in enumerate(pairs):
            image1, image2 = to_tensor(cv2.imread(first)), to_tensor(cv2.imread(second))
            if k == 0:
                estimate(run, info, image1, image2, args.iterations)  # warm-up
            start = time.perf_counter()
            flow = estimate(run, info, image1, image2, args.iterations)
            seconds.append(time.perf_counter() - start)
            with open(f"{args.out_dir}/{k}.bin", "wb") as f:
                f.write(flow.numpy().astype("<f4").tobytes())
    print(json.dumps({"seconds": seconds}))


def command_video(args) -> None:
    import cv2
    torch.set_num_threads(args.threads)
    info, run = load(args.model)
    capture = cv2.VideoCapture(args.video)
    ok, frame = capture.read()
    previous = to_tensor(frame)
    with torch.inference_mode():
        estimate(run, info, previous, previous, 1)  # warm-up, outside the timed loop
    pairs = 0
    start = time.perf_counter()
    with torch.inference_mode():
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            current = to_tensor(frame)
            flow = estimate(run, info, previous, current, args.iterations)
            with open(f"{args.out_dir}/{pairs}.bin", "wb") as f:
                f.write(flow.numpy().astype("<f4").tobytes())
            previous = current
            pairs += 1
    print(json.dumps({"seconds": time.perf_counter() - start, "pairs": pairs}))


def command_flops(args) -> None:
    """Convolutions by their output size; RAFT's all-pairs product and FlowNetC's correlation by their shapes."""
    scripted = torch.jit.load(args.model)
    info = json.loads(scripted.flow_metadata)
    model = models.build(info["arch"]).eval()
    total = [0]

    def count(module, inputs, output):
        kh, kw = module.kernel_size
        total[0] += 2 * output.numel() * (module.in_channels // module.groups) * kh * kw

    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_hook(count)
    width, height = args.size
    padding = padding_for(height, width, stride=info["stride"], min_size=info["min_size"])
    image = pad(torch.rand(1, 3, height, width) * 255, padding)
    with torch.inference_mode():
        model(image, image, args.iterations)
    if info["family"] == "raft":
        positions = (padding.padded_height // 8) * (padding.padded_width // 8)
        channels = 128 if models.is_small(info["arch"]) else 256
        total[0] += 2 * positions * positions * channels
    print(json.dumps({"gflop": total[0] / 1e9}))


def command_sgemm(args) -> None:
    torch.set_num_threads(args.threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    print(json.dumps({"gflops": 2 * 2048 ** 3 / best / 1e9}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("time", "pairs", "video", "flops", "sgemm"):
        p = sub.add_parser(name)
        p.add_argument("--threads", type=int, default=2)
        if name == "sgemm":
            continue
        p.add_argument("--model", required=True)
        p.add_argument("--iterations", type=int, default=12)
        if name in ("time", "flops"):
            p.add_argument("--size", nargs=2, type=int, required=True, metavar=("W", "H"))
        if name == "time":
            p.add_argument("--repeat", type=int, default=3)
        if name in ("pairs", "video"):
            p.add_argument("--out-dir", required=True)
        if name == "pairs":
            p.add_argument("--list", required=True)
        if name == "video":
            p.add_argument("--video", required=True)
    args = parser.parse_args()
    {"time": command_time, "pairs": command_pairs, "video": command_video, "flops": command_flops,
     "sgemm": command_sgemm}[args.command](args)


if __name__ == "__main__":
    main()
