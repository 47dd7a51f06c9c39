"""Trains RAFT-S on the synthetic generator, on the CPU, resumably.

    nice -n 19 scripts/train                  # starts, or resumes training/state.pt
    nice -n 19 scripts/train --hours 2        # stops after 2 more hours of wall time

As in the RAFT paper (Section 4): AdamW, a one-cycle learning-rate schedule with linear annealing, gradient
clipping at 1, and the sequence loss with gamma 0.8. Crop size, batch and iteration count are chosen for CPU
throughput (see models/README.md). Validation EPE on the shared samples is logged to training/log.csv and the
best weights are kept in training/best.pt; `--export` writes the best as models/raft-small.pt. "Best" is the lowest
selection score (evaluation.selection_score, fixed in advance): the geometric mean of the model's EPE on the
FlyingChairs samples, the Sintel training pairs and KITTI 2015, and of its KITTI 2015 Fl-all, each divided by
OpenCV DIS medium's on the same pairs. A stage that starts from the bundled weights also guards the still sky of
the shared dashcam clip (evaluation.sky_drift): a checkpoint whose sky drifts more than the bundle's is not kept,
whatever its score.
"""
import argparse
import csv
import itertools
import json
import os
import random
import resource
import signal
import sys
import time
import warnings
from typing import Sequence

import torch

from .baselines import methods as baseline_methods
from .checkpoints import load_weights
from .evaluation import SET_NAMES, SKY_CLIP, catalogue_metrics, evaluate_full, raft_method, selection_score, \
    sky_drift, sky_pairs, validation_sets
from .losses import end_point_error, photometric_sequence_loss, sequence_loss
from .raft import RAFT
from .runs import MIX, log_run, plan_at, read_plan
from .paths import MODELS_DIR, SHARED_DATA, TRAINING_DIR
from .pseudolabels import TEACHERS, PseudoLabelledPairs, build as build_pseudo_labels
from .rigid import RigidSceneGenerator
from .synthetic import SyntheticFlowGenerator, magnify, warm_start
from .textures import PHOTOGRAPH_PACKAGES, load_photographs, photograph_files
from .videopairs import video_files, VideoPairs

OUT = TRAINING_DIR
DEFAULT_STEPS = 18000
# Validation columns: EPE per set ('sintel_demo' is the single mmflow pair, 'sintel' the five training pairs),
# KITTI 2015's Fl-all, the selection score (evaluation.selection_score) and the length of the dashcam sky's median
# flow vector (evaluation.sky_drift; logs older than that column have it empty).
LOG_FIELDS = ["step", "samples", "wall_hours", "cpu_hours", "lr", "train_loss", "train_epe", "chairs_epe",
              "sintel_demo_epe", "sintel_epe", "kitti2015_epe", "kitti2015_fl_all", "kitti2012_epe", "score",
              "sky_median_px"]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime


