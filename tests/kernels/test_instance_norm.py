"""kernels.instance_norm vs kernels.reference over awkward shapes, dtypes and fusions."""

import pytest
import torch
import torch.nn.functional as F

import kernels
from kernels import reference
from kernels.norm import SINGLE_READ_LIMIT

SHAPES = [(1, 1, 5, 7), (3, 67, 3, 5), (1, 5, 13, 17), (3, 2, 31, 37), (1, 2, 131, 127)]
assert 131 * 127 > SINGLE_READ_LIMIT  # the last shape takes the split-reduction path


def _inputs(shape, dtype, device, sliced, seed=0):
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = shape
    if sliced:
        big = torch.randn(n, c + 2, h + 3, w + 2, generator=g) * 3 + 1.5
        x = big[:, 1:1 + c, 2:2 + h, 1:1 + w]
    else:
        x = torch.randn(shape, generator=g) * 3 + 1.5
    return x.to(device, dtype)


def _torch_lowp(x, weight, bias, activation, residual, pad):
    """Torch's own computation in the low-precision dtype (the error budget)."""
    y = F.instance_norm(x, weight=weight, bias=bias, eps=1e-5)
    if activation == "relu":
        y = torch.relu(y)
    if residual is not None:
        y = y + residual
    return F.pad(y, (pad,) * 4, mode="reflect") if pad else y


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("affine,activation,use_res,pad,sliced", [
    (False, None, False, 0, False), (True, "relu", False, 1, False), (False, "relu", False, 3, True),
    (True, None, True, 0, True), (False, None, True, 1, False), (True, "relu", True, 0, False),
])
def test_instance_norm_matches_reference(shape, dtype, affine, activation, use_res, pad, sliced, device):
    if pad >= min(shape[2], shape[3]):
        pytest.skip("reflect pad must be smaller than the plane")
    x = _inputs(shape, dtype, device, sliced)
    c = shape[1]
    w = (torch.rand(c) + 0.5).to(device, dtype) if affine else None
    b = torch.randn(c).to(device, dtype) if affine else None
    res = _inputs(shape, dtype, device, False, seed=1) if use_res else None
    out = kernels.instance_norm(x, w, b, activation=activation, residual=res, pad=pad)
    f32 = lambda t: None if t is None else t.float()  # noqa: E731
    ref = reference.instance_norm(x.float(), f32(w), f32(b), activation=activation, residual=f32(res), pad=pad)
    assert out.dtype == dtype and out.shape == ref.shape and out.is_contiguous()
    if dtype == torch.float32:
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    else:
        lowp = _torch_lowp(x, w, b, activation, res, pad) if device == "cuda" else None
        budget = (lowp.float() - ref).abs().max().item() if lowp is not None else 0.0
        budget = max(budget, (ref.half().float() - ref).abs().max().item())  # fp16 output rounding
        assert (out.float() - ref).abs().max().item() <= 2 * budget + 1e-6


@pytest.mark.parametrize("large_path", ["plane_loop", "split"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("activation,use_res,pad", [("relu", False, 1), (None, True, 0)])
def test_both_large_plane_paths(large_path, dtype, activation, use_res, pad, device, monkeypatch):
    import kernels.norm as norm
    monkeypatch.setattr(norm, "plane_loop", lambda *a: large_path == "plane_loop")
    shape = SHAPES[4]
    x = _inputs(shape, dtype, device, True)
    res = _inputs(shape, dtype, device, False, seed=2) if use_res else None
    out = kernels.instance_norm(x, activation=activation, residual=res, pad=pad)
    ref = reference.instance_norm(x.float(), activation=activation, residual=None if res is None else res.float(),
                                  pad=pad)
    tol = 1e-5 if dtype == torch.float32 else 2 * (ref.half().float() - ref).abs().max().item() + 1e-6
    torch.testing.assert_close(out.float(), ref, rtol=tol if dtype == torch.float32 else 0, atol=tol)


@pytest.mark.parametrize("shape", [SHAPES[1], SHAPES[3], SHAPES[4]])
def test_given_statistics_and_stats_only(shape, device):
    x = _inputs(shape, torch.float32, device, False)
    mean, rstd = kernels.instance_norm_stats(x)
    rm, rr = reference.instance_norm_stats(x)
    torch.testing.assert_close(mean, rm, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(rstd, rr, rtol=1e-5, atol=1e-5)
    other = _inputs(shape, torch.float32, device, False, seed=3)
    gm, gr = reference.instance_norm_stats(other)
    out = kernels.instance_norm(x, mean=gm[:1], rstd=gr[:1], activation="relu", pad=1)
    ref = reference.instance_norm(x, mean=gm[:1], rstd=gr[:1], activation="relu", pad=1)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_stats_of_sliced_large_plane(device):
    x = _inputs(SHAPES[4], torch.float32, device, sliced=True)
    mean, rstd = kernels.instance_norm_stats(x)
    rm, rr = reference.instance_norm_stats(x)
    torch.testing.assert_close(mean, rm, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(rstd, rr, rtol=1e-5, atol=1e-5)


def test_stats_are_centred_not_moment_based(device):
    x = (torch.randn(1, 1, 64, 64) * 1e-2 + 1e4).to(device)  # |mean| >> std
    _, rstd = kernels.instance_norm_stats(x)
    _, rr = reference.instance_norm_stats(x.double())
    assert abs(rstd.item() - rr.item()) / rr.item() < 1e-3


def test_launcher_refuses_bad_input(device):
    x = torch.randn(1, 2, 4, 4, device=device)
    with pytest.raises(RuntimeError, match="NCHW"):
        kernels.instance_norm(x[0])
    with pytest.raises(RuntimeError, match="reflect pad"):
        kernels.instance_norm(x, pad=4)
    with pytest.raises(RuntimeError, match="fp16/bf16/fp32"):
        kernels.instance_norm(x.double())
    with pytest.raises(RuntimeError, match="residual shape"):
        kernels.instance_norm(x, residual=x[:, :1])
