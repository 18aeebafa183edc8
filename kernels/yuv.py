"""Planar YUV <-> model RGB in one pass each way (Triton): decode's planes in, encode's planes out.

    yuv_to_rgb: Y, U, V planes (uint8, or int16 holding 9-16 bit samples; chroma subsampled by
                2**sh rows and 2**sw columns) -> (1, 3, H, W) float in [lo, hi], in any layout
                (channels-last when the model runs so).
    rgb_to_yuv: (1, 3, H, W) float in [lo, hi] -> Y, U, V planes, every value rounded to the
                nearest code and clamped to the range.

Chroma is placed, rebuilt and subsampled as FFmpeg's swscale does it for the CPU path (its
bilinear filter, exact rounding, full chroma interpolation), so one file gives one picture on
either path. By default a 4:2:0 or 4:2:2 chroma sample sits on the left pixel of its pair (the
"left" location, H.264's and HEVC's default) and 4:2:0 vertically midway between its two rows;
decoding interpolates linearly between the nearest samples as they are sited (``site``: any of
FFmpeg's chroma locations; swscale reads a decoded frame's own), edges repeating. Encoding
averages a pair across and filters rows with weights 1, 3, 3, 1 over the four nearest (edges
repeat), as swscale encodes RGB frames.

The matrix is given by (Kr, Kb) (``MATRICES``: BT.601, BT.709, BT.2020) and the range as limited
(Y 16-235, chroma 16-240 at 8 bits, scaled by 2**(bits-8)) or full (0 .. 2**bits - 1, chroma
centred at 2**(bits-1)), as in ITU-R BT.601/709/2020 and FFmpeg.
Traffic: the planes once (chroma twice), the float image once (1.5 + 6 bytes a pixel at 8-bit
4:2:0, fp16).
"""

import torch
import triton
import triton.language as tl

# chroma locations as FFmpeg names them -> (vertical, horizontal) siting of a sample
SITES = {"left": ("centre", "left"), "center": ("centre", "centre"), "topleft": ("top", "left"),
         "top": ("top", "centre")}
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
def _axis(i, n, SUB: tl.constexpr, CENTRED: tl.constexpr):
    """Chroma index pair and weight of the second along one axis for pixel index ``i``: sample k
    sits at 2k (co-sited) or 2k + 1/2 (centred) in pixels; edges repeat. No subsampling: i itself."""
    if SUB == 0:
        k0 = i
        k1 = i
        f = i.to(tl.float32) * 0.0
    else:
        c = i.to(tl.float32) * 0.5 - (0.25 if CENTRED else 0.0)
        fl = tl.floor(c)
        k0 = tl.maximum(fl.to(tl.int32), 0)
        k1 = tl.minimum(fl.to(tl.int32) + 1, n - 1)
        f = c - fl
    return k0, k1, f


@triton.jit
def _chroma(ptr, stride, h, w, CH, CW, m, SH: tl.constexpr, SW: tl.constexpr, CY: tl.constexpr,
            CX: tl.constexpr):
    """A chroma plane at pixel (h, w): bilinear between the nearest samples, as sited."""
    r0, r1, fy = _axis(h, CH, SH, CY)
    c0, c1, fx = _axis(w, CW, SW, CX)
    value = tl.load(ptr + r0 * stride + c0, mask=m, other=0).to(tl.float32) * (1.0 - fx) + \
        tl.load(ptr + r0 * stride + c1, mask=m, other=0).to(tl.float32) * fx
    if SH != 0:
        below = tl.load(ptr + r1 * stride + c0, mask=m, other=0).to(tl.float32) * (1.0 - fx) + \
            tl.load(ptr + r1 * stride + c1, mask=m, other=0).to(tl.float32) * fx
        value = value * (1.0 - fy) + below * fy
    return value


