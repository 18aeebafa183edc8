"""Sliding-window tiles for frames larger than a tile, with feathered blending.

A TilePlan pads the frame (reflect, bottom/right) to the architecture's size multiple, places
tiles on that multiple (so strided convolutions see the same sampling grid as the full frame),
flush with the border, and gives each tile a window that is 1 in its interior and ramps to ~0
across the overlap with each neighbour. The ramp sits in the middle of the overlap, a margin of
up to the receptive radius away from the tile's edge, so pixels whose context was cut off by the
tile border get no weight. The windows of neighbours sum to 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engines.lazy import torch  # imported on first use (engines/lazy.py)


def round_up(v: int, m: int) -> int:
    return -(-v // m) * m


def _positions(length: int, tile: int, overlap: int, multiple: int) -> list[int]:
    if length <= tile:
        return [0]
    stride = max(multiple, (tile - overlap) // multiple * multiple)
    n = math.ceil((length - tile) / stride) + 1
    return sorted({min(i * stride, length - tile) for i in range(n)})


def _ramp(n: int, kind: str) -> torch.Tensor:
    t = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    return 0.5 - 0.5 * torch.cos(math.pi * t) if kind == "cosine" else t


def _axis_window(pos: list[int], i: int, tile: int, radius: int, kind: str) -> torch.Tensor:
    w = torch.ones(tile, dtype=torch.float64)
    for side in (-1, 1):
        j = i + side
        if not 0 <= j < len(pos):
            continue
        ov = tile - abs(pos[j] - pos[i])
        margin = max(0, min(radius, (ov - 8) // 2))
        ramp = _ramp(ov - 2 * margin, kind)
        edge = torch.cat([torch.zeros(margin, dtype=torch.float64), ramp,
                          torch.ones(tile - ov + margin, dtype=torch.float64)])
        w *= edge if side < 0 else edge.flip(0)
    return w.clamp_min(1e-4)


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles of one frame size go and how they are weighted."""

    height: int
    width: int
    padded: tuple[int, int]
    tile: tuple[int, int]
    boxes: tuple[tuple[int, int], ...]
    windows: torch.Tensor | None  # (len(boxes), tile_h, tile_w) float32; None for the whole frame

    @property
    def full_frame(self) -> bool:
        return len(self.boxes) == 1

    @classmethod
    def make(cls, height: int, width: int, *, tile: int = 0, overlap: int = 0, multiple: int = 1,
             radius: int = 0, window: str = "cosine") -> "TilePlan":
        """tile 0: one full-frame tile. Otherwise ``tile`` (rounded to ``multiple``) with ``overlap``."""
        ph, pw = round_up(height, multiple), round_up(width, multiple)
        if tile <= 0:
            return cls(height, width, (ph, pw), (ph, pw), ((0, 0),), None)  # nothing to blend
        t = max(multiple, round_up(tile, multiple))
        th, tw = min(t, ph), min(t, pw)
        ys = _positions(ph, th, overlap, multiple)
        xs = _positions(pw, tw, overlap, multiple)
        wy = [_axis_window(ys, i, th, radius, window) for i in range(len(ys))]
        wx = [_axis_window(xs, i, tw, radius, window) for i in range(len(xs))]
        boxes = tuple((y, x) for y in ys for x in xs)
        windows = torch.stack([wy[i][:, None] * wx[j][None, :]
                               for i in range(len(ys)) for j in range(len(xs))]).float()
        return cls(height, width, (ph, pw), (th, tw), boxes, windows)


def default_overlap(tile: int, radius: int, multiple: int) -> int:
    """Enough overlap for exact convolutions (2 x radius + ramp), at most half the tile."""
    return min(round_up(2 * radius + 32, multiple), tile // 2 // multiple * multiple)
