"""Planar YUV <-> model RGB in one pass each way (Triton): decode's planes in, encode's planes out.

    yuv_to_rgb: Y, U, V planes (uint8, or int16 holding 9-16 bit samples; chroma subsampled by
                2**sh rows and 2**sw columns) -> (1, 3, H, W) float in [lo, hi], in any layout
                (channels-last when the model runs so). Chroma is taken from the sample covering
                the pixel (the FFmpeg/MPEG-2 left/top siting of 4:2:0 chroma).
    rgb_to_yuv: (1, 3, H, W) float in [lo, hi] -> Y, U, V planes; chroma is the mean of the
                colour differences of the pixels a sample covers; every value rounded to the
                nearest code and clamped to the range.

The matrix is given by (Kr, Kb) (``MATRICES``: BT.601, BT.709, BT.2020) and the range as limited
(Y 16-235, chroma 16-240 at 8 bits, scaled by 2**(bits-8)) or full (0 .. 2**bits - 1, chroma
centred at 2**(bits-1)), as in ITU-R BT.601/709/2020 and FFmpeg.
Traffic: the planes once, the float image once (1.5 + 6 bytes a pixel at 8-bit 4:2:0, fp16).
"""

import torch
import triton
import triton.language as tl

MATRICES = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722), "bt2020": (0.2627, 0.0593)}


@triton.jit
def _levels(BITS: tl.constexpr, FULL: tl.constexpr):
    """(luma offset, luma scale, chroma centre, chroma scale, max code) for the bit depth and range."""
    s = (1 << BITS) / 256.0
    top = (1 << BITS) - 1.0
    mid = (1 << (BITS - 1)) * 1.0
    if FULL:
        return 0.0, top, mid, top, top
    return 16.0 * s, 219.0 * s, mid, 224.0 * s, top


@triton.jit
def _yuv_to_rgb_kernel(y_ptr, u_ptr, v_ptr, out_ptr, H, W, sy, su, sv, soc, soh, sow, kr, kb, lo, span,
                       SH: tl.constexpr, SW: tl.constexpr, BITS: tl.constexpr, FULL: tl.constexpr,
                       BLOCK: tl.constexpr):
    o = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = o < H * W
    h = o // W
    w = o % W
    y_off, y_scale, c_mid, c_scale, _ = _levels(BITS, FULL)
    luma = (tl.load(y_ptr + h * sy + w, mask=m, other=0).to(tl.float32) - y_off) / y_scale
    ci = (h >> SH)
    cj = (w >> SW)
    pb = (tl.load(u_ptr + ci * su + cj, mask=m, other=0).to(tl.float32) - c_mid) / c_scale
    pr = (tl.load(v_ptr + ci * sv + cj, mask=m, other=0).to(tl.float32) - c_mid) / c_scale
    r = luma + 2.0 * (1.0 - kr) * pr
    b = luma + 2.0 * (1.0 - kb) * pb
    g = (luma - kr * r - kb * b) / (1.0 - kr - kb)
    base = out_ptr + h * soh + w * sow
    r = tl.minimum(tl.maximum(r, 0.0), 1.0) * span + lo
    g = tl.minimum(tl.maximum(g, 0.0), 1.0) * span + lo
    b = tl.minimum(tl.maximum(b, 0.0), 1.0) * span + lo
    ty = out_ptr.dtype.element_ty
    tl.store(base, r.to(ty), mask=m)
    tl.store(base + soc, g.to(ty), mask=m)
    tl.store(base + 2 * soc, b.to(ty), mask=m)


@triton.jit
def _rgb_to_yuv_kernel(x_ptr, y_ptr, u_ptr, v_ptr, H, W, CW, CH, sxc, sxh, sxw, sy, su, sv, kr, kb, lo, inv_span,
                       SH: tl.constexpr, SW: tl.constexpr, BITS: tl.constexpr, FULL: tl.constexpr,
                       BLOCK: tl.constexpr):
    """One program per BLOCK chroma samples: the luma of every pixel they cover, then their chroma."""
    o = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mo = o < CH * CW
    ci = o // CW
    cj = o % CW
    y_off, y_scale, c_mid, c_scale, top = _levels(BITS, FULL)
    kg = 1.0 - kr - kb
    pb = tl.zeros([BLOCK], dtype=tl.float32)
    pr = tl.zeros([BLOCK], dtype=tl.float32)
    n = tl.zeros([BLOCK], dtype=tl.float32)
    for dy in tl.static_range(1 << SH):
        for dx in tl.static_range(1 << SW):
            h = (ci << SH) + dy
            w = (cj << SW) + dx
            m = mo & (h < H) & (w < W)
            src = x_ptr + h * sxh + w * sxw
            r = tl.minimum(tl.maximum((tl.load(src, mask=m, other=0.0).to(tl.float32) - lo) * inv_span, 0.0), 1.0)
            g = tl.minimum(tl.maximum((tl.load(src + sxc, mask=m, other=0.0).to(tl.float32) - lo) * inv_span, 0.0), 1.0)
            b = tl.minimum(tl.maximum((tl.load(src + 2 * sxc, mask=m, other=0.0).to(tl.float32) - lo) * inv_span,
                                      0.0), 1.0)
            luma = kr * r + kg * g + kb * b
            code = tl.minimum(tl.maximum(tl.floor(luma * y_scale + y_off + 0.5), 0.0), top)
            tl.store(y_ptr + h * sy + w, code.to(y_ptr.dtype.element_ty), mask=m)
            pb += tl.where(m, (b - luma) / (2.0 * (1.0 - kb)), 0.0)
            pr += tl.where(m, (r - luma) / (2.0 * (1.0 - kr)), 0.0)
            n += m.to(tl.float32)
    n = tl.maximum(n, 1.0)
    u = tl.minimum(tl.maximum(tl.floor(pb / n * c_scale + c_mid + 0.5), 0.0), top)
    v = tl.minimum(tl.maximum(tl.floor(pr / n * c_scale + c_mid + 0.5), 0.0), top)
    tl.store(u_ptr + ci * su + cj, u.to(u_ptr.dtype.element_ty), mask=mo)
    tl.store(v_ptr + ci * sv + cj, v.to(v_ptr.dtype.element_ty), mask=mo)


