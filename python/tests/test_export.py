"""The shipped export: written by the oldest supported torch (Debian's 1.13) whatever torch runs the caller, with the
weights, name and metrics it was given."""
import json
import os
import subprocess
import tempfile
import unittest

import torch
from flowlib import models
from flowlib.export import SHIPPING_PYTHON, export_shipped


def shipping_torch() -> str:
    found = subprocess.run([SHIPPING_PYTHON, "-c", "import torch; print(torch.__version__)"], capture_output=True,
                           text=True)
    return found.stdout.strip() if found.returncode == 0 else ""


@unittest.skipUnless(shipping_torch(), f"{SHIPPING_PYTHON} with torch is absent (setup installs python3-torch)")
class ShippedExportTest(unittest.TestCase):
    def test_the_file_is_written_by_the_shipping_torch_with_the_weights_and_metrics_given(self):
        torch.manual_seed(3)
        weights = models.build("raft-small").state_dict()
        metrics = {"sintel-training-samples-5": {"epe": 1.5, "fl_all": 0.1}}
        with tempfile.TemporaryDirectory() as out:
            path = os.path.join(out, "weights.pth")
            torch.save(weights, path)
            target = os.path.join(out, "raft-small.pt")
            info = export_shipped("raft-small", target, weights=path, name="raft-small", trained_on="a test",
                                  metrics=metrics)
            self.assertEqual(info["torch_version"], shipping_torch())
            self.assertEqual(info["metrics"], metrics)
            # The shipping torch loads it (a file of a newer torch may hold ops it lacks), and so does this one.
            loaded = subprocess.run([SHIPPING_PYTHON, "-c", "import sys, torch; m = torch.jit.load(sys.argv[1]); "
                                     "print(m.flow_metadata)", target], capture_output=True, text=True)
            self.assertEqual(loaded.returncode, 0, loaded.stderr)
            said = json.loads(loaded.stdout)
            self.assertEqual((said["name"], said["trained_on"], said["metrics"]), ("raft-small", "a test", metrics))
            state = torch.jit.load(target, map_location="cpu").state_dict()
        self.assertEqual(set(state), set(weights))
        for key, tensor in weights.items():
            self.assertTrue(torch.equal(state[key], tensor), key)

    def test_a_failing_export_names_the_problem(self):
        with tempfile.TemporaryDirectory() as out:
            missing = os.path.join(out, "absent.pth")
            with self.assertRaisesRegex(RuntimeError, "export by .*absent.pth"):
                export_shipped("raft-small", os.path.join(out, "x.pt"), weights=missing)


if __name__ == "__main__":
    unittest.main()
