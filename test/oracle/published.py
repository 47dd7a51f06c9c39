"""Look-alikes of the published weight files, and PyTorch's flow from them, for the weights registry tests.

    published.py make --out DIR
        Random (seeded) weights written in each published container and naming: the RAFT authors' DataParallel
        dicts and their models.zip, torchvision's raft_large / raft_small state dicts, FlowNetPytorch's
        {arch, state_dict, div_flow}, ptlflow's Lightning checkpoints (RAFT, FlowNet2-S, FlowNet2-C names).
        Prints {look-alike: file} as JSON.
    published.py flow --arch A --weights F --source authors|torchvision|flownetpytorch|ptlflow --frames a b
                      --size W H [--iterations N] [--bgr] --out OUT
        The flow of those weights in PyTorch eager: torchvision's own raft_large / raft_small for its files, this
        project's eager model (loaded by Python's own reading of the file) for the others.
    published.py doubled [--alias] --from F --out OUT
        A torchvision file with one tensor also under the authors' name, holding other values; or an authors' file
        whose two names of one norm layer disagree.
    published.py mapping --arch A --weights F --key-format K
        Python's view of the key mapping (the rules of models/weights.json applied with `re`): how many of the
        file's keys land on the model's tensors, and any left over, missing or landing twice.
"""
import argparse
import io
import json
import os
import re
import zipfile
from argparse import Namespace
from collections import OrderedDict

import torch

from flowlib import checkpoints, models
from flowlib.padding import crop, pad, padding_for
from reference import randomize_batch_norm, read_frame, torchvision_model

AUTHORS_MEMBERS = ["raft-chairs", "raft-things", "raft-sintel", "raft-kitti"]


def random_state(arch: str, seed: int) -> "OrderedDict[str, torch.Tensor]":
    torch.manual_seed(seed)
    model = models.build(arch)
    with torch.no_grad():
        randomize_batch_norm(model, seed)
    return model.state_dict()


def lightning(state, hyper) -> dict:
    """A PyTorch Lightning checkpoint as ptlflow publishes them: the weights beside training state."""
    return {"epoch": 9, "global_step": 100000, "pytorch-lightning_version": "1.3.8", "state_dict": state,
            "hyper_parameters": {"args": Namespace(**hyper)}, "callbacks": {},
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]}],
            "lr_schedulers": [{"last_epoch": 9, "_step_count": 10}]}


def command_make(args) -> None:
    os.makedirs(args.out, exist_ok=True)
    made = {}

    def save(name, obj):
        path = os.path.join(args.out, name)
        torch.save(obj, path)
        made[name] = path

    def data_parallel(state):
        return OrderedDict(("module." + k, v) for k, v in state.items())

    save("authors-raft.pth", data_parallel(random_state("raft", 11)))
    save("authors-raft-small.pth", data_parallel(random_state("raft-small", 12)))
    # The authors' zip: five DataParallel dicts under models/, deflated.
    zip_path = os.path.join(args.out, "models.zip")
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for seed, member in enumerate(AUTHORS_MEMBERS):
            buffer = io.BytesIO()
            torch.save(data_parallel(random_state("raft", 20 + seed)), buffer)
            z.writestr(f"models/{member}.pth", buffer.getvalue())
        buffer = io.BytesIO()
        torch.save(data_parallel(random_state("raft-small", 30)), buffer)
        z.writestr("models/raft-small.pth", buffer.getvalue())
    made["models.zip"] = zip_path
    save("torchvision-raft.pth", torchvision_model("raft", 13).state_dict())
    save("torchvision-raft-small.pth", torchvision_model("raft-small", 14).state_dict())
    for seed, arch in enumerate(["flownets", "flownetc", "flownets-bn"]):
        obj = {"epoch": 300, "arch": arch.replace("-", "_"), "best_EPE": 1.9,
               "state_dict": random_state(arch, 40 + seed), "div_flow": 20}
        save(f"flownetpytorch-{arch}.pth", obj)
    for seed, arch in enumerate(["raft", "raft-small", "flownet2-s", "flownet2-c"]):
        hyper = {"div_flow": 20.0} if arch.startswith("flownet") else {"iters": 32, "corr_radius": 4}
        save(f"ptlflow-{arch}.ckpt", lightning(random_state(arch, 50 + seed), hyper))
    print(json.dumps(made))