class Batches(torch.utils.data.IterableDataset):
    """Endless training batches, made in a worker process so generation overlaps training. The batch of step k
    depends only on the seed, k and the data mix, so a run that stops and resumes sees the same data as one that
    does not. Each batch comes from one source: real video with classical targets (pseudo_share of the batches),
    rigid 3-D scenes (rigid_share), and otherwise self-supervised real video (video_share of the rest) or layered
    scenes; long_share of the batches ask for `long_iterations` refinement iterations instead of the usual count."""

    def __init__(self, *, height: int, width: int, batch: int, seed: int, first_step: int, textures,
                 videos: Sequence[str] = (), pseudo: str = "", long_iterations: int = 0, **mix: float):
        self.height, self.width, self.batch, self.seed, self.textures = height, width, batch, seed, textures
        self.first_step, self.videos = first_step, list(videos)
        self.pseudo, self.long_iterations = pseudo, long_iterations
        self.mix = {key: mix.get(key, 0.0) for key, _ in MIX}
        if self.mix["video_share"] and not self.videos:
            raise ValueError("a video share needs videos")
        if self.mix["pseudo_share"] and not pseudo:
            raise ValueError("a pseudo-labelled share needs a cache of pseudo-labelled pairs")
        if self.mix["long_share"] and long_iterations < 1:
            raise ValueError("a long share needs long_iterations")

    @staticmethod
    def init_worker(_worker: int) -> None:
        # Ctrl-C or a kill of the whole group stops the trainer, which then ends this worker (it also exits with
        # its parent).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        torch.set_num_threads(1)

    def __iter__(self):
        scene_keys = ("slow_share", "blur_share", "fast_share", "zoom_share")
        generator = SyntheticFlowGenerator(height=self.height, width=self.width, seed=self.seed,
                                           textures=self.textures, **{key: self.mix[key] for key in scene_keys})
        pairs = VideoPairs(self.videos, height=self.height, width=self.width) if self.mix["video_share"] else None
        rigid = (RigidSceneGenerator(height=self.height, width=self.width, seed=self.seed, textures=self.textures)
                 if self.mix["rigid_share"] else None)
        pseudo = (PseudoLabelledPairs(self.pseudo, height=self.height, width=self.width, seed=self.seed)
                  if self.mix["pseudo_share"] else None)
        for step in itertools.count(self.first_step + 1):
            batch = self._batch(step, generator, pairs, rigid, pseudo)
            if self.mix["long_share"] and random.Random(f"{self.seed}/{step}/long").random() < self.mix["long_share"]:
                batch["iterations"] = self.long_iterations
            yield batch

    def _batch(self, step: int, generator, pairs, rigid, pseudo):
        # Separate random streams per decision, so that adding a source leaves the others' batches as they were.
        source = random.Random(f"{self.seed}/{step}/source").random()
        if pseudo is not None and source < self.mix["pseudo_share"]:
            pseudo.reseed(f"{self.seed}/{step}")
            return self._magnified(step, pseudo.batch(self.batch))
        if rigid is not None and source < self.mix["pseudo_share"] + self.mix["rigid_share"]:
            rigid.reseed(f"{self.seed}/{step}")
            return self._magnified(step, rigid.batch(self.batch))
        if pairs is not None and random.Random(f"{self.seed}/{step}/video").random() < self.mix["video_share"]:
            # Unlabelled: half as many pairs, each trained in both directions, so the step costs the same.
            pairs.reseed(f"{self.seed}/{step}")
            return pairs.batch(max(1, self.batch // 2))
        generator.reseed(f"{self.seed}/{step}")
        batch = self._magnified(step, generator.batch(self.batch))
        if self.mix["warm_share"]:
            # A separate stream, so that the scenes are those of a run without warm starts.
            rng = random.Random(f"{self.seed}/{step}/warm")
            if rng.random() < self.mix["warm_share"]:
                noise = torch.Generator().manual_seed(rng.randrange(1 << 62))
                batch["flow_init"] = warm_start(batch["flow"], rng, noise)
        return batch

    def _magnified(self, step: int, batch):
        """The labelled batch, or for a magnify_share of the steps the same seen closer (its own random stream,
        so that the other decisions stay as they were)."""
        if not self.mix["magnify_share"]:
            return batch
        rng = random.Random(f"{self.seed}/{step}/magnify")
        return magnify(batch, rng) if rng.random() < self.mix["magnify_share"] else batch


class Float32Correlation(torch.nn.Module):
    """RAFT's correlation block for training under bfloat16 autocast: the all-pairs products and their lookups stay
    in float32, as in the mixed-precision export, while the encoders and the update operator run in bfloat16. It has
    no parameters, so the state dict is unchanged."""

    def __init__(self, block: torch.nn.Module):
        super().__init__()
        self.block = block

    def build_pyramid(self, fmap1, fmap2):
        with torch.autocast("cpu", enabled=False):
            return self.block.build_pyramid(fmap1.float(), fmap2.float())

    def lookup(self, pyramid, coords):
        with torch.autocast("cpu", enabled=False):
            return self.block.lookup(pyramid, coords.float())


def train_step(model: RAFT, optimizer: torch.optim.Optimizer, batch, iterations: int, precision: str = "float32"):
    """One optimisation step on a batch: sequence loss over every iteration (over its valid pixels when the batch
    has a mask; the photometric one, both directions, for an unlabelled batch), clipping at 1, AdamW; returns the
    loss and the last iteration's flow. The batch may ask for its own iteration count. With precision 'bfloat16'
    the forward pass runs under CPU autocast (float32 weights, losses and correlation)."""
    iterations = batch.get("iterations", iterations)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16"):
        if "flow" in batch:
            flows = model.forward_all(batch["image1"], batch["image2"], iterations, batch.get("flow_init"))
        else:
            image1, image2 = batch["image1"], batch["image2"]
            n = image1.shape[0]
            both = model.forward_all(torch.cat([image1, image2]), torch.cat([image2, image1]), iterations)
    if "flow" in batch:
        flows = [flow.float() for flow in flows]
        loss = sequence_loss(flows, batch["flow"], batch.get("valid"), gamma=0.8)
    else:
        both = [flow.float() for flow in both]
        flows = [f[:n] for f in both]
        loss = photometric_sequence_loss(flows, [f[n:] for f in both], image1, image2)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss, flows[-1].detach()


LOG_MEASURES = {"chairs_epe": ("chairs", "epe"), "sintel_demo_epe": ("sintel-demo", "epe"),
                "sintel_epe": ("sintel", "epe"), "kitti2015_epe": ("kitti2015", "epe"),
                "kitti2015_fl_all": ("kitti2015", "fl_all"), "kitti2012_epe": ("kitti2012", "epe")}


def check_log(path: str) -> None:
    """Refuses a log of other columns than LOG_FIELDS, which appending to would corrupt; a log that lacks only
    columns added since is rewritten with them empty."""
    if not os.path.exists(path):
        return
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    if fields == LOG_FIELDS:
        return
    if not fields or fields != LOG_FIELDS[:len(fields)]:
        raise SystemExit(f"{path}: unknown columns {fields}; move it away to start a new log")
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=LOG_FIELDS, restval="")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def kept_as_best(score: float, best: float, drift, sky_limit: float):
    """The selection rule and its sky guard: (whether a checkpoint of this score and sky drift, None when not
    measured, replaces the best, and why not when only the guard refuses it)."""
    if score >= best:
        return False, ""
    if drift is not None and drift > sky_limit:
        return False, f"not kept as best: its sky drifts {drift:.2f} px, over the bundle's {sky_limit:.2f}"
    return True, ""


def save_atomic(obj, path: str) -> None:
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


CARRIED_OVER = {"steps": DEFAULT_STEPS, **{key: 0.0 for key, _ in MIX}}
# Git keeps the bundled export, not the optimizer state: a run without state.pt starts from the bundled weights,
# at a lower rate, after a short warm-up, unless --init scratch asks for random weights.
BUNDLED_EXPORT = os.path.join(MODELS_DIR, "raft-small.pt")
SCRATCH_LR, BUNDLED_LR = 4e-4, 1e-4
BUNDLED_WARMUP_STEPS = 200


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=None,
                        help=f"length of the one-cycle schedule (default: the resumed run's, else {DEFAULT_STEPS}); "
                             "may change between runs, the rate then follows the new one")
    parser.add_argument("--hours", type=float, default=1e9, help="stop after this much wall time in this run")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--crop", type=int, nargs=2, default=[192, 256], metavar=("H", "W"))
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--init", choices=("bundled", "scratch"), default="bundled",
                        help="weights of a run without a state.pt: the bundled models/raft-small.pt, with a short "
                             f"warm-up ({BUNDLED_WARMUP_STEPS} steps) at a rate of {BUNDLED_LR:g} unless --lr is given "
                             "(default), or random weights, as the bundled model started")
    parser.add_argument("--lr", type=float, default=None,
                        help=f"peak learning rate (default {SCRATCH_LR:g} from scratch, {BUNDLED_LR:g} from the "
                             "bundled weights)")
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--validate-every", type=int, default=500)
    parser.add_argument("--validate-on", default=",".join(SET_NAMES), metavar="SET[,SET...]",
                        help=f"validation sets (default all: {','.join(SET_NAMES)}); the selection score uses those "
                             "of its measures that are among them")
    parser.add_argument("--sky-clip", default=SKY_CLIP, metavar="VIDEO",
                        help="footage under a still sky whose drift (evaluation.sky_drift) is logged at every "
                             "validation and, in a stage from the bundle, may not exceed the bundle's (default the "
                             "shared dashcam clip; '' turns the measure and the guard off)")
    parser.add_argument("--note", default="", metavar="TEXT",
                        help="what this run changes that its options do not say (a new generator, another teacher), "
                             "recorded in runs.csv and shown on the curve")
    parser.add_argument("--save-minutes", type=float, default=10)
    parser.add_argument("--seed", type=int, default=1234)
    shares = {"slow_share": "synthetic scenes with all motions scaled down 2-50x",
              "blur_share": "synthetic scenes rendered with motion blur",
              "fast_share": "synthetic scenes with translations scaled up 2-4x (large displacements)",
              "zoom_share": "synthetic scenes (of those neither slow nor fast) that expand or contract from a "
                            "focus, as driving footage does",
              "warm_share": "batches trained from a warm start (flow_init: the truth at 1/8, degraded as a video's "
                            "previous pair gives it)",
              "video_share": "self-supervised batches of unlabelled pairs from the --videos (photometric census "
                             "loss over visible pixels, edge-aware smoothness)",
              "rigid_share": "batches of rigid 3-D scenes (flowlib/rigid.py: streets and rooms of textured planes, "
                             "boxes and billboards, a moving camera and moving objects)",
              "pseudo_share": "batches of real video with classical flow (--pseudo-teacher) as the target where "
                              "forward and backward agree (--pseudo)",
              "long_share": "steps run with --long-iterations refinement iterations instead of --iterations, so "
                            "that the updates learn to settle",
              "magnify_share": "labelled batches seen closer (synthetic.magnify: a window 1/1.15-1/2 of the crop "
                               "enlarged to it, the flow scaled with it)"}
    for key, what in shares.items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=float, default=None,
                            help=f"share of {what} (default: the resumed run's, else 0); kept in the state so later "
                                 "resumes continue with it")
    parser.add_argument("--videos", default=os.path.join(SHARED_DATA, "video"), metavar="DIR",
                        help="folder of the real videos of --video-share (default: the shared data's video/)")
    parser.add_argument("--video-exclude", default="sintel_clip.mp4", metavar="NAME[,NAME...]",
                        help="file names in --videos never trained on (default sintel_clip.mp4: footage of the "
                             "Sintel validation scenes' film)")
    parser.add_argument("--pseudo", default=os.path.join(TRAINING_DIR, "pseudo"), metavar="DIR",
                        help="cache of pseudo-labelled pairs for --pseudo-share, made from the --videos (but "
                             "--video-exclude) when absent (default training/pseudo)")
    parser.add_argument("--pseudo-teacher", choices=TEACHERS, default="dis-medium",
                        help="classical method whose flows label the --pseudo cache (default dis-medium); a cache "
                             "made by another is refused")
    parser.add_argument("--long-iterations", type=int, default=20,
                        help="refinement iterations of the --long-share steps (default 20)")
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="bfloat16",
                        help="arithmetic of the forward pass: bfloat16 autocast (default; the weights, losses and "
                             "correlation stay float32) or float32 throughout")
    parser.add_argument("--plan", metavar="RUNS_CSV",
                        help="follow a runs.csv (as training/runs.csv): from each row's step on, that row's schedule "
                             "length and data mix; replays a recorded training from scratch in one run")
    parser.add_argument("--out", default=OUT, help="directory of state.pt, best.pt and log.csv (default training/)")
    parser.add_argument("--export", action="store_true",
                        help="export training/best.pt as models/raft-small.pt and exit")
    parser.add_argument("--measure", action="store_true",
                        help="measure training samples/s over crop sizes and iteration counts, "
                             "write training/throughput.json")
    args = parser.parse_args(argv)
    for name, _ in MIX:
        value = getattr(args, name)
        if value is not None and not 0 <= value <= 1:
            parser.error(f"--{name.replace('_', '-')} must be in [0, 1], got {value}")
    if (args.slow_share or 0) + (args.fast_share or 0) > 1:
        parser.error(f"--slow-share and --fast-share together must be at most 1, got {args.slow_share} + "
                     f"{args.fast_share}")
    for name in ("batch", "iterations", "validate_every", "threads", "long_iterations"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    args.validate_on = args.validate_on.split(",")
    unknown = [name for name in args.validate_on if name not in SET_NAMES]
    if unknown:
        parser.error(f"--validate-on: unknown set {unknown[0]!r}; the sets are {', '.join(SET_NAMES)}")
    if args.sky_clip and args.sky_clip != SKY_CLIP and not os.path.exists(args.sky_clip):
        parser.error(f"--sky-clip: no such video {args.sky_clip!r}")
    if any(side < 64 or side % 8 for side in args.crop):
        parser.error(f"--crop sides must be multiples of 8 and at least 64 (the correlation pyramid's 4 levels), "
                     f"got {args.crop[0]} {args.crop[1]}")
    if args.plan:
        given = [f"--{name.replace('_', '-')}" for name in CARRIED_OVER if getattr(args, name) is not None]
        if given:
            parser.error(f"--plan sets the schedule and data mix; do not give {', '.join(given)} with it")
        try:
            args.plan = read_plan(args.plan)
        except (OSError, ValueError) as error:
            parser.error(f"--plan: {error}")
    return args


def carry_over(args: argparse.Namespace, saved: dict) -> None:
    """Options that shape the run (schedule length, data mix) continue from the saved run's unless given again."""
    for name, default in CARRIED_OVER.items():
        if getattr(args, name) is None:
            setattr(args, name, saved.get(name) or default)


def main() -> int:
    args = parse_args()
    os.makedirs(args.out, exist_ok=True)
    state_path, best_path, log_path = (os.path.join(args.out, n) for n in ("state.pt", "best.pt", "log.csv"))

    if args.export:
        return export_best(best_path)
    if args.measure:
        return measure_throughput(args, os.path.join(args.out, "throughput.json"))

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    deadline = time.time() + args.hours * 3600
    while train(args, deadline, state_path, best_path, log_path):
        pass  # a --plan change is due: continue from the checkpoint with the plan's next options
    return 0


def train(args: argparse.Namespace, deadline: float, state_path: str, best_path: str, log_path: str) -> bool:
    """Trains from the state (or from scratch) until the schedule ends, the deadline, a signal, or the next change
    in --plan; returns True only in the last case."""
    state = torch.load(state_path, map_location="cpu") if os.path.exists(state_path) else None
    phase_end = None
    if args.plan:
        entry, phase_end = plan_at(args.plan, state["step"] if state else 0)
        args.steps = entry["steps"]
        for key, _ in MIX:
            setattr(args, key, entry[key])
    else:
        carry_over(args, state.get("args", {}) if state else {})
    # Checked before any work or record: a video share needs videos.
    videos = video_files(args.videos, args.video_exclude.split(",")) if args.video_share else []
    if args.video_share and not videos:
        raise SystemExit(f"--video-share {args.video_share}: no videos in {args.videos} (besides {args.video_exclude})")
    if args.pseudo_share and not os.path.exists(os.path.join(args.pseudo, "index.json")):
        sources = video_files(args.videos, args.video_exclude.split(","))
        if not sources:
            raise SystemExit(f"--pseudo-share {args.pseudo_share}: no pseudo-labelled pairs in {args.pseudo}, and no "
                             f"videos in {args.videos} (besides {args.video_exclude}) to make them from")
        print(f"making {args.pseudo_teacher} pseudo-labelled pairs in {args.pseudo} from {len(sources)} videos",
              flush=True)
        build_pseudo_labels(sources, args.pseudo, teacher_name=args.pseudo_teacher)
    if args.pseudo_share:
        with open(os.path.join(args.pseudo, "index.json")) as f:
            made_by = json.load(f).get("teacher")
        if made_by != args.pseudo_teacher:
            raise SystemExit(f"--pseudo-teacher {args.pseudo_teacher}: the cache in {args.pseudo} was made by "
                             f"{made_by!r}; give its teacher or another --pseudo folder")
    model = RAFT(small=True)
    from_bundled = state is None and args.init == "bundled"
    if from_bundled:
        model.load_state_dict(load_weights(BUNDLED_EXPORT)["model"])
        print(f"starting from the bundled weights ({BUNDLED_EXPORT})", flush=True)
    if args.lr is None:  # a resumed run keeps its rate; a new one takes the rate of where it starts from
        if state:
            args.lr = state["args"].get("lr") or SCRATCH_LR
        else:
            args.lr = BUNDLED_LR if from_bundled else SCRATCH_LR
    total_steps = args.steps + 100
    warmup = 0.05 if not from_bundled else min(0.05, BUNDLED_WARMUP_STEPS / total_steps)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay, eps=1e-8)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, args.lr, total_steps=total_steps, pct_start=warmup,
                                                   cycle_momentum=False, anneal_strategy="linear")
    step, samples, wall, cpu, best, sky_limit = 0, 0, 0.0, 0.0, float("inf"), float("inf")
    if state:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, samples, wall, cpu, best = state["step"], state["samples"], state["wall"], state["cpu"], state["best"]
        sky_limit = state.get("sky_limit", float("inf"))
        if state["schedule"]["total_steps"] == schedule.total_steps:
            schedule.load_state_dict(state["schedule"])
        else:
            # --steps changed: continue on the new schedule from the same step.
            schedule.last_epoch = step
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # get_lr() outside step() warns; here it is what we want
                rates = schedule.get_lr()
            for group, lr in zip(optimizer.param_groups, rates):
                group["lr"] = lr
            print(f"schedule length changed to {args.steps} steps; "
                  f"learning rate now {optimizer.param_groups[0]['lr']:.3g}", flush=True)
        print(f"resumed at step {step} ({samples} samples, {wall / 3600:.2f} h)", flush=True)
    check_log(log_path)
    if from_bundled and os.path.exists(log_path):
        # A new schedule from the bundled weights continues the log's time and sample counts (its steps restart),
        # so that the curve and the compute spent run on across the stages of training.
        with open(log_path, newline="") as f:
            last = (list(csv.DictReader(f)) or [None])[-1]
        if last:
            samples, wall, cpu = int(last["samples"]), float(last["wall_hours"]) * 3600, float(last["cpu_hours"]) * 3600
            print(f"continuing the log's counts: {samples} samples, {wall / 3600:.2f} h, {cpu / 3600:.2f} CPU-hours",
                  flush=True)
    if step >= args.steps:
        print("the schedule is complete", flush=True)
        return False
    end = min(args.steps, phase_end) if phase_end is not None else args.steps

    sets = validation_sets(names=args.validate_on)
    reference = evaluate_full(baseline_methods()["dis-medium"], sets)
    sky = sky_pairs(args.sky_clip) if sets and args.sky_clip else None

    if from_bundled and sets:
        # The bundle changes only for a checkpoint the rule prefers to the bundled weights themselves, and whose
        # dashcam sky is as still as theirs.
        model.eval()
        best = selection_score(evaluate_full(raft_method(model), sets), reference)
        if sky is not None:
            sky_limit = sky_drift(raft_method(model), sky)["median_vector_px"]
        model.train()
        print(f"the bundled weights score {best:.4f}" + (f", their dashcam sky drifts {sky_limit:.2f} px" if
              sky is not None else "") + "; a checkpoint is kept as best only under that", flush=True)
    mix = {key: getattr(args, key) for key, _ in MIX}
    log_run(os.path.join(args.out, "runs.csv"), step=step, wall_hours=wall / 3600, steps=args.steps,
            lr=optimizer.param_groups[0]["lr"], start="resumed" if state else args.init, note=args.note, **mix)
    new_log = not os.path.exists(log_path)
    log = open(log_path, "a", newline="")
    writer = csv.DictWriter(log, fieldnames=LOG_FIELDS)
    if new_log:
        writer.writeheader()

    textures = load_photographs()
    print(f"textures: {len(textures)} photographs from {len(photograph_files())} files in Debian packages "
          f"({', '.join(PHOTOGRAPH_PACKAGES)}), and procedural patterns; "
          + ", ".join(f"{name}: {mix[key]:.0%}" for key, name in MIX), flush=True)
    if not textures:
        print("warning: no photographs found; training on procedural textures only, unlike the bundled model",
              flush=True)
    if videos:
        print(f"videos (self-supervised): {', '.join(os.path.basename(v) for v in videos)}", flush=True)
    loader = iter(torch.utils.data.DataLoader(
        Batches(height=args.crop[0], width=args.crop[1], batch=args.batch, seed=args.seed, first_step=step,
                textures=textures, videos=videos, pseudo=args.pseudo if args.pseudo_share else "",
                long_iterations=args.long_iterations, **mix),
        batch_size=None, num_workers=1, prefetch_factor=4, persistent_workers=True, worker_init_fn=Batches.init_worker))
    started, cpu_started, last_save = time.time(), cpu_seconds(), time.time()
    run_losses, run_epes, video_losses = [], [], []
    model.train()
    if args.precision == "bfloat16":
        model.corr = Float32Correlation(model.corr)

    def schedule_state():
        # anneal_func is a bound method: pickling it would store the whole scheduler and optimizer once more.
        return {k: v for k, v in schedule.state_dict().items() if k != "anneal_func"}

    def checkpoint():
        save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule_state(),
                     "step": step, "samples": samples, "wall": wall + time.time() - started,
                     "cpu": cpu + cpu_seconds() - cpu_started, "best": best, "sky_limit": sky_limit,
                     "args": vars(args)}, state_path)

    stop = []  # SIGTERM / SIGINT end the run after the current step, with a checkpoint
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, frame: stop.append(number))
    try:
        while step < end and time.time() < deadline and not stop:
            batch = next(loader)
            loss, flow = train_step(model, optimizer, batch, args.iterations, args.precision)
            schedule.step()
            step += 1
            samples += args.batch
            if "flow" in batch:
                run_losses.append(loss.item())
                run_epes.append(end_point_error(flow, batch["flow"], batch.get("valid")).item())
            else:
                video_losses.append(loss.item())

            if step % args.validate_every == 0 or step == args.steps:
                model.eval()
                scores = evaluate_full(raft_method(model), sets) if sets else {}
                drift = sky_drift(raft_method(model), sky)["median_vector_px"] if sky is not None else None
                model.train()
                row = {"step": step, "samples": samples, "wall_hours": round((wall + time.time() - started) / 3600, 4),
                       "cpu_hours": round((cpu + cpu_seconds() - cpu_started) / 3600, 4),
                       "lr": schedule.get_last_lr()[0],
                       # Over the supervised steps only; the photometric loss is printed beside the row.
                       "train_loss": sum(run_losses) / len(run_losses) if run_losses else "",
                       "train_epe": sum(run_epes) / len(run_epes) if run_epes else ""}
                for field, (set_name, measure) in LOG_MEASURES.items():
                    row[field] = scores[set_name][measure] if set_name in scores else ""
                score = selection_score(scores, reference) if scores else (row["train_epe"] or float("inf"))
                row["score"] = score
                row["sky_median_px"] = "" if drift is None else drift
                writer.writerow(row)
                log.flush()
                video = {"video_loss": sum(video_losses) / len(video_losses)} if video_losses else {}
                print(json.dumps({**row, **video}), flush=True)
                run_losses, run_epes, video_losses = [], [], []
                keep, refusal = kept_as_best(score, best, drift, sky_limit)
                if refusal:
                    print(f"step {step}: {refusal}", flush=True)
                if keep:
                    best = score
                    save_atomic({"model": model.state_dict(), "step": step, "scores": scores, "mix": mix,
                                 "pseudo_teacher": args.pseudo_teacher, "sky_median_px": drift}, best_path)
                checkpoint()
                last_save = time.time()
            elif time.time() - last_save > args.save_minutes * 60:
                checkpoint()
                last_save = time.time()
    finally:
        # Before an exception leaves: at interpreter exit the worker, which ignores SIGTERM so that a kill of the
        # whole group reaches only the trainer, would otherwise be waited for forever.
        loader._shutdown_workers()
        log.close()
    checkpoint()
    if step == end < args.steps and not stop:
        print(f"step {step}: the plan changes the schedule or data mix here", flush=True)
        return True
    print(f"stopped at step {step}{' on a signal' if stop else ''}", flush=True)
    return False


