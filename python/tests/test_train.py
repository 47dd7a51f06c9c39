"""The trainer's options: range checks, and which options a resumed run keeps."""
import contextlib
import csv
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import torch
from flowlib.runs import RUN_FIELDS, log_run, plan_at, read_plan, read_runs, run_changes, stages
from flowlib.train import DEFAULT_STEPS, LOG_FIELDS, Batches, carry_over, check_log, export_best, kept_as_best, \
    parse_args


class TrainOptionsTest(unittest.TestCase):
    def test_shares_outside_zero_to_one_are_refused_by_name(self):
        for flag, value in (("--slow-share", "1.5"), ("--blur-share", "-0.1"), ("--fast-share", "2"),
                            ("--zoom-share", "-1"), ("--warm-share", "1.01")):
            stderr = io.StringIO()
            with self.assertRaises(SystemExit), contextlib.redirect_stderr(stderr):
                parse_args([flag, value])
            self.assertIn(f"{flag} must be in [0, 1], got {float(value)}", stderr.getvalue())
        stderr = io.StringIO()
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(stderr):
            parse_args(["--slow-share", "0.5", "--fast-share", "0.6"])
        self.assertIn("--slow-share and --fast-share together must be at most 1, got 0.5 + 0.6", stderr.getvalue())

    def test_a_sky_clip_that_is_not_there_is_refused_by_name(self):
        stderr = io.StringIO()
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(stderr):
            parse_args(["--sky-clip", "/nonexistent/clip.mp4"])
        self.assertIn("--sky-clip: no such video '/nonexistent/clip.mp4'", stderr.getvalue())
        self.assertEqual(parse_args(["--sky-clip", ""]).sky_clip, "")

    def test_crops_too_small_for_the_pyramid_are_refused(self):
        for crop in (["32", "48"], ["64", "100"]):
            stderr = io.StringIO()
            with self.assertRaises(SystemExit), contextlib.redirect_stderr(stderr):
                parse_args(["--crop", *crop])
            self.assertIn("--crop sides must be multiples of 8 and at least 64", stderr.getvalue())
            self.assertIn(f"got {' '.join(crop)}", stderr.getvalue())

    def test_counts_below_one_are_refused_by_name(self):
        stderr = io.StringIO()
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(stderr):
            parse_args(["--validate-on", "chairs,middlebury"])
        self.assertIn("--validate-on: unknown set 'middlebury'; the sets are chairs, sintel", stderr.getvalue())
        for flag in ("--batch", "--iterations", "--validate-every", "--threads"):
            stderr = io.StringIO()
            with self.assertRaises(SystemExit), contextlib.redirect_stderr(stderr):
                parse_args([flag, "0"])
            self.assertIn(f"{flag} must be at least 1, got 0", stderr.getvalue())

    def test_a_fresh_run_gets_the_defaults(self):
        args = parse_args([])
        carry_over(args, {})
        self.assertEqual((args.steps, args.slow_share, args.blur_share), (DEFAULT_STEPS, 0.0, 0.0))

    def test_a_resumed_run_keeps_its_options_unless_given_again(self):
        saved = {"steps": 16800, "slow_share": 0.4, "blur_share": 0.3}
        args = parse_args([])
        carry_over(args, saved)
        self.assertEqual((args.steps, args.slow_share, args.blur_share), (16800, 0.4, 0.3))
        args = parse_args(["--steps", "21000", "--blur-share", "0"])
        carry_over(args, saved)
        self.assertEqual((args.steps, args.slow_share, args.blur_share), (21000, 0.4, 0.0))
        args = parse_args([])
        carry_over(args, {"steps": 18000})  # a state saved before the shares existed
        self.assertEqual((args.steps, args.slow_share, args.blur_share), (18000, 0.0, 0.0))


