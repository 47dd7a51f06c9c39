"""The trainer's options: range checks, and which options a resumed run keeps."""
import contextlib
import io
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
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


if __name__ == "__main__":
    unittest.main()