def _coefficients(matrix: str) -> tuple[float, float]:
    if matrix not in MATRICES:
        raise RuntimeError(f"unknown YUV matrix {matrix!r}: expected one of {', '.join(MATRICES)}")
    return MATRICES[matrix]


def _plane_dtype(bits: int) -> torch.dtype:
    if not 8 <= bits <= 16:
        raise RuntimeError(f"{bits}-bit samples are not supported (8 to 16)")
    return torch.uint8 if bits == 8 else torch.int16


def yuv_to_rgb(y: torch.Tensor, u: torch.Tensor, v: torch.Tensor, *, matrix: str = "bt709", full_range: bool = False,
               bits: int = 8, sub: tuple[int, int] = (1, 1), lo: float = -1.0, hi: float = 1.0,
               dtype: torch.dtype = torch.float16,
               memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """Planes -> (1, 3, H, W) ``dtype`` in [lo, hi]; ``sub`` = (row shift, column shift) of chroma
    (4:2:0 (1, 1), 4:2:2 (0, 1), 4:4:4 (0, 0)). Planes are row-major with unit column stride."""
    kr, kb = _coefficients(matrix)
    want = _plane_dtype(bits)
    H, W = y.shape
    sh, sw = sub
    ch, cw = -(-H // (1 << sh)), -(-W // (1 << sw))
    for name, p, shape in (("Y", y, (H, W)), ("U", u, (ch, cw)), ("V", v, (ch, cw))):
        if p.dtype != want or tuple(p.shape) != shape or p.stride(1) != 1:
            raise RuntimeError(f"{name} plane: expected {want} {shape} rows of unit stride, got {p.dtype} "
                               f"{tuple(p.shape)} strides {p.stride()}")
    out = torch.empty(1, 3, H, W, device=y.device, dtype=dtype, memory_format=memory_format)
    block = 1024
    _yuv_to_rgb_kernel[(triton.cdiv(H * W, block),)](
        y, u, v, out, H, W, y.stride(0), u.stride(0), v.stride(0), *out.stride()[1:], kr, kb, lo, hi - lo,
        SH=sh, SW=sw, BITS=bits, FULL=full_range, BLOCK=block, num_warps=4)
    return out


def rgb_to_yuv(x: torch.Tensor, *, matrix: str = "bt709", full_range: bool = False, bits: int = 8,
               sub: tuple[int, int] = (1, 1), lo: float = -1.0,
               hi: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(1, 3, H, W) float in [lo, hi] (any layout) -> contiguous (Y, U, V) planes of ``bits``-bit codes."""
    kr, kb = _coefficients(matrix)
    if x.dim() != 4 or x.shape[:2] != (1, 3):
        raise RuntimeError(f"rgb_to_yuv expects (1, 3, H, W), got {tuple(x.shape)}")
    dt = _plane_dtype(bits)
    _, _, H, W = x.shape
    sh, sw = sub
    ch, cw = -(-H // (1 << sh)), -(-W // (1 << sw))
    y = torch.empty(H, W, device=x.device, dtype=dt)
    u = torch.empty(ch, cw, device=x.device, dtype=dt)
    v = torch.empty(ch, cw, device=x.device, dtype=dt)
    block = 512
    _rgb_to_yuv_kernel[(triton.cdiv(ch * cw, block),)](
        x, y, u, v, H, W, cw, ch, *x.stride()[1:], y.stride(0), u.stride(0), v.stride(0), kr, kb, lo,
        1.0 / (hi - lo), SH=sh, SW=sw, BITS=bits, FULL=full_range, BLOCK=block, num_warps=4)
    return y, u, v
