"""Fused instance normalisation for NCHW tensors (Triton); channels-last input goes to ``norm_nhwc``.

    y[n,c] = act((x[n,c] - mean[n,c]) * rstd[n,c] * weight[c] + bias[c]) + residual[n,c]
    out    = reflect_pad(y, pad)                      (optional: ready for the next 3x3/7x7 conv)

Statistics are fp32 for fp16/bf16/fp32 inputs, centred two-pass (sum of (x - mean)^2, never
E[x^2] - E[x]^2). Planes of at most SINGLE_READ_LIMIT elements are handled by one program per
(n, c) that reads the plane once into registers (the apply reuses them when pad == 0). Mid-sized
planes, when there are enough of them to fill the GPU, get one program each that loops over the
plane (statistics of each chunk merged with Chan's formula, then the apply re-reads the plane
from L2). Other large planes use a split reduction: per-chunk (count, mean, M2) partials read
once, merged with Chan's formula, then a parallel apply. ``mean``/``rstd`` given from outside skip the statistics.

Memory traffic: one read of x (+ one of the residual) and one write of the output, plus, on the
split path, one more read of x per chunk (usually from L2).
"""

import torch
import triton
import triton.language as tl

from .norm_nhwc import instance_norm_nhwc, instance_norm_stats_nhwc, is_channels_last

SINGLE_READ_LIMIT = 16384
SPLIT_CHUNK = 8192
PLANE_LOOP_LIMIT = 1 << 16  # planes up to 64K elements: one looping program per plane


def plane_loop(planes: int, plane_size: int, device: torch.device) -> bool:
    """Loop over a plane in one program when there are enough planes to fill the GPU and the
    planes in flight fit in L2 (the apply pass then re-reads from L2, not HBM)."""
    if device.type != "cuda":
        return plane_size <= PLANE_LOOP_LIMIT
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    return planes >= sms and plane_size <= PLANE_LOOP_LIMIT


@triton.jit
def _reflect(i, n):
    i = tl.abs(i)
    return tl.where(i >= n, 2 * (n - 1) - i, i)


@triton.jit
def _affine(w_ptr, b_ptr, c, HAS_AFFINE: tl.constexpr):
    w_c = 1.0
    b_c = 0.0
    if HAS_AFFINE:
        w_c = tl.load(w_ptr + c).to(tl.float32)
        b_c = tl.load(b_ptr + c).to(tl.float32)
    return w_c, b_c


