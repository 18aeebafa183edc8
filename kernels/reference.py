"""Pure-torch references for every kernel in this package (the ground truth the tests use).

They are also the CPU path of the product: export-friendly (ONNX / torch.export trace through
them) and free of Triton.
"""

import torch
import torch.nn.functional as F


def instance_norm_stats(x: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-(n, c) mean and 1/sqrt(biased var + eps) over H, W in fp32, centred two-pass."""
    xf = x.float()
    mean = xf.mean(dim=(2, 3))
    var = (xf - mean[:, :, None, None]).square().mean(dim=(2, 3))
    return mean, torch.rsqrt(var + eps)


def instance_norm(x: torch.Tensor, weight: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                  *, eps: float = 1e-5, activation: str | None = None,
                  residual: torch.Tensor | None = None, mean: torch.Tensor | None = None,
                  rstd: torch.Tensor | None = None, pad: int = 0) -> torch.Tensor:
    """y = act((x - mean) * rstd * weight + bias) + residual, optionally reflect-padded by ``pad``.

    ``mean``/``rstd`` of shape (N, C) or (1, C) replace the computed statistics.
    """
    if (mean is None) != (rstd is None):
        raise ValueError("give both mean and rstd, or neither")
    if mean is None:
        mean, rstd = instance_norm_stats(x, eps)
    y = (x.float() - mean.float()[:, :, None, None]) * rstd.float()[:, :, None, None]
    if weight is not None:
        y = y * weight.float()[None, :, None, None]
    if bias is not None:
        y = y + bias.float()[None, :, None, None]
    if activation == "relu":
        y = torch.relu(y)
    elif activation is not None:
        raise ValueError(f"unknown activation {activation!r}")
    if residual is not None:
        y = y + residual.float()
    if pad:
        y = F.pad(y, (pad, pad, pad, pad), mode="reflect")
    return y.to(x.dtype)


def preprocess(frame: torch.Tensor, *, bgr: bool = False, dtype: torch.dtype = torch.float32,
               lo: float = -1.0, hi: float = 1.0, boxes: list[tuple[int, int]] | None = None,
               tile: tuple[int, int] | None = None) -> torch.Tensor:
    """uint8 HWC frame -> (B, 3, h, w) in [lo, hi]; with ``boxes`` (y, x) gathers tiles of size ``tile``."""
    if bgr:
        frame = frame.flip(-1)
    chw = frame.permute(2, 0, 1)
    if boxes is None:
        crops = chw[None]
    else:
        th, tw = tile
        crops = torch.stack([chw[:, y:y + th, x:x + tw] for y, x in boxes])
    return (crops.float() * ((hi - lo) / 255.0) + lo).to(dtype)


def postprocess(y: torch.Tensor, *, lo: float = -1.0, hi: float = 1.0) -> torch.Tensor:
    """(1, 3, H, W) in [lo, hi] -> uint8 HWC, rounded to nearest and clamped."""
    v = (y[0].float() - lo) * (255.0 / (hi - lo))
    return v.clamp(0, 255).round().to(torch.uint8).permute(1, 2, 0).contiguous()


def blend_tiles(tiles: torch.Tensor, window: torch.Tensor, boxes: list[tuple[int, int]],
                height: int, width: int, *, lo: float = -1.0, hi: float = 1.0) -> torch.Tensor:
    """Weighted accumulate (B, 3, th, tw) tiles with per-tile windows (B, th, tw) -> uint8 HWC frame."""
    acc = torch.zeros(tiles.shape[1], height, width, dtype=torch.float32, device=tiles.device)
    wsum = torch.zeros(height, width, dtype=torch.float32, device=tiles.device)
    th, tw = tiles.shape[-2:]
    for t, (y, x) in enumerate(boxes):
        w = window[t].float()
        acc[:, y:y + th, x:x + tw] += tiles[t].float() * w
        wsum[y:y + th, x:x + tw] += w
    return postprocess((acc / wsum)[None], lo=lo, hi=hi)


# (Kr, Kb) as the standards give them (ITU-R BT.601-7, BT.709-6 item 3.2, BT.2020-2 table 4), kept
# here rather than taken from kernels/yuv.py, so that the kernels' own table is checked against them
KR_KB = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722), "bt2020": (0.2627, 0.0593)}


def _yuv_levels(bits: int, full: bool) -> tuple[float, float, float, float, float]:
    s, top, mid = 2.0 ** (bits - 8), 2.0 ** bits - 1, 2.0 ** (bits - 1)
    return (0.0, top, mid, top, top) if full else (16 * s, 219 * s, mid, 224 * s, top)


def yuv_to_rgb(y, u, v, *, matrix="bt709", full_range=False, bits=8, sub=(1, 1), lo=-1.0, hi=1.0,
               dtype=torch.float32, site=("centre", "left"), memory_format=torch.contiguous_format):
    """kernels.yuv.yuv_to_rgb in float64 torch (chroma interpolated linearly between the nearest
    samples, each at 2k, or 2k + 1/2 where ``site`` says "centre", pixels along a subsampled axis)."""
    kr, kb = KR_KB[matrix]
    yo, ys, cm, cs, _ = _yuv_levels(bits, full_range)
    H, W = y.shape

    def axis(p, dim, n, shift, centred):
        if not shift:
            return p
        c = torch.arange(n, dtype=torch.float64) / 2 - (0.25 if centred else 0.0)
        k0 = torch.floor(c)
        f = (c - k0).reshape([-1, 1] if dim == 0 else [1, -1])
        k0 = k0.long()
        last = p.shape[dim] - 1
        return p.index_select(dim, k0.clamp(0, last)) * (1 - f) + p.index_select(dim, (k0 + 1).clamp(0, last)) * f

    def up(p):
        return axis(axis(p.double(), 0, H, sub[0], site[0] == "centre"), 1, W, sub[1], site[1] == "centre")
    luma, pb, pr = (y.double() - yo) / ys, (up(u) - cm) / cs, (up(v) - cm) / cs
    r = luma + 2 * (1 - kr) * pr
    b = luma + 2 * (1 - kb) * pb
    g = (luma - kr * r - kb * b) / (1 - kr - kb)
    rgb = torch.stack([r, g, b]).clamp(0, 1)[None] * (hi - lo) + lo
    return rgb.to(dtype).contiguous(memory_format=memory_format)


def rgb_to_yuv(x, *, matrix="bt709", full_range=False, bits=8, sub=(1, 1), lo=-1.0, hi=1.0):
    """kernels.yuv.rgb_to_yuv in float64 torch (chroma: a pair's mean across; 4:2:0 rows weighted
    1, 3, 3, 1 over the four nearest; edges repeat)."""
    kr, kb = KR_KB[matrix]
    yo, ys, cm, cs, top = _yuv_levels(bits, full_range)
    r, g, b = ((x[0].double() - lo) / (hi - lo)).clamp(0, 1)
    luma = kr * r + (1 - kr - kb) * g + kb * b
    dt = torch.uint8 if bits == 8 else torch.int16

    def pool(t):
        H, W = t.shape
        if sub[1]:
            t = F.pad(t[None, None], (0, W % 2, 0, 0), mode="replicate")[0, 0]
            t = (t[:, 0::2] + t[:, 1::2]) / 2
        if sub[0]:
            t = F.pad(t[None, None], (0, 0, 1, 1 + H % 2), mode="replicate")[0, 0]
            t = (t[0:-3:2] + 3 * t[1:-2:2] + 3 * t[2:-1:2] + t[3::2]) / 8
        return t
    pb, pr = pool((b - luma) / (2 * (1 - kb))), pool((r - luma) / (2 * (1 - kr)))
    q = lambda t, off, sc: torch.floor(t * sc + off + 0.5).clamp(0, top).to(dt)  # noqa: E731
    return q(luma, yo, ys), q(pb, cm, cs), q(pr, cm, cs)
