"""Tile blending (Triton): weighted accumulate of overlapping tiles, then normalise to uint8.

    acc[c, y, x] += w_t[i, j] * tile_t[c, i, j];  wsum[y, x] += w_t[i, j]   (atomic fp32 adds)
    out[y, x, c]  = round(clamp((acc / wsum - lo) * 255 / (hi - lo), 0, 255))

Traffic: each tile element read once, accumulator read-modify-write per covering tile, one
read of acc/wsum and one uint8 write per output element.
"""

import torch
import triton
import triton.language as tl


@triton.jit
def _accumulate_kernel(t_ptr, w_ptr, box_ptr, acc_ptr, wsum_ptr, C, TH, TW, W, HWF,
                       stb, stc, sth, stw, BLOCK: tl.constexpr):
    b = tl.program_id(0)
    o = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    m = o < TH * TW
    i = o // TW
    j = o % TW
    y0 = tl.load(box_ptr + 2 * b)
    x0 = tl.load(box_ptr + 2 * b + 1)
    wt = tl.load(w_ptr + b * TH * TW + o, mask=m, other=0.0)
    dst = (y0 + i) * W + (x0 + j)
    tl.atomic_add(wsum_ptr + dst, wt, mask=m)
    for c in range(0, C):
        v = tl.load(t_ptr + b * stb + c * stc + i * sth + j * stw, mask=m, other=0.0).to(tl.float32)
        tl.atomic_add(acc_ptr + c * HWF + dst, v * wt, mask=m)


@triton.jit
def _normalize_kernel(acc_ptr, wsum_ptr, out_ptr, C, HW, scale, lo, BLOCK: tl.constexpr):
    o = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = o < HW
    ws = tl.load(wsum_ptr + o, mask=m, other=1.0)
    for c in range(0, C):
        v = tl.load(acc_ptr + c * HW + o, mask=m, other=0.0) / ws
        q = tl.floor(tl.minimum(tl.maximum((v - lo) * scale, 0.0), 255.0) + 0.5)
        tl.store(out_ptr + o * C + c, q.to(tl.uint8), mask=m)


def blend_tiles(tiles: torch.Tensor, window: torch.Tensor, boxes: list[tuple[int, int]],
                height: int, width: int, *, lo: float = -1.0, hi: float = 1.0) -> torch.Tensor:
    """(B, C, th, tw) tiles with (B, th, tw) windows at (y, x) boxes -> uint8 (height, width, C)."""
    B, C, th, tw = tiles.shape
    if window.shape != (B, th, tw):
        raise RuntimeError(f"window shape {tuple(window.shape)} != {(B, th, tw)}")
    if len(boxes) != B:
        raise RuntimeError(f"{len(boxes)} boxes for {B} tiles")
    for y, x in boxes:
        if y < 0 or x < 0 or y + th > height or x + tw > width:
            raise RuntimeError(f"tile at ({y}, {x}) leaves the {height}x{width} frame")
    dev = tiles.device
    acc = torch.zeros(C, height, width, device=dev, dtype=torch.float32)
    wsum = torch.zeros(height, width, device=dev, dtype=torch.float32)
    box_t = torch.tensor(boxes, dtype=torch.int32, device=dev).reshape(-1, 2)
    w = window.to(dev, torch.float32).contiguous()
    block = 1024
    _accumulate_kernel[(B, triton.cdiv(th * tw, block))](tiles, w, box_t, acc, wsum, C, th, tw, width,
                                                         height * width, *tiles.stride(), BLOCK=block)
    out = torch.empty(height, width, C, device=dev, dtype=torch.uint8)
    _normalize_kernel[(triton.cdiv(height * width, block),)](acc, wsum, out, C, height * width,
                                                             255.0 / (hi - lo), lo, BLOCK=block)
    return out