class RunLogTest(unittest.TestCase):
    def test_each_start_is_logged_and_only_changes_are_marked(self):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "runs.csv")
            self.assertEqual(read_runs(path), [])
            starts = [(0, 0.0, 18000, 0.0, 0.0), (500, 0.4, 18000, 0.0, 0.0), (900, 0.71, 16800, 0.4, 0.0),
                      (1200, 0.9, 16800, 0.4, 0.0), (1500, 1.2, 16800, 0.4, 0.3)]
            for step, hours, steps, slow, blur in starts:
                log_run(path, step=step, wall_hours=hours, steps=steps, slow_share=slow, blur_share=blur, lr=1e-4)
            runs = read_runs(path)
            self.assertEqual([int(row["step"]) for row in runs], [0, 500, 900, 1200, 1500])
            self.assertEqual(run_changes(runs), [(0.71, "schedule 16,800 steps, slow 40%"), (1.2, "blur 30%")])
            log_run(path, step=1800, wall_hours=1.5, steps=16800, slow_share=0.4, blur_share=0.3, fast_share=0.3,
                    warm_share=0.25, lr=1e-4)
            self.assertEqual(run_changes(read_runs(path))[-1], (1.5, "fast 30%, warm start 25%"))

    def test_stages_begin_at_each_new_start_with_what_they_changed_and_their_notes(self):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "runs.csv")
            log_run(path, step=0, wall_hours=0.0, steps=1000, lr=1e-4, start="scratch", note="layered scenes")
            log_run(path, step=400, wall_hours=0.5, steps=1000, slow_share=0.4, lr=1e-4, start="resumed")
            log_run(path, step=0, wall_hours=1.0, steps=300, slow_share=0.4, rigid_share=0.5, lr=1e-4,
                    start="bundled", note="open roads, sky guard")
            log_run(path, step=100, wall_hours=1.2, steps=300, slow_share=0.4, rigid_share=0.5, lr=1e-4,
                    start="resumed")
            self.assertEqual(stages(read_runs(path)), [
                {"hours": 0.0, "start": "scratch", "changed": "layered scenes", "later": [(0.5, "slow 40%")]},
                {"hours": 1.0, "start": "bundled",
                 "changed": "open roads, sky guard, schedule 300 steps, rigid 3-D 50%", "later": []}])

    def test_a_log_of_older_columns_is_rewritten_with_the_new_shares_at_zero(self):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "runs.csv")
            with open(path, "w") as f:
                f.write("step,wall_hours,steps,slow_share,blur_share,lr\n0,0.0,24000,0.0,0.0,1.6e-05\n"
                        "9630,4.294,16800,0.4,0.0,0.0001812\n")
            log_run(path, step=20000, wall_hours=7.7, steps=24000, slow_share=0.4, blur_share=0.0, zoom_share=0.3,
                    lr=1e-4)
            with open(path) as f:
                self.assertEqual(f.readline().strip(), ",".join(RUN_FIELDS))
            runs = read_runs(path)
            self.assertEqual([(row["step"], row["slow_share"], row["zoom_share"]) for row in runs],
                             [("0", "0.0", "0.0"), ("9630", "0.4", "0.0"), ("20000", "0.4", "0.3")])
            self.assertEqual(run_changes(runs)[-1], (7.7, "schedule 24,000 steps, zoom 30%"))


