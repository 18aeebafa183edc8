"""Builders for tests: random official-layout checkpoints and PyAV-made clips."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from torch import nn

from streamgan.models import ResnetGenerator, UnetGenerator


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.dtype.is_floating_point:
                if name.endswith("running_var"):
                    t.copy_(torch.rand(t.shape, generator=g) + 0.5)
                elif name.endswith("weight") and t.dim() == 1:
                    t.copy_(1 + 0.1 * torch.randn(t.shape, generator=g))
                else:
                    t.copy_(0.1 * torch.randn(t.shape, generator=g))
    return model


def tiny_resnet(path: Path, norm: str = "instance", n_blocks: int = 2, ngf: int = 8, dropout: bool = False,
                seed: int = 0, legacy: bool = False) -> Path:
    model = randomize(ResnetGenerator(3, 3, ngf, norm, dropout, n_blocks), seed)
    sd = model.state_dict()
    if legacy:  # old InstanceNorm checkpoints carried running stats (official issue #262)
        for i in (2, 5, 8):
            c = sd[f"model.{i - 1}.weight"].shape[0]
            sd[f"model.{i}.running_mean"] = torch.zeros(c)
            sd[f"model.{i}.running_var"] = torch.ones(c)
            sd[f"model.{i}.num_batches_tracked"] = torch.tensor(0)
    torch.save(sd, path)
    return path


def tiny_unet(path: Path, num_downs: int = 6, ngf: int = 4, norm: str = "batch", seed: int = 0,
              drop_nbt: bool = False) -> Path:
    model = randomize(UnetGenerator(3, 3, num_downs, ngf, norm), seed)
    sd = {k: v for k, v in model.state_dict().items() if not (drop_nbt and k.endswith("num_batches_tracked"))}
    torch.save(sd, path)
    return path


def textured_frames(n: int, h: int = 64, w: int = 64, shift: int = 2, noise: float = 0.0, seed: int = 0,
                    cut_at: int | None = None, vshift: int | None = None) -> list[np.ndarray]:
    """A smooth random texture panning ``shift`` px (``vshift`` down) per frame (+ sensor noise);
    optional hard cut."""
    vshift = shift // 2 if vshift is None else vshift
    rs = np.random.RandomState(seed)
    big = [rs.rand(h // 8 + 2 + n * max(shift, vshift) // 8 + 2, w // 8 + 2 + n * shift // 8 + 2, 3)
           for _ in range(2)]
    import cv2
    textures = [cv2.resize((b * 255).astype(np.float32), None, fx=8, fy=8, interpolation=cv2.INTER_CUBIC)
                for b in big]
    frames = []
    for i in range(n):
        tex = textures[1 if cut_at is not None and i >= cut_at else 0]
        f = tex[i * vshift: i * vshift + h, i * shift: i * shift + w]
        if noise:
            f = f + rs.randn(*f.shape) * noise * 255
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
    return frames


def write_clip(path: Path, frames: list[np.ndarray], fps: int = 12, audio_streams: int = 0,
               vfr: bool = False, codec: str = "libx264", faststart: bool = True, crf: int | None = None,
               pix_fmt: str | None = None, gop: int | None = None) -> Path:
    """Encode ``frames`` with PyAV (``pix_fmt``, default yuv420p or yuv444p for odd sizes) plus AAC
    sine audio streams."""
    h, w = frames[0].shape[:2]
    opts = {"movflags": "faststart"} if faststart and path.suffix == ".mp4" else {}
    with av.open(str(path), "w", options=opts) as c:
        vs = c.add_stream(codec, rate=fps)
        vs.width, vs.height = w, h
        vs.pix_fmt = pix_fmt or ("yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p")
        tb = Fraction(1, 1000 if vfr else fps)
        vs.codec_context.time_base = tb
        if crf is not None:
            vs.options = {"crf": str(crf)}
        if gop:  # a keyframe every ``gop`` frames
            vs.codec_context.gop_size = gop
        auds = []
        for k in range(audio_streams):
            a = c.add_stream("aac", rate=48000)
            a.layout = "stereo" if k == 0 else "mono"
            auds.append(a)
        pts = 0
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts, vf.time_base = pts, tb
            for p in vs.encode(vf):
                c.mux(p)
            pts += (1 if not vfr else (1000 // fps if i % 3 else 2 * 1000 // fps))
        for p in vs.encode():
            c.mux(p)
        seconds = float(pts * tb)
        for k, a in enumerate(auds):
            n = int(seconds * 48000)
            t = np.arange(n) / 48000
            chans = 2 if k == 0 else 1
            sig = (0.2 * np.sin(2 * np.pi * (440 + 110 * k) * t)).astype(np.float32)
            data = np.tile(sig, (chans, 1))
            for s0 in range(0, n, 1024):
                chunk = np.ascontiguousarray(data[:, s0:s0 + 1024])
                af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=a.layout.name)
                af.sample_rate, af.pts = 48000, s0
                for p in a.encode(af):
                    c.mux(p)
            for p in a.encode():
                c.mux(p)
    return path


# swscale with exact rounding (the tests' own, not streamgan's)
ROUNDED = av.video.reformatter.Interpolation.BILINEAR | av.video.reformatter.Interpolation.ACCURATE_RND
_SWS = {1: 1, 6: 5, 9: 9}  # AVColorSpace -> swscale's coefficient set (BT.709, BT.601, BT.2020)


def write_tagged_clip(path: Path, frames: list[np.ndarray], *, space: int, rng: int = 1, primaries: int,
                      trc: int, codec: str = "libx264", pix_fmt: str = "yuv444p", fps: int = 12,
                      options: dict | None = None) -> Path:
    """Encode RGB ``frames`` (uint8, or uint16 code values) as ``pix_fmt`` with the matrix ``space``
    (AVColorSpace) and range ``rng``, the stream and every frame tagged with them and with
    ``primaries`` and ``trc``."""
    fmt = "rgb48le" if frames[0].dtype == np.uint16 else "rgb24"
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps, options=options or {})
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], pix_fmt
        cc = s.codec_context
        cc.colorspace, cc.color_range, cc.color_primaries, cc.color_trc = space, rng, primaries, trc
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format=fmt).reformat(
                format=pix_fmt, dst_colorspace=_SWS[space], dst_color_range=rng, interpolation=ROUNDED)
            vf.colorspace, vf.color_range, vf.color_primaries, vf.color_trc = space, rng, primaries, trc
            vf.pts = i
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def reference_output(checkpoint: Path, x: torch.Tensor) -> torch.Tensor:
    """The loaded generator's fp32 eager output: what every engine is compared with."""
    from streamgan import load_generator
    with torch.no_grad():
        return load_generator(checkpoint)(x)


