"""YUV <-> RGB kernels: against the float64 reference and against FFmpeg's swscale, every matrix,
range, subsampling and bit depth the video path meets."""

import av
import numpy as np
import pytest
import torch

from kernels import reference
from kernels.yuv import rgb_to_yuv, yuv_to_rgb
from tests.streamgan.helpers import db, photo

SUBS = {"420": (1, 1), "422": (0, 1), "444": (0, 0)}


def _image(h, w, seed=0):
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("matrix", ["bt601", "bt709", "bt2020"])
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("sub", list(SUBS))
@pytest.mark.parametrize("bits", [8, 10])
def test_round_trip_matches_reference(matrix, full, sub, bits, device):
    x = _image(9, 13).to(device)  # odd sides: ragged chroma
    kw = dict(matrix=matrix, full_range=full, bits=bits, sub=SUBS[sub])
    planes = rgb_to_yuv(x, **kw)
    ref = reference.rgb_to_yuv(x.cpu(), **kw)
    for p, r in zip(planes, ref):
        assert p.dtype == r.dtype and p.shape == r.shape
        assert (p.cpu().int() - r.int()).abs().max().item() <= 1  # float32 vs float64 at a .5 boundary
    back = yuv_to_rgb(*planes, dtype=torch.float32, **kw)
    torch.testing.assert_close(back.cpu(), reference.yuv_to_rgb(*[p.cpu() for p in planes], **kw), atol=1e-5,
                               rtol=0)
    if sub == "444":  # no chroma averaging: the round trip is within a code of the original
        step = 2 / ((219 if not full else 255) * 2 ** (bits - 8))
        assert (back.cpu() - x.cpu()).abs().max().item() <= 1.5 * step


def test_channels_last_output_and_fp16(device):
    x = _image(8, 10).to(device)
    planes = rgb_to_yuv(x.contiguous(memory_format=torch.channels_last))
    assert all(torch.equal(a, b) for a, b in zip(planes, rgb_to_yuv(x)))
    out = yuv_to_rgb(*planes, dtype=torch.float16, memory_format=torch.channels_last)
    assert out.dtype == torch.float16 and out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out.float(), yuv_to_rgb(*planes, dtype=torch.float32), atol=2e-3, rtol=0)


@pytest.mark.parametrize("space,matrix", [(1, "bt709"), (5, "bt601"), (9, "bt2020")])
@pytest.mark.parametrize("rng,full", [(1, False), (2, True)])
def test_agrees_with_swscale(space, matrix, rng, full, device):
    rgb = np.random.RandomState(1).randint(0, 256, (16, 24, 3), dtype=np.uint8)
    flags = av.video.reformatter.Interpolation.BILINEAR | av.video.reformatter.Interpolation.ACCURATE_RND
    vf = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
        format="yuv444p", dst_colorspace=space, dst_color_range=rng, interpolation=flags)
    sws = [np.frombuffer(bytes(p), np.uint8).reshape(16, -1)[:, :24] for p in vf.planes]
    x = (torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255 * 2 - 1).to(device)
    ours = rgb_to_yuv(x, matrix=matrix, full_range=full, sub=(0, 0))
    for a, b in zip(ours, sws):
        assert np.abs(a.cpu().numpy().astype(int) - b.astype(int)).max() <= 1
    back = yuv_to_rgb(*[torch.from_numpy(np.ascontiguousarray(p)).to(device) for p in sws], matrix=matrix,
                      full_range=full, sub=(0, 0), dtype=torch.float32)
    assert np.abs(((back[0].permute(1, 2, 0).cpu() + 1) * 127.5).round().numpy() - rgb).max() <= 2


def test_bad_planes_are_refused(device):
    y = torch.zeros(4, 6, dtype=torch.uint8, device=device)
    with pytest.raises(RuntimeError, match="U plane"):
        yuv_to_rgb(y, y, y)  # 4:2:0 wants 2x3 chroma
    with pytest.raises(RuntimeError, match="matrix"):
        rgb_to_yuv(_image(4, 6).to(device), matrix="bt999")


_SWS_FLAGS = av.video.reformatter.Interpolation.BILINEAR | av.video.reformatter.Interpolation.ACCURATE_RND
_FMT = {("420", 8): "yuv420p", ("422", 8): "yuv422p", ("420", 10): "yuv420p10le", ("422", 10): "yuv422p10le"}


@pytest.mark.parametrize("sub", ["420", "422"])
@pytest.mark.parametrize("bits", [8, 10])
def test_subsampled_chroma_matches_the_cpu_path_on_a_photograph(sub, bits, device, tmp_path):
    """The CPU path converts with swscale (streamgan.media.video: bilinear, exact rounding, chroma as the
    decoded frame sites it), the device path with these kernels: on a photograph coded by x264
    (lossless, so the planes are the encoder's input) both ways agree to >= 50 dB, decoding and
    encoding, so a file gives the same picture on either path. The kernels' former chroma (the
    covering sample; a box mean) read 38-40 dB here."""
    from streamgan.media.video import Colour, matrix_name, planes_of, to_rgb
    rgb = photo(180, 320)
    fmt = _FMT[(sub, bits)]
    path = tmp_path / "photo.mkv"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt, s.options = 320, 180, fmt, {"qp": "0"}
        # encode: swscale's planes of the photograph (the CPU path's writer) against the kernel's
        vf = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
            format=fmt, dst_colorspace=1, dst_color_range=1, interpolation=_SWS_FLAGS)
        for p in [*s.encode(vf), *s.encode()]:
            c.mux(p)
    dt = np.uint8 if bits == 8 else np.int16
    sws = [np.frombuffer(bytes(p), dt).reshape(p.height, -1)[:, :p.width] for p in vf.planes]
    x = (torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 127.5 - 1).to(device)
    peak = 2.0 ** bits - 1
    for a, b in zip(rgb_to_yuv(x, matrix="bt709", bits=bits, sub=SUBS[sub]), sws):
        assert db(a.cpu().numpy(), b, peak) >= 50
    # decode: the CPU path's RGB of the decoded frame against the kernel's of its planes
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
        want = to_rgb(frame)
        matrix = matrix_name(Colour.of(frame))  # (an untagged stream: BT.601 on both paths)
        planes = [torch.from_numpy(np.array(p).view(np.int16) if bits > 8 else np.array(p)).to(device)
                  for p in planes_of(frame)]
    back = yuv_to_rgb(*planes, matrix=matrix, bits=bits, sub=SUBS[sub], dtype=torch.float32)
    got = ((back[0].permute(1, 2, 0).cpu() + 1) * 127.5).clamp(0, 255).round().numpy()
    assert db(got, want, 255.0) >= 50
    # and the float64 reference agrees with both
    ref = reference.yuv_to_rgb(*[p.cpu() for p in planes], matrix=matrix, bits=bits, sub=SUBS[sub])
    torch.testing.assert_close(back.cpu(), ref, atol=1e-5, rtol=0)