class PlanTest(unittest.TestCase):
    def write(self, folder: str, text: str) -> str:
        path = os.path.join(folder, "plan.csv")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_a_plan_gives_the_options_in_force_and_the_next_change(self):
        with tempfile.TemporaryDirectory() as folder:
            path = self.write(folder, "step,wall_hours,steps,slow_share,blur_share,lr\n"
                                      "9630,4.29,16800,0.4,0.0,1e-4\n0,0,24000,0,0,1e-5\n4000,2.3,18000,0,0,3e-4\n")
            plan = read_plan(path)
            self.assertEqual([entry["step"] for entry in plan], [0, 4000, 9630])
            self.assertEqual(plan_at(plan, 0), (plan[0], 4000))
            self.assertEqual(plan_at(plan, 3999), (plan[0], 4000))
            self.assertEqual(plan_at(plan, 4000), (plan[1], 9630))
            self.assertEqual(plan_at(plan, 12000), (plan[2], None))
            # A later stage from the bundled weights (its steps restart) is not part of the recipe.
            log_run(path, step=0, wall_hours=7.7, steps=3000, lr=1e-4, start="bundled", fast_share=0.3)
            log_run(path, step=1200, wall_hours=8.2, steps=3000, lr=1e-4, start="resumed", fast_share=0.3)
            self.assertEqual(read_plan(path), plan)
            args = parse_args(["--plan", path])
            self.assertEqual(args.plan, plan)

    def test_a_bad_plan_or_a_plan_with_its_own_options_is_refused(self):
        with tempfile.TemporaryDirectory() as folder:
            cases = (("step,steps\n", ["--plan", "P"], "has no run rows"),
                     ("step,wall_hours,steps,slow_share,blur_share,lr\n0,0,many,0,0,1e-5\n", ["--plan", "P"],
                      "line 2: not a run row"),
                     ("step,wall_hours,steps,slow_share,blur_share,lr\n0,0,100,2,0,1e-5\n", ["--plan", "P"],
                      "shares be in [0, 1]"),
                     ("step,wall_hours,steps,slow_share,blur_share,lr\n0,0,100,0,0,1e-5\n",
                      ["--plan", "P", "--steps", "5"], "do not give --steps with it"))
            for text, argv, message in cases:
                path = self.write(folder, text)
                stderr = io.StringIO()
                with self.assertRaises(SystemExit), contextlib.redirect_stderr(stderr):
                    parse_args([path if a == "P" else a for a in argv])
                self.assertIn(message, stderr.getvalue())
            stderr = io.StringIO()
            with self.assertRaises(SystemExit), contextlib.redirect_stderr(stderr):
                parse_args(["--plan", os.path.join(folder, "missing.csv")])
            self.assertIn("missing.csv not found", stderr.getvalue())


class BatchesTest(unittest.TestCase):
    def test_the_batch_of_a_step_does_not_depend_on_where_the_run_resumed(self):
        def batches(first_step: int, count: int):
            made = iter(Batches(height=24, width=32, batch=2, seed=5, first_step=first_step, slow_share=0.4,
                                blur_share=0.3, textures=[]))
            return [next(made) for _ in range(count)]

        straight, resumed = batches(0, 3), batches(2, 1)
        for key in ("image1", "image2", "flow"):
            self.assertTrue(torch.equal(straight[2][key], resumed[0][key]), key)
            self.assertFalse(torch.equal(straight[1][key], straight[2][key]), key)

    def test_warm_started_batches_have_the_scenes_of_cold_ones_and_a_flow_init(self):
        def batches(warm: float):
            made = iter(Batches(height=64, width=64, batch=2, seed=5, first_step=0, warm_share=warm, textures=[]))
            return [next(made) for _ in range(4)]

        cold, warm = batches(0.0), batches(1.0)
        for a, b in zip(cold, warm):
            self.assertTrue(torch.equal(a["flow"], b["flow"]))
            self.assertNotIn("flow_init", a)
            self.assertEqual(tuple(b["flow_init"].shape), (2, 2, 8, 8))

    def test_magnified_batches_are_a_share_of_the_steps_and_leave_the_rest_as_they_were(self):
        def batches(share: float):
            made = iter(Batches(height=32, width=48, batch=1, seed=5, first_step=0, magnify_share=share, textures=[]))
            return [next(made) for _ in range(6)]

        plain, some, every = batches(0.0), batches(0.5), batches(1.0)
        changed = [not torch.equal(a["image1"], b["image1"]) for a, b in zip(plain, some)]
        self.assertTrue(any(changed) and not all(changed), changed)
        for a, b, c in zip(plain, some, every):
            self.assertFalse(torch.equal(a["image1"], c["image1"]))
            if torch.equal(a["image1"], b["image1"]):
                self.assertTrue(torch.equal(a["flow"], b["flow"]))


