"""Real photographs for the synthetic generators' surfaces, from Debian packages (`npm run train` installs them;
the model card lists them with their licences). The shared evaluation data is never used.
"""
import glob
import os
from typing import List, NamedTuple

import torch
from torch import Tensor


class PhotographSource(NamedTuple):
    package: str
    pattern: str
    licence: str


# Photographs only: the packages' drawings, logos and abstract renderings are left out by folder or by the
# flatness check below.
PHOTOGRAPH_SOURCES = (
    PhotographSource("mate-backgrounds", "/usr/share/backgrounds/mate/nature/*.jpg", "GPL-2+"),
    PhotographSource("mate-backgrounds", "/usr/share/backgrounds/mate/abstract/Elephants.jpg", "GPL-2+"),
    PhotographSource("plasma-workspace-wallpapers", "/usr/share/wallpapers/*/contents/images/*.jpg", "GPL-2+"),
    PhotographSource("opencv-doc", "/usr/share/doc/opencv-doc/examples/data/*.jpg", "BSD-3-Clause / Apache-2.0"),
    PhotographSource("opencv-doc", "/usr/share/doc/opencv-doc/examples/data/*.png", "BSD-3-Clause / Apache-2.0"),
    PhotographSource("python3-skimage", "/usr/lib/python3/dist-packages/skimage/data/*.png", "BSD-3-Clause and CC0"),
    PhotographSource("python3-skimage", "/usr/lib/python3/dist-packages/skimage/data/*.jpg", "BSD-3-Clause and CC0"),
)
PHOTOGRAPH_PACKAGES = tuple(sorted({source.package for source in PHOTOGRAPH_SOURCES}))
MIN_SIDE = 200
MAX_SIDE = 1024


def photograph_files() -> List[str]:
    """The files of PHOTOGRAPH_SOURCES present on this machine; one per picture (KDE ships each wallpaper at several
    sizes, most of them empty links to one: the largest non-empty file is kept)."""
    files = []
    for source in PHOTOGRAPH_SOURCES:
        found = sorted(path for path in glob.glob(source.pattern) if os.path.getsize(path) > 0)
        if "/wallpapers/" in source.pattern:
            largest = {}
            for path in found:
                folder = path.split("/contents/")[0]
                if folder not in largest or os.path.getsize(path) > os.path.getsize(largest[folder]):
                    largest[folder] = path
            found = sorted(largest.values())
        files.extend(found)
    return files


def load_photographs(limit: int = 400, max_side: int = MAX_SIDE) -> List[Tensor]:
    """Colour photographs at least MIN_SIDE on each side, scaled to at most `max_side`, as (3, H, W) uint8 RGB."""
    import cv2
    photographs = []
    for path in photograph_files():
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None or min(image.shape[:2]) < MIN_SIDE:
            continue
        if float(image.std()) < 20:  # flat drawings and masks teach nothing about matching
            continue
        scale = max_side / max(image.shape[:2])
        if scale < 1:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        photographs.append(torch.from_numpy(image[:, :, ::-1].copy()).permute(2, 0, 1).contiguous())
        if len(photographs) >= limit:
            break
    return photographs