def audio_ends(path: Path) -> list[tuple[str, float]]:
    """(codec, end time in seconds) of every audio stream, from its packets."""
    out = []
    with av.open(str(path)) as c:
        for s in c.streams.audio:
            packets = [p for p in c.demux(s) if p.size]
            out.append((s.codec_context.name, max(float((p.pts + p.duration) * p.time_base) for p in packets)))
            c.seek(0)
    return out



def av_starts(path: Path) -> tuple[float, float]:
    """(first video frame's time, first audio packet's time) in seconds: where each starts."""
    with av.open(str(path)) as c:
        video = next(c.decode(video=0)).time
    with av.open(str(path)) as c:
        audio = next(float(p.pts * p.time_base) for p in c.demux(audio=0) if p.size)
    return video, audio


def late_video(path: Path, clip: Path, seconds: float) -> Path:
    """``clip``'s video ``seconds`` after its audio (a recording whose picture starts late), copied."""
    import subprocess
    subprocess.run(["ffmpeg", "-v", "error", "-itsoffset", str(seconds), "-i", str(clip), "-i", str(clip), "-map",
                    "0:v", "-map", "1:a", "-c", "copy", str(path)], check=True)
    return path

def db(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR of ``a`` against ``b`` whose codes run up to ``peak`` (inf where they are equal)."""
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(peak ** 2 / mse))


def photo(h: int, w: int, shift: float = 0.0) -> np.ndarray:
    """Grace Hopper's photograph (matplotlib's sample), scaled to cover h x w, shifted ``shift`` px."""
    import cv2
    import matplotlib.cbook
    img = cv2.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))[:, :, ::-1]
    scale = 1.2 * max(h / img.shape[0], w / img.shape[1])
    big = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    m = np.float32([[1, 0, -shift], [0, 1, -shift / 2]])
    return cv2.warpAffine(big, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def interlaced_clip(path, moments: list[np.ndarray]) -> list[np.ndarray]:
    """An interlaced SD-style clip, as a camera or broadcast makes it: each frame woven from two
    moments (top field: rows 0, 2, ... of moments[2n]; bottom: rows 1, 3, ... of moments[2n+1]),
    flagged top field first, pixels 16:15 (anamorphic); x264 lossless 4:4:4. Returns the woven frames."""
    h, w = moments[0].shape[:2]
    woven = []
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25, options={"qp": "0"})
        s.width, s.height, s.pix_fmt = w, h, "yuv444p"
        s.codec_context.sample_aspect_ratio = Fraction(16, 15)
        s.codec_context.flags |= av.codec.context.Flags.interlaced_dct | av.codec.context.Flags.interlaced_me
        g = av.filter.Graph()  # setfield flags each frame interlaced, top field first (x264 reads the flags)
        g.link_nodes(g.add_buffer(width=w, height=h, format="yuv444p", time_base=Fraction(1, 25)),
                     g.add("setfield", "tff"), g.add("buffersink")).configure()
        for n in range(len(moments) // 2):
            f = moments[2 * n].copy()
            f[1::2] = moments[2 * n + 1][1::2]
            woven.append(f)
            vf = av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv444p")
            vf.pts, vf.time_base = n, Fraction(1, 25)
            g.push(vf)
            for p in s.encode(g.pull()):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return woven


def interruptible() -> None:
    """A child's SIGINT back to its default (Python then turns it into KeyboardInterrupt): a test
    run in a background job (CI scripts, `cmd &`) inherits SIGINT ignored, and Ctrl-C tests need it."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def identity_onnx(path: Path) -> Path:
    """An ONNX model whose output is its input (image, NCHW float)."""
    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["out"])], "id",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, "h", "w"])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", 3, "h", "w"])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path