class KeptAsBestTest(unittest.TestCase):
    def test_a_better_score_is_kept_unless_its_sky_drifts_more_than_the_limit(self):
        self.assertEqual(kept_as_best(0.8, 0.9, 2.0, 2.5), (True, ""))
        self.assertEqual(kept_as_best(0.8, 0.9, 2.5, 2.5), (True, ""))  # as still as the bundle is enough
        self.assertEqual(kept_as_best(0.8, 0.9, None, 2.5), (True, ""))  # no clip, no guard
        self.assertEqual(kept_as_best(0.8, 0.9, 9.0, float("inf")), (True, ""))  # a run not from the bundle
        self.assertEqual(kept_as_best(0.8, 0.9, 3.88, 2.51),
                         (False, "not kept as best: its sky drifts 3.88 px, over the bundle's 2.51"))

    def test_a_score_that_is_not_better_is_not_kept_whatever_its_sky(self):
        self.assertEqual(kept_as_best(0.9, 0.9, 0.0, 2.5), (False, ""))
        self.assertEqual(kept_as_best(1.0, 0.9, 9.0, 2.5), (False, ""))


class CheckLogTest(unittest.TestCase):
    def test_an_older_log_gains_the_new_columns_empty_and_keeps_its_rows(self):
        with tempfile.TemporaryDirectory() as out:
            path = os.path.join(out, "log.csv")
            older = LOG_FIELDS[:-1]
            with open(path, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=older)
                writer.writeheader()
                writer.writerow({field: str(i) for i, field in enumerate(older)})
            check_log(path)
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                rows = list(reader)
            self.assertEqual(reader.fieldnames, LOG_FIELDS)
            self.assertEqual(rows, [{**{field: str(i) for i, field in enumerate(older)}, LOG_FIELDS[-1]: ""}])

    def test_a_log_of_other_columns_is_refused_untouched(self):
        with tempfile.TemporaryDirectory() as out:
            path = os.path.join(out, "log.csv")
            with open(path, "w") as f:
                f.write("step,epoch\n1,2\n")
            with self.assertRaisesRegex(SystemExit, "unknown columns"):
                check_log(path)
            with open(path) as f:
                self.assertEqual(f.read(), "step,epoch\n1,2\n")


class ExportBestTest(unittest.TestCase):
    """What the export of the best checkpoint says it was trained on (the export itself is stubbed out)."""

    def trained_on(self, best: dict, state: dict = None) -> str:
        from unittest import mock
        with tempfile.TemporaryDirectory() as out:
            torch.save({"model": {}, "step": 7, "scores": {}, **best}, os.path.join(out, "best.pt"))
            if state is not None:
                torch.save(state, os.path.join(out, "state.pt"))
            with mock.patch("flowlib.export.export_shipped", return_value={}) as export, \
                    contextlib.redirect_stdout(io.StringIO()):
                self.assertEqual(export_best(os.path.join(out, "best.pt")), 0)
        return export.call_args.kwargs["trained_on"]

    def test_the_pseudo_labelled_video_and_its_teacher_are_named(self):
        said = self.trained_on({"mix": {"pseudo_share": 0.2}, "pseudo_teacher": "deepflow"})
        self.assertIn("real video with deepflow flow as targets", said)
        self.assertIn("step 7", said)
        self.assertNotIn("real video", self.trained_on({"mix": {"pseudo_share": 0.0}, "pseudo_teacher": "deepflow"}))

    def test_an_older_checkpoint_takes_the_teacher_from_its_runs_state(self):
        said = self.trained_on({"mix": {"pseudo_share": 0.2}}, state={"args": {"pseudo_teacher": "dis-medium"}})
        self.assertIn("real video with dis-medium flow as targets", said)
        self.assertIn("real video with classical flow", self.trained_on({"mix": {"pseudo_share": 0.2}}))


