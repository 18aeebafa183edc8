"""Phone and camera footage: HLG and PQ (BT.2020, 10-bit HEVC made here with PyAV's libx265 and
the colour tags), 10-bit and 4:2:2 SDR, through `streamgan run` with an identity ONNX model, so
the output shows exactly what the pipeline did to the picture. The default SDR conversion is
compared with what Debian's ffmpeg (zimg, vf_tonemap) computes for the same file."""

import shutil
import subprocess
import sys

import av
import numpy as np
import pytest

from streamgan.media.hdr import DEFAULT_TONEMAP, HLG, PQ, TONEMAPS, HdrConverter
from streamgan.media.video import planes_of
from tests.streamgan.helpers import write_tagged_clip

H, W = 64, 256
PQ_1000_NITS = 0.7518  # PQ's code for 1000 cd/m2: the brightest the default tone map expects
# patches (code values, R'G'B' BT.2020) of the colours footage holds: inside BT.709's gamut
PATCHES = [(0.55, 0.45, 0.40), (0.40, 0.50, 0.45), (0.45, 0.45, 0.58), (0.60, 0.58, 0.45),
           (0.30, 0.32, 0.30), (0.70, 0.66, 0.62), (0.50, 0.42, 0.50), (0.35, 0.42, 0.48)]