@triton.jit
def _yuv_to_rgb_kernel(y_ptr, u_ptr, v_ptr, out_ptr, H, W, CH, CW, sy, su, sv, soc, soh, sow, kr, kb, lo, span,
                       SH: tl.constexpr, SW: tl.constexpr, CY: tl.constexpr, CX: tl.constexpr,
                       BITS: tl.constexpr, FULL: tl.constexpr, BLOCK: tl.constexpr):
    o = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = o < H * W
    h = o // W
    w = o % W
    y_off, y_scale, c_mid, c_scale, _ = _levels(BITS, FULL)
    luma = (tl.load(y_ptr + h * sy + w, mask=m, other=0).to(tl.float32) - y_off) / y_scale
    u = _chroma(u_ptr, su, h, w, CH, CW, m, SH, SW, CY, CX)
    v = _chroma(v_ptr, sv, h, w, CH, CW, m, SH, SW, CY, CX)
    pb = (u - c_mid) / c_scale
    pr = (v - c_mid) / c_scale
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
    """One program per BLOCK chroma samples: the luma of the pixels they own, then their chroma
    (a pair's mean across, weights 1, 3, 3, 1 over the four nearest rows down for 4:2:0)."""
    o = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mo = o < CH * CW
    ci = o // CW
    cj = o % CW
    y_off, y_scale, c_mid, c_scale, top = _levels(BITS, FULL)
    kg = 1.0 - kr - kb
    pb = tl.zeros([BLOCK], dtype=tl.float32)
    pr = tl.zeros([BLOCK], dtype=tl.float32)
    for dy in tl.static_range(-SH, 1 + 2 * SH):  # 4:2:0: rows 2k-1 .. 2k+2; else row k alone
        for dx in tl.static_range(1 << SW):
            h = (ci << SH) + dy
            w = (cj << SW) + dx
            hc = tl.minimum(tl.maximum(h, 0), H - 1)  # edges repeat
            wc = tl.minimum(w, W - 1)
            src = x_ptr + hc * sxh + wc * sxw
            r = tl.minimum(tl.maximum((tl.load(src, mask=mo, other=0.0).to(tl.float32) - lo) * inv_span, 0.0), 1.0)
            g = tl.minimum(tl.maximum((tl.load(src + sxc, mask=mo, other=0.0).to(tl.float32) - lo) * inv_span, 0.0),
                           1.0)
            b = tl.minimum(tl.maximum((tl.load(src + 2 * sxc, mask=mo, other=0.0).to(tl.float32) - lo) * inv_span,
                                      0.0), 1.0)
            luma = kr * r + kg * g + kb * b
            if dy >= 0 and dy < (1 << SH):  # a pixel this sample owns: its luma
                m = mo & (h < H) & (w < W)
                code = tl.minimum(tl.maximum(tl.floor(luma * y_scale + y_off + 0.5), 0.0), top)
                tl.store(y_ptr + h * sy + w, code.to(y_ptr.dtype.element_ty), mask=m)
            weight = (1.0 if SH == 0 else (3.0 if dy == 0 or dy == 1 else 1.0) / 8.0) / (1 << SW)
            pb += weight * (b - luma) / (2.0 * (1.0 - kb))
            pr += weight * (r - luma) / (2.0 * (1.0 - kr))
    u = tl.minimum(tl.maximum(tl.floor(pb * c_scale + c_mid + 0.5), 0.0), top)
    v = tl.minimum(tl.maximum(tl.floor(pr * c_scale + c_mid + 0.5), 0.0), top)
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
               dtype: torch.dtype = torch.float16, site: tuple[str, str] = SITES["left"],
               memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """Planes -> (1, 3, H, W) ``dtype`` in [lo, hi]; ``sub`` = (row shift, column shift) of chroma
    (4:2:0 (1, 1), 4:2:2 (0, 1), 4:4:4 (0, 0)); ``site``: where a chroma sample sits among the
    pixels it serves, (rows, columns) each "top"/"left" (on the first) or "centre" (``SITES``).
    Planes are row-major with unit column stride."""
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
        y, u, v, out, H, W, ch, cw, y.stride(0), u.stride(0), v.stride(0), *out.stride()[1:], kr, kb, lo, hi - lo,
        SH=sh, SW=sw, CY=site[0] == "centre", CX=site[1] == "centre", BITS=bits, FULL=full_range, BLOCK=block,
        num_warps=4)
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
