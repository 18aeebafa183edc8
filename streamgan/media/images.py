"""Image files and folders as frame sources and sinks."""

import glob
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError, OutputError
from .files import atomic_path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def expand_images(spec: str) -> list[Path]:
    """An image file, a folder (its images, sorted) or a glob pattern -> image paths."""
    p = Path(spec)
    if any(c in spec for c in "*?[") and not p.exists():
        paths = sorted(Path(s) for s in glob.glob(spec) if is_image(Path(s)))
        if not paths:
            raise InputError(f"{spec}: the pattern matches no images")
        return paths
    if p.is_dir():
        paths = sorted(q for q in p.iterdir() if q.is_file() and is_image(q))
        if not paths:
            raise InputError(f"{p}: the folder holds no images or videos")
        return paths
    if not p.exists():
        raise InputError(f"{p}: no such file")
    return [p]


def read_image(path: Path) -> np.ndarray:
    """RGB uint8 (H, W, 3); grayscale and alpha are converted."""
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file")
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"{path}: not a readable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def write_image(path: Path, rgb: np.ndarray) -> None:
    """Write atomically; the suffix picks the format."""
    ok, buf = cv2.imencode(path.suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OutputError(f"{path}: cannot encode an image with suffix {path.suffix!r}")
    with atomic_path(path) as tmp:
        buf.tofile(str(tmp))