def measure_throughput(args, path: str) -> int:
    """Samples per second of whole training steps (forward, sequence loss, backward, clipping, AdamW) for crop sizes,
    iteration counts and both precisions, on pre-made batches; and of each generator alone on one thread."""
    textures = load_photographs()
    results = {"threads": args.threads, "batch": args.batch, "torch": torch.__version__, "steps": [],
               "generator_samples_per_s_1_thread": {}}
    for crop in ([192, 256], [256, 352]):
        generators = {"layered": SyntheticFlowGenerator(height=crop[0], width=crop[1], seed=0, textures=textures),
                      "rigid": RigidSceneGenerator(height=crop[0], width=crop[1], seed=0, textures=textures)}
        torch.set_num_threads(1)
        for name, generator in generators.items():
            started = time.perf_counter()
            batch = generator.batch(args.batch)
            rate = args.batch / (time.perf_counter() - started)
            results["generator_samples_per_s_1_thread"][f"{name} {crop[0]}x{crop[1]}"] = round(rate, 2)
        torch.set_num_threads(args.threads)
        for iterations in (8, 12, 20):
            for precision in ("float32", "bfloat16"):
                torch.manual_seed(0)
                model = RAFT(small=True)
                model.train()
                if precision == "bfloat16":
                    model.corr = Float32Correlation(model.corr)
                optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
                timings = []
                for repeat in range(3):
                    started = time.perf_counter()
                    train_step(model, optimizer, batch, iterations, precision)
                    if repeat:  # the first step warms up allocators
                        timings.append(time.perf_counter() - started)
                seconds = min(timings)
                row = {"crop": crop, "iterations": iterations, "precision": precision,
                       "seconds_per_step": round(seconds, 3), "samples_per_s": round(args.batch / seconds, 2)}
                results["steps"].append(row)
                print(json.dumps(row), flush=True)
    print(json.dumps(results["generator_samples_per_s_1_thread"]), flush=True)
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    return 0


