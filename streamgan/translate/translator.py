"""One frame through an engine: preprocess, plan, normalisation statistics, infer, blend, postprocess.

Every source (image files, video, camera) hands RGB uint8 HxWx3 arrays to a Translator.
On CUDA the pre/post-processing and blending run as Triton kernels; on the CPU the torch
references do the same arithmetic. Whole frames for host engines (ONNX Runtime, OpenVINO on the
CPU) go through numpy with the same arithmetic, and torch is never imported (``engines/lazy.py``).
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from dataclasses import dataclass

import numpy as np

from engines.base import Engine, on_cuda
from engines.lazy import torch  # imported on first use (engines/lazy.py)

from ..errors import OptionError
from .memory import full_frame_decision
from .tiling import TilePlan, default_overlap, round_up

NORM_STATS = ("tile", "thumbnail", "exact")


@dataclass
class TranslateOptions:
    """tile: None picks (full frame if it fits), 0 full frame, N tiles of N px; overlap: None derives
    it from the receptive radius; norm_stats: None = thumbnail when tiling a model with per-image
    statistics, "tile" each tile its own, "exact" the full-frame result computed layer by layer with
    convolutions in tile-sized blocks (torch engines); stats_ema: weight of the previous frame's
    statistics (video)."""

    tile: int | None = None
    overlap: int | None = None
    batch: int = 4
    norm_stats: str | None = None
    thumbnail: int = 1024
    stats_ema: float = 0.0
    window: str = "cosine"

    def check(self) -> None:
        if self.tile is not None and self.tile < 0:
            raise OptionError("--tile must be >= 0")
        if self.overlap is not None and self.overlap < 0:
            raise OptionError("--overlap must be >= 0")
        if self.batch < 1:
            raise OptionError("--batch must be >= 1")
        if self.norm_stats not in (None, *NORM_STATS):
            raise OptionError(f"--norm-stats must be one of {', '.join(NORM_STATS)}")
        if not 0.0 <= self.stats_ema < 1.0:
            raise OptionError("--stats-ema must be in [0, 1)")
        if self.window not in ("cosine", "linear"):
            raise OptionError("--window must be cosine or linear")


class Translator:
    """Callable: RGB uint8 (H, W, 3) numpy array -> translated RGB uint8 array of the same size."""

    def __init__(self, engine: Engine, options: TranslateOptions | None = None):
        self.engine = engine
        self.opt = options or TranslateOptions()
        self.opt.check()
        self.meta = engine.meta
        self.cuda = on_cuda(engine)
        self._ops = None
        self._plans: dict[tuple[int, int], TilePlan] = {}
        self._stats: torch.Tensor | None = None
        self.times: dict[str, float] = defaultdict(float)
        self.last: dict[str, float] = {}  # the latest frame's seconds per stage
        self.decision = ""  # why the latest plan is full frame or tiles
        self.frames = 0
        self._staging: dict[int, torch.Tensor] = {}  # pinned host buffers of the YUV frame path
        self._pending: deque = deque()  # frames started, oldest first: (tag, function finishing it)
        self._pending_size: tuple[int, int] | None = None  # (h, w) of the frames started by ``submit``
        self._turn = 0  # frames started on the YUV path (buffer slots go round)
        self._copy_stream = None  # CUDA stream of the YUV path's uploads and downloads

    @property
    def ops(self):
        """Pre/post-processing and blending: the Triton kernels on CUDA, the torch references elsewhere."""
        if self._ops is None:
            import kernels
            self._ops = kernels if self.cuda and kernels.triton_available() else kernels.reference
        return self._ops

    def plan(self, height: int, width: int) -> TilePlan:
        key = (height, width)
        if key not in self._plans:
            m, tile = self.meta.size_multiple, self.opt.tile
            ph, pw = round_up(height, m), round_up(width, m)
            max_shape = self.meta.shapes.get("max")
            if tile is None:
                if max_shape and (ph > max_shape[-2] or pw > max_shape[-1]):
                    fits, self.decision = False, f"tiles: {ph}x{pw} exceeds the engine's largest shape {max_shape}"
                else:
                    fits, self.decision = full_frame_decision(self.engine, ph, pw)
                tile = 0 if fits else min(512, *(max_shape[-2:] if max_shape else (512,)))
            else:
                self.decision = f"tiles of {tile} px (--tile)" if tile else "full frame (--tile 0)"
            overlap = self.opt.overlap
            if overlap is None:
                overlap = default_overlap(tile, self.meta.receptive_radius, m) if tile else 0
            self._plans[key] = TilePlan.make(height, width, tile=tile, overlap=overlap, multiple=m,
                                             radius=self.meta.receptive_radius, window=self.opt.window)
        return self._plans[key]

    def norm_mode(self, plan: TilePlan) -> str:
        """Statistics for this plan: each tile its own ("tile", also every full frame), "thumbnail" or
        "exact". Default when tiling a model with per-image statistics: exact where the torch module
        runs on the CPU (the full-frame result; measured faster and leaner than thumbnail tiles at
        4K, README), thumbnail elsewhere (exact moves every activation between host and device)."""
        if plan.full_frame or not self.meta.stats_width:
            return "tile"
        if self.opt.norm_stats:
            return self.opt.norm_stats
        torch_module = getattr(self.engine, "plain_module", None) is not None
        return "exact" if torch_module and not self.cuda else "thumbnail"

    def exact(self, plan: TilePlan) -> bool:
        """Layer-by-layer tiles (they need the torch module of a checkpoint)."""
        if self.norm_mode(plan) != "exact":
            return False
        if getattr(self.engine, "plain_module", None) is None:
            raise OptionError("--norm-stats exact runs the generator layer by layer and needs a checkpoint "
                              "(.pth/.safetensors) with --backend torch")
        return True

    def uses_thumbnail(self, plan: TilePlan) -> bool:
        return self.norm_mode(plan) == "thumbnail"

    def reset(self) -> None:
        """Forget the smoothed statistics (scene cut, new clip)."""
        self._stats = None

    def _thumbnail_stats(self, x: torch.Tensor) -> torch.Tensor:
        m = self.meta.size_multiple
        h, w = x.shape[-2:]
        scale = min(1.0, self.opt.thumbnail / max(h, w))
        th, tw = max(m, round_up(int(h * scale), m)), max(m, round_up(int(w * scale), m))
        thumb = torch.nn.functional.interpolate(x.float(), size=(th, tw), mode="area") if (th, tw) != (h, w) else x
        stats = self.engine.collect_stats(thumb)
        if self._stats is not None and self.opt.stats_ema > 0:
            stats = self.opt.stats_ema * self._stats + (1 - self.opt.stats_ema) * stats
        self._stats = stats
        return stats

    def _tick(self, stage: str, t0: float) -> float:
        if self.cuda:
            torch.cuda.synchronize(self.engine.device)
        t1 = time.perf_counter()
        self.times[stage] += t1 - t0
        self.last[stage] = t1 - t0
        return t1

    def yuv_ready(self, height: int, width: int) -> bool:
        """Whether frames of this size can take the YUV frame path: a whole-frame plan with no
        thumbnail statistics, an RGB -> RGB model, and the conversion kernels runnable here."""
        plan = self.plan(height, width)
        return (plan.full_frame and self.meta.in_channels == 3 and self.meta.out_channels == 3
                and plan.padded == (height, width) and _triton_available())

    def submit_planes(self, planes: tuple[np.ndarray, ...], fmt: dict, tag=None) -> list[tuple]:
        """The YUV frame path: decoded planes -> translated planes of the same format, converted on
        the engine's device in one kernel each way (``kernels.yuv``: the stream's matrix, range and
        bit depth in ``fmt``). No swscale. Like ``submit``: returns the frames finished meanwhile as
        (tag, planes), in order; ``flush()`` the rest.

        On CUDA the copies overlap the model: planes go up from pinned buffers on a copy stream,
        the compute stream waits for that upload (an event), converts, infers and converts back,
        and the copy stream waits for that (an event) to bring the planes down into pinned buffers,
        while the next frame is staged and started. ``PLANE_DEPTH`` frames are in flight, each with
        its own buffers; a frame's buffers are reused only after its result was collected."""
        from kernels.yuv import rgb_to_yuv, yuv_to_rgb
        done = []
        while len(self._pending) >= PLANE_DEPTH:
            done.append(self._finish())
        slot = self._turn % PLANE_DEPTH
        self._turn += 1
        dev, cuda = self.engine.device, self.cuda
        if cuda and self._copy_stream is None:
            self._copy_stream = torch.cuda.Stream(dev)
        compute = torch.cuda.current_stream(dev) if cuda else None
        marks = _Marks(cuda)
        staged = [self._stage(p, ("up", slot, i)) for i, p in enumerate(planes)]
        with _on(self._copy_stream):
            marks.mark("start", self._copy_stream)
            dev_planes = [s.to(dev, non_blocking=True) for s in staged]
            uploaded = marks.mark("uploaded", self._copy_stream)
        if cuda:
            compute.wait_event(uploaded)
            for p in dev_planes:  # made on the copy stream, used on the compute stream
                p.record_stream(compute)
        lo, hi = self.meta.input_range
        fmt_layout = getattr(self.engine, "memory_format", torch.contiguous_format)
        x = yuv_to_rgb(*dev_planes, lo=lo, hi=hi, dtype=self._wire_dtype(), memory_format=fmt_layout, **fmt)
        marks.mark("converted", compute)
        y = self.engine.infer(x.to(self.engine.dtype))
        marks.mark("inferred", compute)
        olo, ohi = self.meta.output_range
        # (encoding sites chroma as swscale encodes the CPU path's RGB frames, whatever the input's site)
        out = rgb_to_yuv(y, lo=olo, hi=ohi, **{k: v for k, v in fmt.items() if k != "site"})
        computed = marks.mark("computed", compute)
        if cuda:
            self._copy_stream.wait_event(computed)
        with _on(self._copy_stream):
            hosts = []
            for i, p in enumerate(out):
                hosts.append(self._stage(p, ("down", slot, i)).copy_(p, non_blocking=True))
                if cuda:
                    p.record_stream(self._copy_stream)
            marks.mark("downloaded", self._copy_stream)

        def finish() -> tuple[np.ndarray, ...]:
            marks.wait("downloaded")
            for stage, (a, b) in (("preprocess", ("start", "converted")), ("infer", ("converted", "inferred")),
                                  ("postprocess", ("inferred", "downloaded"))):
                self.times[stage] += marks.seconds(a, b)
            self.frames += 1
            # copies: the encoder thread keeps them while the buffers take a later frame
            return tuple(h.numpy().copy().view(np.uint16 if h.dtype == torch.int16 else np.uint8) for h in hosts)
        self._pending.append((tag, finish))
        return done

    def _wire_dtype(self) -> torch.dtype:
        """The dtype converted frames are written in (the engine's, or fp32 for bf16 engines)."""
        return self.engine.dtype if self.engine.dtype in (torch.float16, torch.float32) else torch.float32

    def _stage(self, like, slot) -> torch.Tensor:
        """A pinned host buffer (plain memory off CUDA) shaped like a plane, reused per slot (any
        key); an upload slot is filled from the numpy plane."""
        is_np = isinstance(like, np.ndarray)
        dtype = (torch.uint8 if like.dtype == np.uint8 else torch.int16) if is_np else like.dtype
        buf = self._staging.get(slot)
        if buf is None or buf.shape != tuple(like.shape) or buf.dtype != dtype:
            buf = torch.empty(tuple(like.shape), dtype=dtype, pin_memory=self.cuda)
            self._staging[slot] = buf
        if is_np:
            buf.numpy().view(like.dtype)[...] = like
        return buf

    def _host_in(self, rgb: np.ndarray) -> np.ndarray:
        """A whole frame as the host engine's numpy input: the references' arithmetic (scale and
        offset in fp32), padded like the torch path."""
        h, w = rgb.shape[:2]
        ph, pw = self.plan(h, w).padded
        lo, hi = self.meta.input_range
        if (ph, pw) != (h, w):
            mode = "reflect" if _reflects(h, w, ph, pw) else "edge"
            rgb = np.pad(rgb, ((0, ph - h), (0, pw - w), (0, 0)), mode=mode)
        x = np.empty((1, rgb.shape[2], ph, pw), np.float32)
        np.multiply(rgb.transpose(2, 0, 1), np.float32((hi - lo) / 255.0), out=x[0], dtype=np.float32)
        x += np.float32(lo)
        return x

    def _host_out(self, y: np.ndarray, h: int, w: int) -> np.ndarray:
        """The host engine's output -> uint8 HWC (clamp, round half to even, like the references)."""
        olo, ohi = self.meta.output_range
        v = y[0, :, :h, :w]
        v = (v - np.float32(olo)) * np.float32(255.0 / (ohi - olo))
        planes = np.rint(np.clip(v, 0, 255, out=v), out=v).astype(np.uint8)
        self.frames += 1
        if len(planes) == 1:
            return np.ascontiguousarray(np.broadcast_to(planes[0][..., None], (h, w, 3)))
        import cv2  # interleaving planes: 0.9 ms a 640x360 frame against numpy's 2.4 (a strided copy)
        return cv2.merge(list(planes))

    def _host_frame(self, rgb: np.ndarray, t: float) -> np.ndarray:
        x = self._host_in(rgb)
        t = self._tick("preprocess", t)
        y = self.engine.run_host(x)
        t = self._tick("infer", t)
        out = self._host_out(y, *rgb.shape[:2])
        self._tick("postprocess", t)
        return out

    def overlaps(self, h: int, w: int) -> bool:
        """Whether ``submit`` overlaps frames of this size (whole RGB frames on a host engine)."""
        return self.engine.host and self.meta.in_channels == 3 and self.plan(h, w).full_frame

    def submit(self, rgb: np.ndarray, tag=None) -> list[tuple]:
        """Start translating ``rgb``; returns the frames finished meanwhile as (tag, output), in
        the order they were submitted. Whole frames on a host engine overlap (``start_host``: up to
        ``engine.inflight`` at once); everything else finishes at once. ``flush()`` returns the rest."""
        h, w = rgb.shape[:2]
        self.prepare(h, w)
        if not self.overlaps(h, w):
            return self.flush() + [(tag, self(rgb))]
        # frames of another size (a folder of images) finish first: each size has its own requests
        done = self.flush() if self._pending and self._pending_size != (h, w) else []
        self._pending_size = (h, w)
        while len(self._pending) >= self.engine.inflight:  # its request is the one to reuse
            done.append(self._finish())
        t = time.perf_counter()
        x = self._host_in(rgb)
        t = self._tick("preprocess", t)
        result = self.engine.start_host(x)
        self._tick("infer", t)

        def finish() -> np.ndarray:
            t = time.perf_counter()
            y = result()
            t = self._tick("infer", t)
            out = self._host_out(y, h, w)
            self._tick("postprocess", t)
            return out
        self._pending.append((tag, finish))
        return done

    def _finish(self) -> tuple:
        tag, finish = self._pending.popleft()
        return tag, finish()

    def flush(self) -> list[tuple]:
        """The frames still in flight, finished, as (tag, output)."""
        return [self._finish() for _ in range(len(self._pending))]

    def prepare(self, h: int, w: int) -> None:
        """Before the first frame: the backend choice for whole frames of this size is recalled, or
        made where a probe can make it (FastestEngine.decide), so a host winner gets numpy frames
        from the start and a remembered winner's rivals are never opened."""
        if not self.frames and hasattr(self.engine, "decide"):
            m = self.meta.size_multiple
            self.engine.decide((1, self.meta.in_channels, round_up(h, m), round_up(w, m)))

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        self.prepare(h, w)  # (a first frame's backend choice is not this frame's preprocessing)
        t = time.perf_counter()
        if self.meta.in_channels == 1:
            rgb = rgb.mean(axis=2, keepdims=True).round().astype(np.uint8)
        plan = self.plan(h, w)
        if self.engine.host and plan.full_frame:
            return self._host_frame(rgb, t)
        lo, hi = self.meta.input_range
        frame = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.engine.device)
        ph, pw = plan.padded
        wire = self._wire_dtype()
        x = self.ops.preprocess(frame, dtype=wire, lo=lo, hi=hi).to(self.engine.dtype)
        if (ph, pw) != (h, w):
            mode = "reflect" if _reflects(h, w, ph, pw) else "replicate"
            x = torch.nn.functional.pad(x.float(), (0, pw - w, 0, ph - h), mode=mode).to(self.engine.dtype)
        t = self._tick("preprocess", t)
        stats = self._thumbnail_stats(x) if self.uses_thumbnail(plan) else None
        t = self._tick("stats", t)
        olo, ohi = self.meta.output_range
        if plan.full_frame or self.exact(plan):
            if plan.full_frame:
                y = self.engine.infer(x, stats)
            else:  # layer by layer on host activations, convolutions in tile-sized blocks
                from engines.streamed import exact_tiled
                y = exact_tiled(self.engine.plain_module, x, max(plan.tile), self.engine.device)
                y = y.to(self.engine.device, torch.float32)
            t = self._tick("infer", t)
            out = self.ops.postprocess(y[..., :h, :w], lo=olo, hi=ohi)
        else:
            th, tw = plan.tile
            outs = []
            step = min(self.opt.batch, self.meta.max_batch or self.opt.batch)  # a fixed-batch graph
            for i in range(0, len(plan.boxes), step):
                boxes = plan.boxes[i:i + step]
                batch = torch.stack([x[0, :, y0:y0 + th, x0:x0 + tw] for y0, x0 in boxes])
                outs.append(self.engine.infer(batch, stats))
            tiles = torch.cat(outs)
            t = self._tick("infer", t)
            windows = plan.windows.to(tiles.device)
            out = self.ops.blend_tiles(tiles, windows, list(plan.boxes), ph, pw, lo=olo, hi=ohi)[:h, :w]
        if out.shape[-1] == 1:
            out = out.expand(-1, -1, 3)
        result = out.cpu().numpy()
        self._tick("postprocess", t)
        self.frames += 1
        return np.ascontiguousarray(result)