def pattern(top: float) -> np.ndarray:
    """RGB 16-bit code values: a grey ramp from 0 to ``top`` over the upper half, patches below."""
    code = np.zeros((H, W, 3))
    code[: H // 2] = np.linspace(0, top, W)[None, :, None]
    for i, c in enumerate(PATCHES):
        code[H // 2:, i * 32:(i + 1) * 32] = np.array(c) * top
    return np.rint(code * 65535).astype(np.uint16)


def make_clip(path, trc: int | None, fmt: str = "yuv420p10le", frames: int = 3, rgb: np.ndarray | None = None):
    """A lossless x265 clip of ``rgb`` (16-bit code values), tagged HLG or PQ with BT.2020 (``trc``),
    or SDR BT.709 (None)."""
    space, prim, trc = (9, 9, trc) if trc else (1, 1, 1)
    rgb = pattern(PQ_1000_NITS if trc == PQ else 1.0) if rgb is None else rgb
    return write_tagged_clip(path, [rgb] * frames, space=space, primaries=prim, trc=trc, codec="libx265",
                             pix_fmt=fmt, fps=25, options={"x265-params": "lossless=1:log-level=error"})


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    from tests.streamgan.helpers import identity_onnx
    return identity_onnx(tmp_path_factory.mktemp("id") / "id.onnx")


def run(identity, src, out, *extra) -> str:
    r = subprocess.run([sys.executable, "-m", "streamgan", "run", "--engine", str(identity), "--range", "0,1",
                        "--input", str(src), "--output", str(out), "--crf", "0", "--no-progress", *extra],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stderr


def decoded(path) -> tuple[list[np.ndarray], av.VideoFrame]:
    """The first frame's planes (ints) and the frame, for its tags and format."""
    with av.open(str(path)) as c:
        f = next(c.decode(video=0))
        return [p.astype(int) for p in planes_of(f)], f


def ffmpeg_sdr(src, tonemap: str) -> np.ndarray | None:
    """Debian's ffmpeg's SDR BT.709 picture of ``src`` (Y, U, V 4:4:4, 8-bit), or None without it."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None or "zscale" not in subprocess.run([ffmpeg, "-hide_banner", "-filters"], capture_output=True,
                                                        text=True).stdout:
        return None
    chain = (f"zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,tonemap=tonemap={tonemap}:desat=0,"
             f"zscale=t=bt709:m=bt709:r=tv,format=yuv444p")
    raw = subprocess.run([ffmpeg, "-v", "error", "-i", str(src), "-frames:v", "1", "-vf", chain, "-f", "rawvideo",
                          "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(3, H, W).astype(int)


@pytest.mark.parametrize("tonemap", [None, "hable", "clip"], ids=["default", "hable", "clip"])
@pytest.mark.parametrize("trc", [HLG, PQ], ids=["hlg", "pq"])
def test_hdr_becomes_sdr_bt709_by_default_as_ffmpeg_tone_maps_it(tmp_path, identity, trc, tonemap):
    src = make_clip(tmp_path / "in.mkv", trc, fmt="yuv444p10le")
    out = tmp_path / "out.mkv"
    err = run(identity, src, out, *(["--tonemap", tonemap] if tonemap else []))
    tonemap = tonemap or DEFAULT_TONEMAP
    assert f"tone mapped ({tonemap}) to SDR BT.709" in err  # the run says what it did
    (y, u, v), f = decoded(out)
    assert (int(f.color_trc), int(f.color_primaries), int(f.colorspace)) == (1, 1, 1)  # SDR BT.709, tagged so
    assert f.format.name == "yuv444p10le"  # 10 bits and 4:4:4 in, 10 bits and 4:4:4 out
    ramp = y[H // 4] / 4  # 8-bit levels
    assert np.all(np.diff(ramp) >= -0.5) and ramp[-1] - ramp[0] > 150  # monotonic, black to near white
    assert ramp[32] - ramp[0] > 5  # and the shadows not crushed
    ref = ffmpeg_sdr(src, tonemap)
    if ref is None:
        pytest.skip("needs Debian's ffmpeg with zscale for the reference (.ci/run installs it)")
    ours = np.stack([y, u, v]) / 4
    assert np.abs(ours - ref).max() <= 4, np.abs(ours - ref).max(axis=(1, 2))


def test_every_tone_curve_is_monotonic_and_keep_inverts_it():
    for trc in (HLG, PQ):
        code = pattern(PQ_1000_NITS if trc == PQ else 1.0)
        for tm in TONEMAPS:
            conv = HdrConverter(trc, tm)
            sdr, res = conv.to_sdr(code, keep_residual=True)
            grey = sdr[0, :, 1].astype(int)
            assert np.all(np.diff(grey) >= 0) and grey[-1] > 200, (trc, tm)
            back = conv.to_hdr(sdr, res)
            if tm in ("hable", "reinhard"):  # (clip throws away what is above SDR white; BT.2390's curve
                # flattens to slope 0 at the peak, where 8 bits cannot tell the top codes apart)
                assert np.abs(back.astype(int) - code).max() <= 4 * 64, (trc, tm)  # 4 levels at 10 bits
            if tm == "hable":  # without the SDR frame's rounding the shadows and highlights come back coarser
                coarse = np.abs(conv.to_hdr(sdr).astype(int) - code).max()
                assert coarse > np.abs(back.astype(int) - code).max()


@pytest.mark.parametrize("trc", [HLG, PQ], ids=["hlg", "pq"])
def test_hdr_keep_round_trips_at_10_bits_with_the_inputs_tags(tmp_path, identity, trc):
    src = make_clip(tmp_path / "in.mkv", trc, fmt="yuv444p10le")
    out = tmp_path / "out.mkv"
    run(identity, src, out, "--hdr", "keep")
    (got, f), (want, g) = decoded(out), decoded(src)
    assert (int(f.color_trc), int(f.color_primaries), int(f.colorspace)) == (trc, 9, 9)
    assert f.format.name == g.format.name == "yuv444p10le"
    for a, b in zip(got, want):  # one rounding at 10 bits (the 8-bit SDR frame's own rounding is given back)
        assert np.abs(a - b).max() <= 1


def test_passthrough_feeds_the_code_values(tmp_path, identity):
    src = make_clip(tmp_path / "in.mkv", HLG, fmt="yuv444p10le")
    out = tmp_path / "out.mkv"
    run(identity, src, out, "--hdr", "passthrough")
    (got, f), (want, _) = decoded(out), decoded(src)
    assert (int(f.color_trc), int(f.color_primaries)) == (HLG, 9)
    for a, b in zip(got, want):  # one 8-bit RGB round trip: within 1 8-bit level, 4 at 10 bits
        assert np.abs(a - b).max() <= 6


@pytest.mark.parametrize("fmt", ["yuv420p10le", "yuv422p10le", "yuv422p"])
def test_bit_depth_and_chroma_are_kept(tmp_path, identity, fmt):
    rng = np.random.default_rng(0)
    rgb = np.repeat(np.repeat(rng.integers(8000, 60000, (H // 16, W // 16, 3)), 16, 0), 16, 1).astype(np.uint16)
    src = make_clip(tmp_path / "in.mkv", None, fmt=fmt, rgb=rgb)
    out = tmp_path / "out.mkv"
    run(identity, src, out)
    (got, f), (want, _) = decoded(out), decoded(src)
    assert f.format.name == fmt and int(f.colorspace) == 1
    level = 4 if "10" in fmt else 1
    for a, b in zip(got, want):  # flat 16x16 blocks: inside them, one 8-bit RGB round trip
        by, bx = 16 * a.shape[0] // H, 16 * a.shape[1] // W  # a block in this plane's samples
        inside = np.ix_(*(ax[(ax % n >= n // 4) & (ax % n < 3 * n // 4)]
                          for ax, n in ((np.arange(a.shape[0]), by), (np.arange(a.shape[1]), bx))))
        assert np.abs(a - b)[inside].max() <= 3 * level  # (swscale rounds to within a level each way)


def test_an_encoder_without_the_layout_is_named(tmp_path, identity):
    src = make_clip(tmp_path / "in.mkv", None, fmt="yuv422p10le")
    out = tmp_path / "out.mkv"
    err = run(identity, src, out, "--codec", "mpeg4")
    assert "cannot encode yuv422p10le" in err
    assert decoded(out)[1].format.name == "yuv420p"


def test_a_live_hdr_input_is_tone_mapped_too(tmp_path, identity):
    """(A file played live stands for a camera or stream; the same source code path tags the output.)"""
    src = make_clip(tmp_path / "in.mkv", HLG, frames=12)
    out = tmp_path / "out.mkv"
    err = run(identity, src, out, "--live")
    assert f"tone mapped ({DEFAULT_TONEMAP}) to SDR BT.709" in err
    (y, _, _), f = decoded(out)
    assert (int(f.color_trc), int(f.color_primaries), int(f.colorspace)) == (1, 1, 1)
    ref = ffmpeg_sdr(src, DEFAULT_TONEMAP)
    if ref is not None:  # a live encode (lossy, 4:2:0 8-bit): the luma within a few levels
        assert np.abs(y[:, 8:-8] - ref[0][:, 8:-8]).mean() <= 2