@triton.jit
def _apply_plane(xb, rb, ob, mean, rstd, w_c, b_c, H, W, PAD, sxh, sxw, srh, srw,
                 BLOCK: tl.constexpr, HAS_RES: tl.constexpr, RELU: tl.constexpr):
    """Normalise one plane into its reflect-padded output, BLOCK output elements at a time."""
    OH = H + 2 * PAD
    OW = W + 2 * PAD
    for start in range(0, OH * OW, BLOCK):
        o = start + tl.arange(0, BLOCK)
        mo = o < OH * OW
        ih = _reflect(o // OW - PAD, H)
        iw = _reflect(o % OW - PAD, W)
        y = (tl.load(xb + ih * sxh + iw * sxw, mask=mo, other=0.0).to(tl.float32) - mean) * rstd * w_c + b_c
        if RELU:
            y = tl.maximum(y, 0.0)
        if HAS_RES:
            y += tl.load(rb + ih * srh + iw * srw, mask=mo, other=0.0).to(tl.float32)
        tl.store(ob + o, y.to(ob.dtype.element_ty), mask=mo)


@triton.jit
def _plane_kernel(x_ptr, out_ptr, w_ptr, b_ptr, res_ptr, mean_ptr, rstd_ptr,
                  C, H, W, PAD, eps,
                  sxn, sxc, sxh, sxw, srn, src, srh, srw,
                  BLOCK: tl.constexpr, GIVEN: tl.constexpr, HAS_AFFINE: tl.constexpr,
                  HAS_RES: tl.constexpr, RELU: tl.constexpr, PADDED: tl.constexpr):
    """One program per (n, c): the whole plane in registers (HW <= BLOCK)."""
    pid = tl.program_id(0)
    n = pid // C
    c = pid % C
    HW = H * W
    idx = tl.arange(0, BLOCK)
    m = idx < HW
    h = idx // W
    w = idx % W
    xb = x_ptr + n * sxn + c * sxc
    x = tl.load(xb + h * sxh + w * sxw, mask=m, other=0.0).to(tl.float32)
    if GIVEN:
        mean = tl.load(mean_ptr + pid)
        rstd = tl.load(rstd_ptr + pid)
    else:
        mean = tl.sum(x, axis=0) / HW
        d = tl.where(m, x - mean, 0.0)
        rstd = 1.0 / tl.sqrt(tl.sum(d * d, axis=0) / HW + eps)
    w_c, b_c = _affine(w_ptr, b_ptr, c, HAS_AFFINE)
    ob = out_ptr + pid * (H + 2 * PAD) * (W + 2 * PAD)
    if PADDED:
        _apply_plane(xb, res_ptr + n * srn + c * src, ob, mean, rstd, w_c, b_c, H, W, PAD, sxh, sxw, srh, srw,
                     BLOCK, HAS_RES, RELU)
    else:
        y = (x - mean) * rstd * w_c + b_c
        if RELU:
            y = tl.maximum(y, 0.0)
        if HAS_RES:
            y += tl.load(res_ptr + n * srn + c * src + h * srh + w * srw, mask=m, other=0.0).to(tl.float32)
        tl.store(ob + idx, y.to(out_ptr.dtype.element_ty), mask=m)


@triton.jit
def _partial_stats_kernel(x_ptr, part_ptr, C, H, W, S, sxn, sxc, sxh, sxw, CHUNK: tl.constexpr,
                          CONTIG: tl.constexpr):
    """Grid (N*C, S): (count, mean, M2) of one CHUNK-element piece of a plane, read once into
    registers, centred two-pass on the registers. CONTIG: the plane is dense, so addresses are
    linear (vectorised loads)."""
    pid = tl.program_id(0)
    sid = tl.program_id(1)
    n = pid // C
    c = pid % C
    HW = H * W
    i = sid * CHUNK + tl.arange(0, CHUNK)
    m = i < HW
    if CONTIG:
        src = x_ptr + n * sxn + c * sxc + i
    else:
        src = x_ptr + n * sxn + c * sxc + (i // W) * sxh + (i % W) * sxw
    v = tl.load(src, mask=m, other=0.0).to(tl.float32)
    cnt = tl.minimum(CHUNK, HW - sid * CHUNK).to(tl.float32)
    mean = tl.sum(v, axis=0) / cnt
    d = tl.where(m, v - mean, 0.0)
    pb = part_ptr + (pid * S + sid) * 3
    tl.store(pb, cnt)
    tl.store(pb + 1, mean)
    tl.store(pb + 2, tl.sum(d * d, axis=0))


@triton.jit
def _plane_loop_kernel(x_ptr, out_ptr, w_ptr, b_ptr, res_ptr, C, H, W, PAD, eps,
                       sxn, sxc, sxh, sxw, srn, src, srh, srw,
                       BLOCK: tl.constexpr, HAS_AFFINE: tl.constexpr, HAS_RES: tl.constexpr,
                       RELU: tl.constexpr):
    """One program per (n, c) for mid-sized planes: statistics over BLOCK chunks merged with Chan's
    formula (each chunk read once), then the apply pass re-reads the plane while it is still in L2."""
    pid = tl.program_id(0)
    n = pid // C
    c = pid % C
    HW = H * W
    xb = x_ptr + n * sxn + c * sxc
    idx = tl.arange(0, BLOCK)
    mean = 0.0
    m2 = 0.0
    count = 0.0
    for start in range(0, HW, BLOCK):
        i = start + idx
        m = i < HW
        v = tl.load(xb + (i // W) * sxh + (i % W) * sxw, mask=m, other=0.0).to(tl.float32)
        nb = tl.minimum(BLOCK, HW - start).to(tl.float32)
        mb = tl.sum(v, axis=0) / nb
        d = tl.where(m, v - mb, 0.0)
        m2b = tl.sum(d * d, axis=0)
        tot = count + nb
        delta = mb - mean
        mean = mean + delta * nb / tot
        m2 = m2 + m2b + delta * delta * count * nb / tot
        count = tot
    rstd = 1.0 / tl.sqrt(m2 / count + eps)
    w_c, b_c = _affine(w_ptr, b_ptr, c, HAS_AFFINE)
    _apply_plane(xb, res_ptr + n * srn + c * src, out_ptr + pid * (H + 2 * PAD) * (W + 2 * PAD), mean, rstd,
                 w_c, b_c, H, W, PAD, sxh, sxw, srh, srw, BLOCK, HAS_RES, RELU)


@triton.jit
def _merge_stats_kernel(part_ptr, mean_ptr, rstd_ptr, S, eps, BLOCK_S: tl.constexpr):
    """Chan's parallel merge of a plane's S partials -> mean, rstd."""
    pid = tl.program_id(0)
    s = tl.arange(0, BLOCK_S)
    m = s < S
    pb = part_ptr + (pid * S + s) * 3
    cnt = tl.load(pb, mask=m, other=0.0)
    mu = tl.load(pb + 1, mask=m, other=0.0)
    m2 = tl.load(pb + 2, mask=m, other=0.0)
    total = tl.sum(cnt, axis=0)
    mean = tl.sum(cnt * mu, axis=0) / total
    d = tl.where(m, mu - mean, 0.0)
    var = (tl.sum(m2, axis=0) + tl.sum(cnt * d * d, axis=0)) / total
    tl.store(mean_ptr + pid, mean)
    tl.store(rstd_ptr + pid, 1.0 / tl.sqrt(var + eps))


@triton.jit
def _apply_kernel(x_ptr, out_ptr, w_ptr, b_ptr, res_ptr, mean_ptr, rstd_ptr,
                  C, H, W, PAD, sxn, sxc, sxh, sxw, srn, src, srh, srw,
                  BH: tl.constexpr, BW: tl.constexpr, HAS_AFFINE: tl.constexpr, HAS_RES: tl.constexpr,
                  RELU: tl.constexpr):
    """Grid (N*C, cdiv(OH, BH)): BH whole output rows per program; the reflected source row and
    column indices are computed once per row / column, and each row is stored contiguously."""
    pid = tl.program_id(0)
    n = pid // C
    c = pid % C
    OH = H + 2 * PAD
    OW = W + 2 * PAD
    rows = tl.program_id(1) * BH + tl.arange(0, BH)
    cols = tl.arange(0, BW)
    m = (rows < OH)[:, None] & (cols < OW)[None, :]
    ih = _reflect(rows - PAD, H)[:, None]
    iw = _reflect(cols - PAD, W)[None, :]
    v = tl.load(x_ptr + n * sxn + c * sxc + ih * sxh + iw * sxw, mask=m, other=0.0).to(tl.float32)
    w_c, b_c = _affine(w_ptr, b_ptr, c, HAS_AFFINE)
    y = (v - tl.load(mean_ptr + pid)) * tl.load(rstd_ptr + pid) * w_c + b_c
    if RELU:
        y = tl.maximum(y, 0.0)
    if HAS_RES:
        y += tl.load(res_ptr + n * srn + c * src + ih * srh + iw * srw, mask=m, other=0.0).to(tl.float32)
    tl.store(out_ptr + pid * OH * OW + rows[:, None] * OW + cols[None, :], y.to(out_ptr.dtype.element_ty), mask=m)


def _check(x: torch.Tensor, pad: int) -> None:
    if x.dim() != 4:
        raise RuntimeError(f"instance_norm expects NCHW, got shape {tuple(x.shape)}")
    if x.dtype not in (torch.float16, torch.bfloat16, torch.float32):
        raise RuntimeError(f"instance_norm supports fp16/bf16/fp32, not {x.dtype}")
    if pad < 0 or (pad and (pad >= x.shape[2] or pad >= x.shape[3])):
        raise RuntimeError(f"reflect pad {pad} needs 0 <= pad < H and W ({x.shape[2]}x{x.shape[3]})")
    if x.numel() == 0:
        raise RuntimeError("instance_norm of an empty tensor")


def _split_stats(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    N, C, H, W = x.shape
    HW = H * W
    S = triton.cdiv(HW, SPLIT_CHUNK)
    part = torch.empty(N * C, S, 3, device=x.device, dtype=torch.float32)
    contig = x.stride(3) == 1 and x.stride(2) == W
    _partial_stats_kernel[(N * C, S)](x, part, C, H, W, S, *x.stride(), CHUNK=SPLIT_CHUNK, CONTIG=contig,
                                      num_warps=8)
    mean = torch.empty(N, C, device=x.device, dtype=torch.float32)
    rstd = torch.empty_like(mean)
    _merge_stats_kernel[(N * C,)](part, mean, rstd, S, eps, BLOCK_S=max(triton.next_power_of_2(S), 2))
    return mean, rstd


def instance_norm_stats(x: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-(n, c) fp32 mean and rstd of an NCHW tensor (the statistics-only variant)."""
    _check(x, 0)
    if is_channels_last(x):
        return instance_norm_stats_nhwc(x, eps)
    return _split_stats(x, eps)


def instance_norm(x: torch.Tensor, weight: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                  *, eps: float = 1e-5, activation: str | None = None, residual: torch.Tensor | None = None,
                  mean: torch.Tensor | None = None, rstd: torch.Tensor | None = None,
                  pad: int = 0) -> torch.Tensor:
    """Fused instance norm (+ReLU, +residual, +reflect pad); see the module docstring.

    Returns a (N, C, H + 2 pad, W + 2 pad) tensor of x's dtype in x's layout: contiguous, or
    channels-last when x is stored channels-last (``kernels.norm_nhwc``).
    """
    _check(x, pad)
    if activation not in (None, "relu"):
        raise RuntimeError(f"unsupported activation {activation!r}")
    if (mean is None) != (rstd is None):
        raise RuntimeError("give both mean and rstd, or neither")
    if (weight is None) != (bias is None):
        raise RuntimeError("give both weight and bias, or neither")
    N, C, H, W = x.shape
    if residual is not None and residual.shape != x.shape:
        raise RuntimeError(f"residual shape {tuple(residual.shape)} != input shape {tuple(x.shape)}")
    if mean is not None:
        mean = mean.float().expand(N, C).contiguous()
        rstd = rstd.float().expand(N, C).contiguous()
    if is_channels_last(x):
        return instance_norm_nhwc(x, weight, bias, eps=eps, relu=activation == "relu", residual=residual,
                                  mean=mean, rstd=rstd, pad=pad)
    out = torch.empty(N, C, H + 2 * pad, W + 2 * pad, device=x.device, dtype=x.dtype)
    res = residual if residual is not None else x
    wt = weight if weight is not None else x
    bs = bias if bias is not None else x
    flags = dict(HAS_AFFINE=weight is not None, HAS_RES=residual is not None, RELU=activation == "relu")
    HW = H * W
    if HW <= SINGLE_READ_LIMIT:
        block = max(triton.next_power_of_2(HW), 16)
        _plane_kernel[(N * C,)](x, out, wt, bs, res, mean if mean is not None else x,
                                rstd if rstd is not None else x, C, H, W, pad, eps,
                                *x.stride(), *res.stride(), BLOCK=block, GIVEN=mean is not None,
                                PADDED=pad > 0, num_warps=min(16, max(1, block // 512)), **flags)
        return out
    if mean is None and plane_loop(N * C, HW, x.device):
        _plane_loop_kernel[(N * C,)](x, out, wt, bs, res, C, H, W, pad, eps, *x.stride(), *res.stride(),
                                     BLOCK=4096, num_warps=8, **flags)
        return out
    if mean is None:
        mean, rstd = _split_stats(x, eps)
    bw = max(triton.next_power_of_2(W + 2 * pad), 16)
    bh = max(1, 4096 // bw)
    grid = (N * C, triton.cdiv(H + 2 * pad, bh))
    _apply_kernel[grid](x, out, wt, bs, res, mean, rstd, C, H, W, pad, *x.stride(), *res.stride(),
                        BH=bh, BW=bw, num_warps=8 if bh * bw >= 4096 else 4, **flags)
    return out
