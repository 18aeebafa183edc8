"""Channels-last (NHWC) instance norm: the same op as NCHW, dispatched by layout, both schedules."""

import pytest
import torch

import kernels
import kernels.norm_nhwc as nhwc
from kernels import reference
from tests.kernels.test_instance_norm import SHAPES, _inputs, _torch_lowp

CL = torch.channels_last


def _cl(shape, dtype, device, sliced, seed=0):
    """Channels-last input; ``sliced``: a view into a larger channels-last tensor (odd strides)."""
    if not sliced:
        return _inputs(shape, dtype, device, False, seed).to(memory_format=CL)
    n, c, h, w = shape
    big = _inputs((n, c + 3, h + 2, w + 1), dtype, device, False, seed).to(memory_format=CL)
    return big[:, 2:2 + c, 1:1 + h, :w]


CASES = [(False, None, False, 0, False), (True, "relu", False, 1, False), (False, "relu", False, 3, True),
         (True, None, True, 0, True), (True, "relu", True, 1, False)]


@pytest.mark.parametrize("schedule", ["loop", "split"])
@pytest.mark.parametrize("shape", SHAPES[1:] + [(2, 40, 9, 11)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("affine,activation,use_res,pad,sliced", CASES)
def test_nhwc_matches_reference(schedule, shape, dtype, affine, activation, use_res, pad, sliced, device,
                                monkeypatch):
    if pad >= min(shape[2], shape[3]):
        pytest.skip("reflect pad must be smaller than the plane")
    monkeypatch.setattr(nhwc, "use_loop", lambda x: schedule == "loop")
    monkeypatch.setattr(nhwc, "l2_group", lambda x, bc: 32)  # C=67 and 40: several channel groups, a ragged last
    x = _cl(shape, dtype, device, sliced)
    assert nhwc.is_channels_last(x)
    c = shape[1]
    w = (torch.rand(c) + 0.5).to(device, dtype) if affine else None
    b = torch.randn(c).to(device, dtype) if affine else None
    res = _inputs(shape, dtype, device, False, seed=1).to(memory_format=CL) if use_res else None
    out = kernels.instance_norm(x, w, b, activation=activation, residual=res, pad=pad)
    f32 = lambda t: None if t is None else t.float()  # noqa: E731
    ref = reference.instance_norm(x.float(), f32(w), f32(b), activation=activation, residual=f32(res), pad=pad)
    assert out.dtype == dtype and out.shape == ref.shape and out.is_contiguous(memory_format=CL)
    if dtype == torch.float32:
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    else:
        lowp = _torch_lowp(x, w, b, activation, res, pad) if device == "cuda" else None
        budget = (lowp.float() - ref).abs().max().item() if lowp is not None else 0.0
        budget = max(budget, (ref.half().float() - ref).abs().max().item())
        assert (out.float() - ref).abs().max().item() <= 2 * budget + 1e-6


@pytest.mark.parametrize("schedule", ["loop", "split"])
def test_nhwc_stats_and_given_stats(schedule, device, monkeypatch):
    monkeypatch.setattr(nhwc, "use_loop", lambda x: schedule == "loop")
    monkeypatch.setattr(nhwc, "l2_group", lambda x, bc: 32)
    shape = (2, 67, 13, 17)
    x = _cl(shape, torch.float32, device, True)
    mean, rstd = kernels.instance_norm_stats(x)
    rm, rr = reference.instance_norm_stats(x)
    torch.testing.assert_close(mean, rm, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(rstd, rr, rtol=1e-5, atol=1e-5)
    gm, gr = reference.instance_norm_stats(_inputs(shape, torch.float32, device, False, seed=3))
    out = kernels.instance_norm(x, mean=gm[:1], rstd=gr[:1], activation="relu", pad=1)
    torch.testing.assert_close(out, reference.instance_norm(x, mean=gm[:1], rstd=gr[:1], activation="relu", pad=1),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_nhwc_stats_are_centred(device, seed):
    """|mean| >> std: shifted, centred statistics stay within 1e-5 of a float64 computation (the
    fp32 reference itself is ~1e-3 off here)."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(1, 8, 64, 64, generator=g) * 1e-2 + 1e4).to(device).to(memory_format=CL)
    mean, rstd = kernels.instance_norm_stats(x)
    xd = x.double()
    rr = 1 / torch.sqrt(xd.var(dim=(2, 3), unbiased=False) + 1e-5)
    assert ((rstd.double() - rr).abs() / rr).max().item() < 1e-5
    assert (mean.double() - xd.mean(dim=(2, 3))).abs().max().item() < 1e-3  # fp32 ulp at 1e4


def test_layout_follows_input(device):
    x = _inputs((1, 16, 8, 8), torch.float32, device, False)
    assert kernels.instance_norm(x, pad=1).is_contiguous()
    assert kernels.instance_norm(x.to(memory_format=CL), pad=1).is_contiguous(memory_format=CL)
    # a channels-last residual under an NCHW input and vice versa: values agree
    r = _inputs((1, 16, 8, 8), torch.float32, device, False, seed=4)
    a = kernels.instance_norm(x, residual=r.to(memory_format=CL))
    b = kernels.instance_norm(x.to(memory_format=CL), residual=r)
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