def export_best(best_path: str) -> int:
    from .export import export_shipped
    best = torch.load(best_path, map_location="cpu")
    weights = os.path.join(os.path.dirname(best_path), "best-weights.pth")
    torch.save(best["model"], weights)
    scores = ", ".join(f"{k} EPE {v['epe'] if isinstance(v, dict) else v:.3f}"
                       for k, v in best.get("scores", {}).items())
    # The data mix of the run that saved it (best.pt files of older trainers lack it: then the state's, which is
    # the same run unless another has started since).
    state_path = os.path.join(os.path.dirname(best_path), "state.pt")
    run = {}
    if not (best.get("mix") and best.get("pseudo_teacher")) and os.path.exists(state_path):
        run = torch.load(state_path, map_location="cpu").get("args", {})
    mix = best.get("mix") or run
    video = "; self-supervised on unlabelled real video" if mix.get("video_share") else ""
    if mix.get("pseudo_share"):
        teacher = best.get("pseudo_teacher") or run.get("pseudo_teacher") or "classical"
        video += f"; real video with {teacher} flow as targets"
    info = export_shipped("raft-small", BUNDLED_EXPORT, weights=weights, name="raft-small",
                          trained_on=f"synthetic scenes (python/flowlib/synthetic.py, rigid.py){video}, "
                                     f"step {best['step']}; {scores}",
                          metrics=catalogue_metrics(best.get("scores", {})))
    os.remove(weights)
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
