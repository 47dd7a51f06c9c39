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


def write_flo(path: str, flow: np.ndarray) -> None:
    """Writes (H, W, 2) flow as a Middlebury .flo file."""
    height, width = flow.shape[:2]
    with open(path, "wb") as f:
        f.write(np.float32(FLO_MAGIC).tobytes())
        f.write(np.array([width, height], np.int32).tobytes())
        f.write(np.ascontiguousarray(flow, np.float32).tobytes())


def read_rgb(path: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB image."""
    import cv2
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: cannot read image")
    return image[:, :, ::-1].copy()


def read_kitti_flow(path: str):
    """(H, W, 2) float32 flow and (H, W) bool valid mask from a KITTI 16-bit flow PNG: in OpenCV's BGR order channel
    2 is u and channel 1 is v, each (value - 2^15) / 64, and channel 0 is 1 where the flow is known."""
    import cv2
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None or image.dtype != np.uint16 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{path}: not a KITTI flow PNG (16-bit, 3 channels)")
    flow = (image[:, :, 2:0:-1].astype(np.float32) - 2 ** 15) / 64.0
    return flow, image[:, :, 0] > 0


def read_mask(path: str) -> np.ndarray:
    """(H, W) bool: True where a mask image (Sintel's invalid or occlusion masks) is white."""
    import cv2
    image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError(f"{path}: cannot read mask")
    return image > 127
