"""The trainer's options: range checks, and which options a resumed run keeps."""
import contextlib
import io
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from flowlib.runs import log_run, read_runs, run_changes  # noqa: E402
from train import DEFAULT_STEPS, carry_over, parse_args  # noqa: E402


class TrainOptionsTest(unittest.TestCase):
    def test_shares_outside_zero_to_one_are_refused_by_name(self):
        for flag, value in (("--slow-share", "1.5"), ("--blur-share", "-0.1")):
            stderr = io.StringIO()
            with self.assertRaises(SystemExit), contextlib.redirect_stderr(stderr):
                parse_args([flag, value])
            self.assertIn(f"{flag} must be in [0, 1], got {float(value)}", stderr.getvalue())

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


if __name__ == "__main__":
    unittest.main()
