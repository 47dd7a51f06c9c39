"""Reading frames and flow files for training and evaluation (Middlebury .flo, PPM/PNG images)."""
import numpy as np

FLO_MAGIC = 202021.25


def read_flo(path: str) -> np.ndarray:
    """(H, W, 2) float32 flow from a Middlebury .flo file."""
    with open(path, "rb") as f:
        magic = np.frombuffer(f.read(4), np.float32)
        if magic.size != 1 or magic[0] != FLO_MAGIC:
            raise ValueError(f"{path}: not a .flo file (bad magic number)")
        width, height = np.frombuffer(f.read(8), np.int32)
        data = np.frombuffer(f.read(), np.float32)
    if data.size != width * height * 2:
        raise ValueError(f"{path}: expected {width * height * 2} values for {width}x{height}, found {data.size}")
    return data.reshape(height, width, 2).copy()


def read_rgb(path: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB image."""
    import cv2
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: cannot read image")
    return image[:, :, ::-1].copy()
