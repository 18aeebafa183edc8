"""Frame conversion kernels (Triton).

preprocess:  uint8 HWC (RGB or BGR, any strides) -> (B, C, h, w) fp16/fp32 in [lo, hi]:
             y = x * (hi - lo) / 255 + lo, optionally gathering B tiles at (y, x) boxes straight
             from the frame. Traffic: 1 byte read + 2/4 bytes written per output element.
postprocess: (1, C, H, W) float in [lo, hi] -> uint8 HWC, round-to-nearest, clamped to [0, 255].
"""

import torch
import triton
import triton.language as tl


@triton.jit
def _preprocess_kernel(f_ptr, box_ptr, out_ptr, C, TH, TW, sfh, sfw, sfc, scale, lo,
                       BGR: tl.constexpr, BLOCK: tl.constexpr):
    bc = tl.program_id(0)
    b = bc // C
    c = bc % C
    o = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    m = o < TH * TW
    y0 = tl.load(box_ptr + 2 * b)
    x0 = tl.load(box_ptr + 2 * b + 1)
    src_c = (C - 1 - c) if BGR else c
    v = tl.load(f_ptr + (y0 + o // TW) * sfh + (x0 + o % TW) * sfw + src_c * sfc, mask=m, other=0)
    y = v.to(tl.float32) * scale + lo
    tl.store(out_ptr + bc * TH * TW + o, y.to(out_ptr.dtype.element_ty), mask=m)


@triton.jit
def _postprocess_kernel(y_ptr, out_ptr, C, HW, W, syc, syh, syw, scale, lo, BLOCK: tl.constexpr):
    c = tl.program_id(0)
    o = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    m = o < HW
    v = tl.load(y_ptr + c * syc + (o // W) * syh + (o % W) * syw, mask=m, other=0.0).to(tl.float32)
    q = tl.minimum(tl.maximum((v - lo) * scale, 0.0), 255.0)
    q = tl.floor(q + 0.5)
    tl.store(out_ptr + o * C + c, q.to(tl.uint8), mask=m)


def preprocess(frame: torch.Tensor, *, bgr: bool = False, dtype: torch.dtype = torch.float32,
               lo: float = -1.0, hi: float = 1.0, boxes: list[tuple[int, int]] | None = None,
               tile: tuple[int, int] | None = None) -> torch.Tensor:
    """uint8 (H, W, C) frame -> (B, C, h, w) ``dtype`` in [lo, hi]; ``boxes`` gathers tiles of ``tile``."""
    if frame.dtype != torch.uint8 or frame.dim() != 3:
        raise RuntimeError(f"preprocess expects a uint8 HWC frame, got {frame.dtype} {tuple(frame.shape)}")
    if dtype not in (torch.float16, torch.float32):
        raise RuntimeError(f"preprocess writes fp16 or fp32, not {dtype}")
    H, W, C = frame.shape
    if boxes is None:
        boxes, (th, tw) = [(0, 0)], (H, W)
    else:
        th, tw = tile
        for y, x in boxes:
            if y < 0 or x < 0 or y + th > H or x + tw > W:
                raise RuntimeError(f"tile at ({y}, {x}) of size {th}x{tw} leaves the {H}x{W} frame")
    box_t = torch.tensor(boxes, dtype=torch.int32, device=frame.device).reshape(-1, 2)
    out = torch.empty(len(boxes), C, th, tw, device=frame.device, dtype=dtype)
    block = 1024
    grid = (len(boxes) * C, triton.cdiv(th * tw, block))
    _preprocess_kernel[grid](frame, box_t, out, C, th, tw, *frame.stride(), (hi - lo) / 255.0, lo,
                             BGR=bgr, BLOCK=block, num_warps=4)
    return out


def postprocess(y: torch.Tensor, *, lo: float = -1.0, hi: float = 1.0) -> torch.Tensor:
    """(1, C, H, W) float -> uint8 (H, W, C), rounded and clamped."""
    if y.dim() != 4 or y.shape[0] != 1:
        raise RuntimeError(f"postprocess expects (1, C, H, W), got {tuple(y.shape)}")
    _, C, H, W = y.shape
    out = torch.empty(H, W, C, device=y.device, dtype=torch.uint8)
    block = 1024
    _postprocess_kernel[(C, triton.cdiv(H * W, block))](y, out, C, H * W, W, *y.stride()[1:],
                                                        255.0 / (hi - lo), lo, BLOCK=block, num_warps=4)
    return out
