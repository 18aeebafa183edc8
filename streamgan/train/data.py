"""Datasets in the official layouts, checked before training; deterministic augmentation."""

from pathlib import Path

import cv2
import numpy as np
import torch

from ..errors import InputError
from ..media.images import IMAGE_SUFFIXES, read_image


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InputError(f"{folder}: missing folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"{folder}: no images")
    return files


def check_readable(paths: list[Path]) -> None:
    for p in paths:
        read_image(p)


def augment(imgs: list[np.ndarray], load: int, crop: int, flip: bool, rs: np.random.RandomState) -> list[torch.Tensor]:
    """Same resize (load x load, bicubic), random crop and flip for every image of a sample -> [-1, 1]."""
    out = []
    x = int(rs.randint(0, load - crop + 1))
    y = int(rs.randint(0, load - crop + 1))
    do_flip = flip and rs.rand() < 0.5
    for img in imgs:
        r = cv2.resize(img, (load, load), interpolation=cv2.INTER_CUBIC)[y:y + crop, x:x + crop]
        if do_flip:
            r = r[:, ::-1]
        out.append(torch.from_numpy(np.ascontiguousarray(r)).permute(2, 0, 1).float() / 127.5 - 1)
    return out


class PairedDataset(torch.utils.data.Dataset):
    """DIR/train/*.png with A|B side by side, or DIR/A and DIR/B with matching names."""

    def __init__(self, root: Path, load: int, crop: int, flip: bool, direction: str, seed: int):
        if (root / "train").is_dir():
            self.files = _images(root / "train")
            self.split = True
        elif (root / "A").is_dir() and (root / "B").is_dir():
            a, b = _images(root / "A"), _images(root / "B")
            names_b = {p.name for p in b}
            names_a = {p.name for p in a}
            missing = [p.name for p in a if p.name not in names_b] + [p.name for p in b if p.name not in names_a]
            if missing:
                raise InputError(f"{root}: A/ and B/ do not match (e.g. {missing[0]} has no partner)")
            self.files = [(p, root / "B" / p.name) for p in a]
            self.split = False
        else:
            raise InputError(f"{root}: expected train/ (A|B side by side) or A/ and B/ folders")
        for f in self.files:
            if self.split:
                img = read_image(f)
                if img.shape[1] % 2:
                    raise InputError(f"{f}: odd width, not an A|B side-by-side pair")
            else:
                check_readable(list(f))
        self.load, self.crop, self.flip, self.seed = load, crop, flip, seed
        self.swap = direction == "BtoA"
        self.epoch = 0

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        if self.split:
            img = read_image(self.files[i])
            w = img.shape[1] // 2
            a, b = img[:, :w], img[:, w:]
        else:
            a, b = read_image(self.files[i][0]), read_image(self.files[i][1])
        rs = np.random.RandomState((self.seed * 1000003 + self.epoch * 7919 + i) % (1 << 31))
        a, b = augment([a, b], self.load, self.crop, self.flip, rs)
        return (b, a) if self.swap else (a, b)


class UnpairedDataset(torch.utils.data.Dataset):
    """DIR/trainA and DIR/trainB; B is drawn at a (seeded) random index, as the official loader does."""

    def __init__(self, root: Path, load: int, crop: int, flip: bool, direction: str, seed: int):
        self.a, self.b = _images(root / "trainA"), _images(root / "trainB")
        check_readable(self.a + self.b)
        if direction == "BtoA":
            self.a, self.b = self.b, self.a
        self.load, self.crop, self.flip, self.seed = load, crop, flip, seed
        self.epoch = 0

    def __len__(self):
        return max(len(self.a), len(self.b))

    def __getitem__(self, i):
        rs = np.random.RandomState((self.seed * 1000003 + self.epoch * 7919 + i) % (1 << 31))
        a = read_image(self.a[i % len(self.a)])
        b = read_image(self.b[int(rs.randint(len(self.b)))])
        a_t = augment([a], self.load, self.crop, self.flip, rs)[0]
        return a_t, augment([b], self.load, self.crop, self.flip, rs)[0]


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    return np.random.RandomState((seed * 31 + epoch) % (1 << 31)).permutation(n).tolist()
