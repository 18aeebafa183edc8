"""Fused instance normalisation for channels-last (NHWC) tensors (Triton).

Same op as ``kernels.norm`` (statistics, affine, ReLU, residual, reflect pad written into the
next convolution's input, given statistics), for activations stored channels-last, so that a
generator's convolutions run as cuDNN's NHWC tensor-core kernels from end to end with no layout
change between layers. The output is channels-last as well.

Every program works on a [BLOCK_HW positions x BLOCK_C channels] tile: a row of the tile is
BLOCK_C contiguous channels (coalesced, one 64-128 byte segment in fp16), and the statistics of
the BLOCK_C channels are reduced over the tile's rows. Statistics are fp32 and centred (per-tile
mean and M2 of x minus the channel's first element, merged with Chan's formula), never
E[x^2] - E[x]^2.

Two schedules:

* loop (one program per (n, channel block), statistics then apply in two sweeps over the
  plane group): used when there are at least as many (n, channel block) pairs as SMs, or the
  whole tensor fits in half of L2, so the apply sweep re-reads from L2.
* split (three launches: per-tile partials, merge, apply, each with a full grid): used otherwise.
  Residual-block activations of a 1080p ResNet (1 x 256 x 270 x 480, 66 MB in fp16) are larger
  than the H100's 50 MB L2, so the apply sweep of a single split pass would re-read most of the
  tensor from HBM. The split path therefore walks the channels in *groups* whose bytes fit in a
  third of L2 (``l2_group``: 32 channels = 8.3 MB for that tensor): partials, merge and apply run
  for one group before the next group is read, so the second read of every element is an L2 hit.
  Each row of a group is still a whole number of 32-byte sectors, so the first read costs no
  more than a dense read. This schedule was chosen from the L2 size and the traffic count above;
  bench/bench_kernels.py measures it against copy bandwidth and torch.compile on a GPU (the
  development machine of this module had none: see bench/results for the figures once taken).

Block sizes (BLOCK_HW, BLOCK_C, warps) are picked per shape by ``kernels.tuning`` on CUDA (timed
once, cached on disk) and fixed defaults elsewhere (the interpreter).
"""

import torch
import triton
import triton.language as tl

from .tuning import tuned

LOOP_PLANE_LIMIT = 1 << 16  # off CUDA: planes up to 64K positions take the loop schedule
L2_FRACTION = 3  # a channel group's bytes <= L2 / L2_FRACTION


@triton.jit
def _reflect(i, n):
    i = tl.abs(i)
    return tl.where(i >= n, 2 * (n - 1) - i, i)


@triton.jit
def _pivot(x_ptr, n, cs, mc, sxn, sxc):
    """Each channel's first element: statistics accumulate x - pivot, so means far from zero
    (|mean| >> std) lose no precision in the fp32 sums and Chan merges."""
    return tl.load(x_ptr + n * sxn + cs * sxc, mask=mc, other=0.0).to(tl.float32)


@triton.jit
def _scale_shift(w_ptr, b_ptr, cs, mc, mean, rstd, HAS_AFFINE: tl.constexpr):
    """Per-channel y = x * scale + shift for the normalisation (and affine) of channels ``cs``."""
    scale = rstd
    shift = -mean * rstd
    if HAS_AFFINE:
        w = tl.load(w_ptr + cs, mask=mc, other=1.0).to(tl.float32)
        b = tl.load(b_ptr + cs, mask=mc, other=0.0).to(tl.float32)
        scale = rstd * w
        shift = b - mean * scale
    return scale, shift


@triton.jit
def _apply_tile(x_ptr, out_ptr, res_ptr, n, cs, mc, o, OH, OW, H, W, PAD, scale, shift,
                sxn, sxc, sxh, sxw, srn, src, srh, srw, son, soc, soh, sow,
                HAS_RES: tl.constexpr, RELU: tl.constexpr):
    """Normalise the output positions ``o`` (of the padded plane) for channels ``cs``."""
    mo = o < OH * OW
    oh = o // OW
    ow = o % OW
    ih = _reflect(oh - PAD, H)[:, None]
    iw = _reflect(ow - PAD, W)[:, None]
    m = mo[:, None] & mc[None, :]
    c2 = cs[None, :]
    v = tl.load(x_ptr + n * sxn + ih * sxh + iw * sxw + c2 * sxc, mask=m, other=0.0).to(tl.float32)
    y = v * scale[None, :] + shift[None, :]
    if RELU:
        y = tl.maximum(y, 0.0)
    if HAS_RES:
        y += tl.load(res_ptr + n * srn + ih * srh + iw * srw + c2 * src, mask=m, other=0.0).to(tl.float32)
    tl.store(out_ptr + n * son + oh[:, None] * soh + ow[:, None] * sow + c2 * soc,
             y.to(out_ptr.dtype.element_ty), mask=m)


