"""Where the project's folders are, seen from this package (python/flowlib inside the project)."""
import os

PROJECT_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS_DIR = os.path.join(PROJECT_ROOT, "models")
TRAINING_DIR = os.path.join(PROJECT_ROOT, "training")
# Validation data lives beside the project, never inside it.
SHARED_DATA = os.path.abspath(os.path.join(PROJECT_ROOT, "..", "shared", "data"))