class StopAndResumeTest(unittest.TestCase):
    """The trainer itself, on tiny crops: SIGTERM ends it with a checkpoint, and a second run resumes there."""

    PACKAGE_PARENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    TINY = ["--crop", "64", "64", "--batch", "1", "--iterations", "2", "--threads", "1", "--steps", "100000",
            "--validate-every", "100000", "--slow-share", "0.4", "--validate-on", "sintel-demo", "--sky-clip", ""]

    def run_trainer(self, out: str, extra, *, stop_when_saved: bool = False, status: int = 0):
        process = subprocess.Popen([sys.executable, "-m", "flowlib.train", "--out", out, *self.TINY, *extra],
                                   cwd=self.PACKAGE_PARENT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            if stop_when_saved:
                # With --save-minutes 0 every step saves the state: stop once one has.
                deadline = time.time() + 120
                while not os.path.exists(os.path.join(out, "state.pt")) and time.time() < deadline:
                    time.sleep(0.1)
                process.send_signal(signal.SIGTERM)
            try:
                output, _ = process.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                self.fail("the trainer did not exit within 120 s")
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        lines = output.splitlines()
        self.assertEqual(process.returncode, status, lines)
        return lines

    def test_a_stopped_run_resumes_where_it_was(self):
        with tempfile.TemporaryDirectory() as out:
            lines = self.run_trainer(out, ["--save-minutes", "0"], stop_when_saved=True)
            stopped = [line for line in lines if line.startswith("stopped at step")]
            self.assertEqual(len(stopped), 1, lines)
            self.assertTrue(stopped[0].endswith("on a signal"), stopped)
            step = int(stopped[0].split()[3])
            self.assertGreater(step, 0)
            state = torch.load(os.path.join(out, "state.pt"), map_location="cpu")
            self.assertEqual((state["step"], state["samples"], state["args"]["slow_share"]), (step, step, 0.4))

            lines = self.run_trainer(out, ["--hours", "0.0005"])
            self.assertIn(f"resumed at step {step} ({step} samples, 0.00 h)", lines)
            later = torch.load(os.path.join(out, "state.pt"), map_location="cpu")["step"]
            self.assertGreaterEqual(later, step)
            self.assertEqual([int(row["step"]) for row in read_runs(os.path.join(out, "runs.csv"))], [0, step])

    def test_a_run_without_state_starts_from_the_bundled_weights_unless_asked_not_to(self):
        with tempfile.TemporaryDirectory() as out:
            lines = self.run_trainer(out, ["--hours", "0.0001"])
            self.assertTrue(any(line.startswith("starting from the bundled weights") for line in lines), lines)
            state = torch.load(os.path.join(out, "state.pt"), map_location="cpu")
            self.assertEqual(state["args"]["lr"], 1e-4)
        with tempfile.TemporaryDirectory() as out:
            lines = self.run_trainer(out, ["--hours", "0.0001", "--init", "scratch"])
            self.assertFalse(any(line.startswith("starting from the bundled weights") for line in lines), lines)
            self.assertEqual(torch.load(os.path.join(out, "state.pt"), map_location="cpu")["args"]["lr"], 4e-4)

    def test_a_crash_in_the_loop_ends_the_process(self):
        # state.pt.tmp as a folder makes the first save of the state fail inside the training loop (every step saves
        # with --save-minutes 0), with the data worker running: the trainer must exit with the error, not wait for
        # the worker forever.
        with tempfile.TemporaryDirectory() as out:
            os.mkdir(os.path.join(out, "state.pt.tmp"))
            lines = self.run_trainer(out, ["--save-minutes", "0"], status=1)
            # torch.save says so with an IsADirectoryError (1.x) or a RuntimeError naming the cause (2.x).
            self.assertTrue(any("Is a directory" in line for line in lines), lines)
            self.assertFalse(os.path.exists(os.path.join(out, "state.pt")), lines)

    def test_a_video_share_without_videos_stops_before_any_work_or_record(self):
        with tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory() as empty:
            lines = self.run_trainer(out, ["--video-share", "0.5", "--videos", empty], status=1)
            self.assertIn(f"--video-share 0.5: no videos in {empty} (besides sintel_clip.mp4)", lines)
            self.assertEqual(os.listdir(out), [])

    def test_a_pseudo_label_cache_of_another_teacher_is_refused(self):
        with tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory() as cache:
            with open(os.path.join(cache, "index.json"), "w") as f:
                f.write('{"teacher": "dis-medium", "check": "forward-backward", "videos": {}}')
            lines = self.run_trainer(out, ["--pseudo-share", "0.4", "--pseudo", cache, "--pseudo-teacher",
                                           "deepflow"], status=1)
            self.assertIn(f"--pseudo-teacher deepflow: the cache in {cache} was made by 'dis-medium'; give its "
                          "teacher or another --pseudo folder", lines)
            self.assertEqual(os.listdir(out), [])


if __name__ == "__main__":
    unittest.main()