@triton.jit
def _loop_kernel(x_ptr, out_ptr, w_ptr, b_ptr, res_ptr, mean_ptr, rstd_ptr, C, H, W, PAD, eps,
                 sxn, sxc, sxh, sxw, srn, src, srh, srw, son, soc, soh, sow,
                 BLOCK_HW: tl.constexpr, BLOCK_C: tl.constexpr, GIVEN: tl.constexpr, APPLY: tl.constexpr,
                 HAS_AFFINE: tl.constexpr, HAS_RES: tl.constexpr, RELU: tl.constexpr):
    """One program per (n, channel block): statistics sweep (Chan-merged tiles), then apply sweep.
    APPLY == False: statistics only (stored to mean_ptr/rstd_ptr)."""
    pid = tl.program_id(0)
    cb = tl.cdiv(C, BLOCK_C)
    n = pid // cb
    cs = (pid % cb) * BLOCK_C + tl.arange(0, BLOCK_C)
    mc = cs < C
    HW = H * W
    r = tl.arange(0, BLOCK_HW)
    if GIVEN:
        mean = tl.load(mean_ptr + n * C + cs, mask=mc, other=0.0)
        rstd = tl.load(rstd_ptr + n * C + cs, mask=mc, other=1.0)
    else:
        pivot = _pivot(x_ptr, n, cs, mc, sxn, sxc)
        mean = tl.zeros([BLOCK_C], dtype=tl.float32)
        m2 = tl.zeros([BLOCK_C], dtype=tl.float32)
        count = 0.0
        for start in range(0, HW, BLOCK_HW):
            i = start + r
            m = (i < HW)[:, None] & mc[None, :]
            v = tl.load(x_ptr + n * sxn + (i // W)[:, None] * sxh + (i % W)[:, None] * sxw + cs[None, :] * sxc,
                        mask=m, other=0.0).to(tl.float32)
            v = tl.where(m, v - pivot[None, :], 0.0)
            nb = tl.minimum(BLOCK_HW, HW - start).to(tl.float32)
            mb = tl.sum(v, axis=0) / nb
            d = tl.where(m, v - mb[None, :], 0.0)
            m2b = tl.sum(d * d, axis=0)
            tot = count + nb
            delta = mb - mean
            mean = mean + delta * (nb / tot)
            m2 = m2 + m2b + delta * delta * (count * nb / tot)
            count = tot
        rstd = 1.0 / tl.sqrt(m2 / count + eps)
        mean += pivot
        if not APPLY:
            tl.store(mean_ptr + n * C + cs, mean, mask=mc)
            tl.store(rstd_ptr + n * C + cs, rstd, mask=mc)
    if APPLY:
        scale, shift = _scale_shift(w_ptr, b_ptr, cs, mc, mean, rstd, HAS_AFFINE)
        OH = H + 2 * PAD
        OW = W + 2 * PAD
        for start in range(0, OH * OW, BLOCK_HW):
            _apply_tile(x_ptr, out_ptr, res_ptr, n, cs, mc, start + r, OH, OW, H, W, PAD, scale, shift,
                        sxn, sxc, sxh, sxw, srn, src, srh, srw, son, soc, soh, sow, HAS_RES, RELU)


@triton.jit
def _group_block(pid, C, c0, CG, BLOCK_C: tl.constexpr):
    """Program ``pid`` of a channel group [c0, c0 + CG): its image n, channels cs and their mask."""
    cb = tl.cdiv(CG, BLOCK_C)
    cs = c0 + (pid % cb) * BLOCK_C + tl.arange(0, BLOCK_C)
    return pid // cb, cs, (cs < c0 + CG) & (cs < C)


@triton.jit
def _partial_kernel(x_ptr, part_ptr, N, C, H, W, S, c0, CG, sxn, sxc, sxh, sxw,
                    BLOCK_HW: tl.constexpr, BLOCK_C: tl.constexpr):
    """Grid (N * blocks of the group's CG channels, S): per-channel mean and M2 of one tile of
    BLOCK_HW positions, stored at part[0|1, n, s, c]."""
    pid = tl.program_id(0)
    s = tl.program_id(1)
    n, cs, mc = _group_block(pid, C, c0, CG, BLOCK_C)
    HW = H * W
    i = s * BLOCK_HW + tl.arange(0, BLOCK_HW)
    m = (i < HW)[:, None] & mc[None, :]
    v = tl.load(x_ptr + n * sxn + (i // W)[:, None] * sxh + (i % W)[:, None] * sxw + cs[None, :] * sxc,
                mask=m, other=0.0).to(tl.float32)
    v = tl.where(m, v - _pivot(x_ptr, n, cs, mc, sxn, sxc)[None, :], 0.0)
    nb = tl.minimum(BLOCK_HW, HW - s * BLOCK_HW).to(tl.float32)
    mean = tl.sum(v, axis=0) / nb
    d = tl.where(m, v - mean[None, :], 0.0)
    base = (n * S + s) * C + cs
    tl.store(part_ptr + base, mean, mask=mc)
    tl.store(part_ptr + N * S * C + base, tl.sum(d * d, axis=0), mask=mc)


@triton.jit
def _merge_kernel(x_ptr, part_ptr, mean_ptr, rstd_ptr, N, C, H, W, S, c0, CG, eps, sxn, sxc,
                  BLOCK_HW: tl.constexpr, BLOCK_S: tl.constexpr, BLOCK_C: tl.constexpr):
    """Grid (N * blocks of the group's channels): Chan's merge of the S partials of each channel,
    BLOCK_S partials at a time."""
    pid = tl.program_id(0)
    n, cs, mc = _group_block(pid, C, c0, CG, BLOCK_C)
    HW = H * W
    mean = tl.zeros([BLOCK_C], dtype=tl.float32)
    m2 = tl.zeros([BLOCK_C], dtype=tl.float32)
    count = 0.0
    for start in range(0, S, BLOCK_S):
        s = start + tl.arange(0, BLOCK_S)
        ms = s < S
        cnt = tl.where(ms, tl.minimum(BLOCK_HW, HW - s * BLOCK_HW), 0).to(tl.float32)
        m = ms[:, None] & mc[None, :]
        base = (n * S + s)[:, None] * C + cs[None, :]
        mu = tl.load(part_ptr + base, mask=m, other=0.0)
        q = tl.load(part_ptr + N * S * C + base, mask=m, other=0.0)
        nb = tl.sum(cnt, axis=0)
        mb = tl.sum(cnt[:, None] * mu, axis=0) / nb
        d = tl.where(m, mu - mb[None, :], 0.0)
        m2b = tl.sum(q, axis=0) + tl.sum(cnt[:, None] * d * d, axis=0)
        tot = count + nb
        delta = mb - mean
        mean = mean + delta * (nb / tot)
        m2 = m2 + m2b + delta * delta * (count * nb / tot)
        count = tot
    tl.store(mean_ptr + n * C + cs, mean + _pivot(x_ptr, n, cs, mc, sxn, sxc), mask=mc)
    tl.store(rstd_ptr + n * C + cs, 1.0 / tl.sqrt(m2 / count + eps), mask=mc)


@triton.jit
def _apply_kernel(x_ptr, out_ptr, w_ptr, b_ptr, res_ptr, mean_ptr, rstd_ptr, C, H, W, PAD, c0, CG,
                  sxn, sxc, sxh, sxw, srn, src, srh, srw, son, soc, soh, sow,
                  BLOCK_HW: tl.constexpr, BLOCK_C: tl.constexpr, HAS_AFFINE: tl.constexpr,
                  HAS_RES: tl.constexpr, RELU: tl.constexpr):
    """Grid (N * blocks of the group's channels, output tiles): the apply with given statistics."""
    pid = tl.program_id(0)
    n, cs, mc = _group_block(pid, C, c0, CG, BLOCK_C)
    mean = tl.load(mean_ptr + n * C + cs, mask=mc, other=0.0)
    rstd = tl.load(rstd_ptr + n * C + cs, mask=mc, other=1.0)
    scale, shift = _scale_shift(w_ptr, b_ptr, cs, mc, mean, rstd, HAS_AFFINE)
    o = tl.program_id(1) * BLOCK_HW + tl.arange(0, BLOCK_HW)
    _apply_tile(x_ptr, out_ptr, res_ptr, n, cs, mc, o, H + 2 * PAD, W + 2 * PAD, H, W, PAD, scale, shift,
                sxn, sxc, sxh, sxw, srn, src, srh, srw, son, soc, soh, sow, HAS_RES, RELU)


def is_channels_last(x: torch.Tensor) -> bool:
    """Stored channels-last with more than one channel (the layout these kernels are for)."""
    return x.dim() == 4 and x.shape[1] > 1 and x.stride(1) == 1 and not x.is_contiguous()


def _on_gpu(x: torch.Tensor) -> bool:
    return x.device.type == "cuda"


def use_loop(x: torch.Tensor) -> bool:
    """The loop schedule: enough (n, channel block) programs to fill the GPU, or a tensor small
    enough that the second sweep is an L2 hit anyway."""
    N, C, H, W = x.shape
    if not _on_gpu(x):
        return H * W <= LOOP_PLANE_LIMIT
    props = torch.cuda.get_device_properties(x.device)
    fits = x.numel() * x.element_size() <= props.L2_cache_size // 2
    return fits or N * triton.cdiv(C, 32) >= props.multi_processor_count


def l2_group(x: torch.Tensor, block_c: int) -> int:
    """Channels per group of the split schedule: the group's bytes fit in L2 / L2_FRACTION."""
    N, C, H, W = x.shape
    if not _on_gpu(x):
        return C
    budget = torch.cuda.get_device_properties(x.device).L2_cache_size // L2_FRACTION
    per_channel = N * H * W * x.element_size()
    return max(block_c, min(C, budget // per_channel // block_c * block_c))


_LOOP_CONFIGS = [dict(BLOCK_HW=bh, BLOCK_C=bc, num_warps=nw) for bh, bc, nw in
                 ((64, 32, 4), (128, 32, 4), (128, 64, 8), (256, 16, 4), (32, 64, 4), (256, 32, 8))]
_SPLIT_CONFIGS = [dict(BLOCK_HW=bh, BLOCK_C=bc, num_warps=nw) for bh, bc, nw in
                  ((256, 32, 4), (128, 64, 4), (512, 32, 8), (256, 64, 8), (1024, 16, 8))]


def _strides(t: torch.Tensor) -> tuple[int, int, int, int]:
    return tuple(t.stride())


def _split(x: torch.Tensor, cfg: dict, eps: float, mean=None, rstd=None, apply=None):
    """The split schedule, one L2-sized channel group at a time: the group's partials and merge
    (unless statistics are given), then ``apply(c0, cg, programs, mean, rstd)`` for the group while
    it is in L2. Returns (mean, rstd)."""
    N, C, H, W = x.shape
    bh, bc = cfg["BLOCK_HW"], cfg["BLOCK_C"]
    S = triton.cdiv(H * W, bh)
    given = mean is not None
    if not given:
        mean = torch.empty(N, C, device=x.device, dtype=torch.float32)
        rstd = torch.empty_like(mean)
        part = torch.empty(2, N, S, C, device=x.device, dtype=torch.float32)
    group = l2_group(x, bc)
    for c0 in range(0, C, group):
        cg = min(group, C - c0)
        programs = N * triton.cdiv(cg, bc)
        if not given:
            _partial_kernel[(programs, S)](x, part, N, C, H, W, S, c0, cg, *_strides(x), BLOCK_HW=bh, BLOCK_C=bc,
                                           num_warps=cfg["num_warps"])
            _merge_kernel[(programs,)](x, part, mean, rstd, N, C, H, W, S, c0, cg, eps, *_strides(x)[:2],
                                       BLOCK_HW=bh, BLOCK_S=32, BLOCK_C=bc, num_warps=4)
        if apply is not None:
            apply(c0, cg, programs, mean, rstd)
    return mean, rstd


def instance_norm_stats_nhwc(x: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-(n, c) fp32 mean and rstd of a channels-last tensor."""
    N, C, H, W = x.shape
    key = ("stats", N, C, H, W, str(x.dtype))
    return tuned(key, _SPLIT_CONFIGS, lambda cfg: _split(x, cfg, eps), x.device)


def instance_norm_nhwc(x: torch.Tensor, weight, bias, *, eps: float, relu: bool, residual, mean, rstd,
                       pad: int) -> torch.Tensor:
    """The launcher behind ``kernels.instance_norm`` for channels-last input (checked there)."""
    N, C, H, W = x.shape
    OH, OW = H + 2 * pad, W + 2 * pad
    out = torch.empty(N, C, OH, OW, device=x.device, dtype=x.dtype, memory_format=torch.channels_last)
    res = residual if residual is not None else x
    wt = weight if weight is not None else x
    bs = bias if bias is not None else x
    flags = dict(HAS_AFFINE=weight is not None, HAS_RES=residual is not None, RELU=relu)
    strides = (*_strides(x), *_strides(res), *_strides(out))
    loop = use_loop(x)
    key = ("loop" if loop else "split", N, C, H, W, pad, str(x.dtype), mean is not None, *flags.values())

    def run_loop(cfg):
        _loop_kernel[(N * triton.cdiv(C, cfg["BLOCK_C"]),)](
            x, out, wt, bs, res, mean if mean is not None else x, rstd if rstd is not None else x,
            C, H, W, pad, eps, *strides, GIVEN=mean is not None, APPLY=True, **flags, **cfg)
        return out

    def run_split(cfg):
        def apply(c0, cg, programs, m, r):
            _apply_kernel[(programs, triton.cdiv(OH * OW, cfg["BLOCK_HW"]))](
                x, out, wt, bs, res, m, r, C, H, W, pad, c0, cg, *strides, BLOCK_HW=cfg["BLOCK_HW"],
                BLOCK_C=cfg["BLOCK_C"], num_warps=cfg["num_warps"], **flags)
        _split(x, cfg, eps, mean, rstd, apply)
        return out

    return tuned(key, _LOOP_CONFIGS if loop else _SPLIT_CONFIGS, run_loop if loop else run_split, x.device)