def _reflects(h: int, w: int, ph: int, pw: int) -> bool:
    """Whether padding (h, w) up to (ph, pw) can mirror the frame (less than a frame's worth);
    otherwise the edge is repeated."""
    return ph - h < h and pw - w < w


def _triton_available() -> bool:
    import kernels
    return kernels.triton_available()


PLANE_DEPTH = 2  # YUV-path frames in flight: one computing while the next is staged and uploaded


def _on(stream):
    """``torch.cuda.stream(stream)``, or nothing off CUDA."""
    from contextlib import nullcontext
    return torch.cuda.stream(stream) if stream is not None else nullcontext()


class _Marks:
    """Named points of one frame's work: CUDA events recorded on a stream (read once the last has
    completed), or wall-clock times where the work ran synchronously."""

    def __init__(self, cuda: bool):
        self.cuda, self.at = cuda, {}

    def mark(self, name: str, stream):
        if not self.cuda:
            self.at[name] = time.perf_counter()
            return None
        event = torch.cuda.Event(enable_timing=True)
        event.record(stream)
        self.at[name] = event
        return event

    def wait(self, name: str) -> None:
        if self.cuda:
            self.at[name].synchronize()

    def seconds(self, a: str, b: str) -> float:
        if self.cuda:
            return self.at[a].elapsed_time(self.at[b]) / 1000.0
        return self.at[b] - self.at[a]
