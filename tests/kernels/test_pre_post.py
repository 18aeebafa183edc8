"""preprocess / postprocess / blend_tiles vs their references."""

import pytest
import torch

import kernels
from kernels import reference
from streamgan.translate.tiling import TilePlan


@pytest.mark.parametrize("h,w", [(1, 1), (13, 17), (37, 64)])
@pytest.mark.parametrize("bgr", [False, True])
@pytest.mark.parametrize("dtype,lo,hi", [(torch.float32, -1.0, 1.0), (torch.float16, 0.0, 1.0)])
def test_preprocess(h, w, bgr, dtype, lo, hi, device):
    f = (torch.rand(h, w + 3, 3) * 255).to(torch.uint8)[:, 1:1 + w].to(device)  # sliced frame
    out = kernels.preprocess(f, bgr=bgr, dtype=dtype, lo=lo, hi=hi)
    ref = reference.preprocess(f, bgr=bgr, dtype=dtype, lo=lo, hi=hi)
    assert out.dtype == dtype
    torch.testing.assert_close(out, ref, rtol=1e-3 if dtype == torch.float16 else 1e-6, atol=1e-6)


def test_preprocess_gathers_tiles(device):
    f = (torch.rand(29, 31, 3) * 255).to(torch.uint8).to(device)
    boxes = [(0, 0), (13, 15), (5, 2)]
    out = kernels.preprocess(f, boxes=boxes, tile=(16, 16))
    torch.testing.assert_close(out, reference.preprocess(f, boxes=boxes, tile=(16, 16)))
    with pytest.raises(RuntimeError, match="leaves"):
        kernels.preprocess(f, boxes=[(20, 20)], tile=(16, 16))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_postprocess_rounds_and_clamps(dtype, device):
    y = (torch.rand(1, 3, 11, 23) * 2.4 - 1.2).to(device, dtype)
    out = kernels.postprocess(y)
    ref = reference.postprocess(y)
    assert out.dtype == torch.uint8 and out.shape == (11, 23, 3)
    assert (out.int() - ref.int()).abs().max().item() <= (0 if dtype == torch.float32 else 1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_postprocess_on_a_cropped_channels_last_output(dtype, device):
    """What the translator really hands over: the model's output cropped from its padded size,
    channels-last (the NHWC generator's layout) — not a contiguous NCHW tensor."""
    y = (torch.rand(1, 3, 16, 28) * 2.4 - 1.2).to(device, dtype).contiguous(memory_format=torch.channels_last)
    crop = y[:, :, 2:13, 1:24]
    out = kernels.postprocess(crop)
    ref = reference.postprocess(crop.contiguous())
    assert out.shape == (11, 23, 3)
    assert (out.int() - ref.int()).abs().max().item() <= (0 if dtype == torch.float32 else 1)


@pytest.mark.parametrize("h,w", [(13, 17)])
def test_preprocess_of_a_bgr_frame_view(h, w, device):
    """An OpenCV camera's BGR frame viewed as RGB by a negative-stride slice ([..., ::-1])."""
    f = (torch.rand(h, w, 3) * 255).to(torch.uint8).to(device)
    view = f.flip(-1)  # torch has no negative strides: flip copies; the kernel reads bgr=True on f itself
    torch.testing.assert_close(kernels.preprocess(f, bgr=True), reference.preprocess(view))


def test_blend_tiles_matches_reference(device):
    plan = TilePlan.make(40, 52, tile=24, overlap=8, multiple=4)
    tiles = (torch.rand(len(plan.boxes), 3, *plan.tile) * 2 - 1).to(device)
    ph, pw = plan.padded
    out = kernels.blend_tiles(tiles, plan.windows.to(device), list(plan.boxes), ph, pw)
    ref = reference.blend_tiles(tiles, plan.windows.to(device), list(plan.boxes), ph, pw)
    assert (out.int() - ref.int()).abs().max().item() <= 1  # atomic-add order may flip a rounding