def command_flow(args) -> None:
    torch.set_num_threads(args.threads)
    width, height = args.size
    image1 = read_frame(args.frames[0], width, height)
    image2 = read_frame(args.frames[1], width, height)
    if args.bgr:
        image1, image2 = image1.flip(1), image2.flip(1)
    properties = models.ARCHITECTURES[args.arch]
    iterations = args.iterations or properties["default_iterations"]
    padding = padding_for(height, width, stride=properties["stride"], min_size=properties["min_size"])
    image1, image2 = pad(image1, padding), pad(image2, padding)
    obj = torch.load(args.weights, map_location="cpu")
    with torch.inference_mode():
        if args.source == "torchvision":
            from torchvision.models.optical_flow import raft_large, raft_small
            model = (raft_small if models.is_small(args.arch) else raft_large)().eval()
            model.load_state_dict(obj)
            flow = model(2 * image1 / 255 - 1, 2 * image2 / 255 - 1, iterations)[-1]
        else:
            model = models.build(args.arch).eval()
            checkpoints.load_into(model, checkpoints.state_from(obj, source="authors"))
            scale = checkpoints.flow_scale(obj)
            if scale is not None:
                model.div_flow = scale
            flow = model(image1, image2, iterations)
    flow = crop(flow, padding, height, width)[0].permute(1, 2, 0).contiguous()
    with open(args.out, "wb") as f:
        f.write(flow.numpy().astype("<f4").tobytes())
    if args.key_format:
        # The mapping too, in the same process: PyTorch is imported once per case.
        command_mapping(args)


def command_mapping(args) -> None:
    state = checkpoints.unwrap(torch.load(args.weights, map_location="cpu"))
    renamed = {}
    collisions = []
    for key in state:
        name = key
        for pattern, replacement in checkpoints.key_rules(args.key_format):
            name = re.sub(pattern, replacement, name)
        if name in renamed:
            collisions.append([renamed[name], key])
        renamed[name] = key
    model = models.build(args.arch)
    expected = model.state_dict(keep_vars=True)
    # A tensor the model registers under two names needs only one of them.
    by_tensor = {}
    for name, tensor in expected.items():
        by_tensor.setdefault(id(tensor), []).append(name)
    covered = [names for names in by_tensor.values() if any(n in renamed for n in names)]
    missing = [names[0] for names in by_tensor.values()
               if not any(n in renamed for n in names) and not names[0].endswith("num_batches_tracked")]
    unexpected = [renamed[n] for n in renamed if n not in expected]
    print(json.dumps({"fileKeys": len(state), "modelTensors": len(by_tensor), "covered": len(covered),
                      "missing": missing, "unexpected": unexpected, "collisions": collisions}))


def command_doubled(args) -> None:
    """A torchvision file that also names its first convolution the authors' way, with other values; or (--alias)
    an authors' file whose two names of one norm layer (norm3 and downsample.1) hold different values."""
    state = torch.load(args.source, map_location="cpu")
    if args.alias:
        state["module.cnet.layer2.0.norm3.weight"] = state["module.cnet.layer2.0.downsample.1.weight"] + 1
    else:
        state["fnet.conv1.weight"] = state["feature_encoder.convnormrelu.0.weight"] + 1
    torch.save(state, args.out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make")
    make.add_argument("--out", required=True)
    flow = sub.add_parser("flow")
    flow.add_argument("--arch", required=True, choices=sorted(models.ARCHITECTURES))
    flow.add_argument("--weights", required=True)
    flow.add_argument("--source", required=True, choices=["authors", "torchvision", "flownetpytorch", "ptlflow"])
    flow.add_argument("--frames", nargs=2, required=True)
    flow.add_argument("--size", nargs=2, type=int, required=True, metavar=("W", "H"))
    flow.add_argument("--iterations", type=int, default=0)
    flow.add_argument("--threads", type=int, default=2)
    flow.add_argument("--bgr", action="store_true", help="the weights take BGR: swap the frames' channels")
    flow.add_argument("--out", required=True)
    flow.add_argument("--key-format", help="also print the key mapping (as `mapping` does) for this key format")
    mapping = sub.add_parser("mapping")
    mapping.add_argument("--arch", required=True, choices=sorted(models.ARCHITECTURES))
    mapping.add_argument("--weights", required=True)
    mapping.add_argument("--key-format", required=True)
    doubled = sub.add_parser("doubled")
    doubled.add_argument("--from", dest="source", required=True)
    doubled.add_argument("--alias", action="store_true")
    doubled.add_argument("--out", required=True)
    args = parser.parse_args()
    commands = {"make": command_make, "flow": command_flow, "mapping": command_mapping, "doubled": command_doubled}
    commands[args.command](args)


if __name__ == "__main__":
    main()
