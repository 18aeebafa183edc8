"""Open any engine file by its suffix; generator checkpoints become torch (or OpenVINO) engines."""

from __future__ import annotations

import copy
import dataclasses
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engines.base import Engine, EngineMeta
from engines.cpuinfo import cpu_has_fast_bf16
from engines.lazy import torch  # imported on first use (engines/lazy.py)
from engines.precision import switchable

from ..errors import EngineError, InputError, OptionError
from ..media.files import file_identity

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".safetensors")


def generator_meta(model: torch.nn.Module) -> EngineMeta:
    """Engine metadata of a loaded generator (architecture, ranges, size multiple, radius)."""
    from engines.receptive import receptive_radius
    info = model.info
    return EngineMeta(arch=info.arch, input_range=tuple(info.input_range),
                      output_range=(-1.0, 1.0), in_channels=info.input_nc, out_channels=info.output_nc,
                      size_multiple=info.size_multiple, receptive_radius=receptive_radius(model),
                      extra={"name": info.name, "direction": info.direction, "norm": info.norm,
                             "ngf": info.ngf, "depth": info.depth})


def parse_range(text: str | None) -> tuple[float, float] | None:
    """'0,1' -> (0.0, 1.0); a clear error for anything else."""
    if text is None:
        return None
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise OptionError(f"--range {text!r}: expected LO,HI such as -1,1 or 0,1") from None
    if not lo < hi:
        raise OptionError(f"--range {text!r}: LO must be below HI")
    return lo, hi


BACKEND_CHOICES = ("auto", "torch", "openvino", "onnxruntime")


def _cuda_possible() -> bool:
    """False where no CUDA device can be (no NVIDIA driver on Linux, macOS), known without torch."""
    if sys.platform.startswith("linux"):
        return any(os.path.exists(p) for p in ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/dxg"))
    return sys.platform != "darwin"


def _on_cpu(device) -> bool:
    """Whether ``device`` (None: CUDA if there is a GPU) is the CPU; torch loads only to ask a driver."""
    if device is not None:
        return str(device).split(":")[0] == "cpu"
    return not _cuda_possible() or not torch.cuda.is_available()


def _graph_on_cpu(device) -> bool:
    """Where an ONNX graph runs: the CPU unless a CUDA device is named, or ONNX Runtime has its
    CUDA provider and a GPU is there."""
    if device is None:
        import onnxruntime as ort
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return True
    return _on_cpu(device)


class _Checkpoint:
    """A checkpoint file, loaded only when something needs the module. What the engines need
    without it (metadata, statistics width) is kept in the cache beside the exported graphs, keyed
    by the file's bytes and the load options, so a run that a remembered choice sends to OpenVINO
    never loads torch."""

    def __init__(self, path: Path, opts: dict):
        import json

        from engines.base import file_sha256, sha256
        from engines.cache import cache_dir, read_json, write_json

        from .. import __version__
        self.path, self.opts = path, opts
        load = f"{opts.get('arch')}|{opts.get('bn_stats', 'batch')}"
        self.tag = sha256(f"{file_sha256(path)}|{load}".encode())[:20]
        self._module = None
        facts = cache_dir("onnx") / f"{self.tag}-facts-{__version__}.json"  # (a release may derive them anew)
        d = read_json(facts)
        if not isinstance(d, dict) or "meta" not in d:
            from engines.normstats import stats_width
            d = {"meta": json.loads(generator_meta(self.module).to_json()), "stats_width": stats_width(self.module)}
            write_json(facts, d)
        self.meta, self.stats_width = EngineMeta.from_dict(d["meta"]), d["stats_width"]

    @property
    def module(self) -> torch.nn.Module:
        if self._module is None:
            from .checkpoints import load_generator
            self._module = load_generator(self.path, arch=self.opts.get("arch"),
                                          bn_stats=self.opts.get("bn_stats", "batch"),
                                          dropout=self.opts.get("dropout", False))
        return self._module

    def onnx(self, stats: bool = True) -> Path:
        """The checkpoint exported to ONNX once, kept in the cache; ``stats=False``: the plain graph
        (image -> output, one InstanceNormalization op a norm)."""
        from engines.cache import cache_dir, entry
        onnx_path = cache_dir("onnx") / f"{self.tag}{'' if stats else '-plain'}.onnx"

        def export(tmp: Path) -> dict:
            from engines.export import export_onnx
            export_onnx(self.module, tmp, dataclasses.replace(self.meta), stats=stats)
            return {"source": str(self.path)}
        entry(onnx_path, export)
        return onnx_path


def _open_checkpoint(path: Path, device, opts: dict) -> Engine:
    backend = opts.get("backend") or "auto"
    ckpt = _Checkpoint(path, opts)
    meta = ckpt.meta
    if opts.get("input_range"):
        meta.input_range = meta.output_range = opts["input_range"]
    # OpenVINO runs the exported graph: deterministic, fp32 or bf16; not for dropout or a forced precision
    can_ov = _on_cpu(device) and not opts.get("dropout") and not opts.get("compile") \
        and (opts.get("precision") or "auto") in ("auto", "fp32", "bf16")
    if backend == "openvino" and not can_ov:
        raise OptionError("--backend openvino runs on the CPU without --dropout or --compile")

    def torch_engine(**kw) -> Engine:  # on its own copy: bf16 / fusing convert the module in place
        from engines.torch_backend import TorchEngine
        kw = {"compile": opts.get("compile", False), **kw}

        def at(precision: str) -> Engine:
            return TorchEngine(copy.deepcopy(ckpt.module), dataclasses.replace(meta), device=device,
                               precision=precision, **kw)
        return switchable(at, opts.get("precision"), _cpu_reduced() if _on_cpu(device) else "fp16")

    def openvino_engine() -> Engine:
        from engines.openvino_backend import OpenVINOEngine

        def at(precision: str) -> Engine:
            eng = OpenVINOEngine(ckpt.onnx(stats=False), device="cpu", precision=precision,
                                 stats_width=ckpt.stats_width, stats_graph=ckpt.onnx)
            eng.meta = dataclasses.replace(meta, backend=eng.meta.backend, precision=eng.meta.precision,
                                           stats_width=eng.meta.stats_width)
            return eng
        return switchable(at, opts.get("precision"), _cpu_reduced())

    if backend == "openvino":
        return openvino_engine()
    key = f"{path.resolve()}:{path.stat().st_mtime_ns}|{opts.get('precision')}|{opts.get('arch')}|" \
          f"{opts.get('bn_stats', 'batch')}"
    reference = _fp32_reference(ckpt)
    if backend == "auto" and can_ov:
        from engines.fastest import FastestEngine
        from engines.metrics import PROBE_SIDE
        return FastestEngine({"openvino": openvino_engine, "torch": torch_engine}, key=key, probe_side=PROBE_SIDE,
                             probe_decides=False, reference=reference)
    if backend == "auto" and not _on_cpu(device) and not opts.get("compile") and not opts.get("dropout"):
        # CUDA: the fused generator in either layout, and torch.compile unless the caller must start
        # fast (the live filter): measured on the first batch, remembered per model, size and GPU
        from engines.fastest import FastestEngine
        candidates = {"torch-fused-nhwc": lambda: torch_engine(layout="nhwc"),
                      "torch-fused-nchw": lambda: torch_engine(layout="nchw")}
        if opts.get("measure_compile", True):
            candidates["torch-compile"] = lambda: torch_engine(compile=True)
        return FastestEngine(candidates, key=key, reference=reference)
    return torch_engine()


def _fp32_reference(ckpt: "_Checkpoint"):
    """x -> the checkpoint's fp32 eager output on x's device: what every automatic candidate's
    picture is checked against (a copy of the module per device, made on first use)."""
    copies = {}

    def reference(x):
        t = torch.from_numpy(x) if isinstance(x, np.ndarray) else x
        if t.device not in copies:
            copies[t.device] = copy.deepcopy(ckpt.module).float().to(t.device).eval()
        with torch.inference_mode():
            return copies[t.device](t.float())
    return reference


def _open_onnx(path: Path, device, opts: dict) -> Engine:
    from engines.layout import nchw_graph
    from engines.onnx_backend import OnnxEngine
    from engines.onnx_stats import with_norm_stats
    backend = opts.get("backend") or "auto"
    path, transposed = nchw_graph(path)  # a channels-last (TensorFlow) graph: fed and read NCHW
    given = path
    path, layers = with_norm_stats(path)  # third-party instance norm: statistics exposed
    kw = dict(input_range=opts.get("input_range"), consts=opts.get("consts"))

    def ort_engine() -> Engine:
        return OnnxEngine(path, device=device, **kw)

    def openvino_engine() -> Engine:  # plain frames run the fusable graph, statistics the rewritten one
        from engines.onnx_stats import plain_graph
        from engines.openvino_backend import OpenVINOEngine
        precision = opts.get("precision") or "auto"
        plain, width = plain_graph(given, opts.get("consts"))

        def at(precision: str) -> Engine:
            return OpenVINOEngine(plain, device=device, precision=precision,
                                  stats_graph=(lambda: path) if layers else None, stats_width=width, **kw)
        return switchable(at, "auto" if precision == "fp16" else precision, _cpu_reduced())

    beside = False
    if backend == "openvino":
        engine = openvino_engine()
    elif backend == "auto" and _graph_on_cpu(device):
        from engines.fastest import FastestEngine, remembered
        from engines.metrics import PROBE_SIDE
        key = f"{given.resolve()}:{given.stat().st_mtime_ns}|{opts.get('precision')}"
        beside = not remembered(key)  # ONNX Runtime will be timed: it opens beside OpenVINO's probes
        engine = FastestEngine({"openvino": openvino_engine,
                                "onnxruntime": _opened_beside(ort_engine, path, kw) if beside else ort_engine},
                               host=True, key=key, probe_side=PROBE_SIDE)
    else:
        engine = ort_engine()
    if layers:
        engine.meta.extra = {**engine.meta.extra, "instance_norm_layers": layers, "statistics": "exposed"}
    if transposed:
        engine.meta.extra = {**engine.meta.extra, "layout": "channels-last (NHWC) graph, transposed to NCHW"}
    geometry = {"scale": _static_scale(path, engine.meta.shapes)} if engine.meta.shapes else None
    if not engine.meta.receptive_radius and not engine.meta.shapes:  # a third-party graph: what tiles need
        # measured on ONNX Runtime: by the candidate opened beside OpenVINO when there is one
        session = (lambda: engine.candidate("onnxruntime")) if beside else None
        geometry = _measured_geometry(path, engine.meta, kw, session)
        engine.meta.receptive_radius, engine.meta.size_multiple = geometry["radius"], geometry["multiple"]
    if geometry and geometry["scale"] != 1:
        engine.close()
        raise EngineError(f"{given}: the model's output is {geometry['scale']:g} times the size of its input (a "
                          "super-resolution model?); streamgan translates a picture at its own size",
                          hint="an image-to-image model whose output is its input's size")
    return engine


def _static_scale(path: Path, shapes: dict) -> float:
    """How many times its input's width a fixed-shape graph's output is, as the graph declares it
    (1 where it declares none); from the graph's metadata the cache keeps (no parse at each start)."""
    from engines.onnx_backend import read_onnx_meta
    out = read_onnx_meta(path).get("output_shape") or []
    width = out[-1] if len(out) == 4 else None
    return width / shapes["max"][1] if width else 1.0


def _opened_beside(open_ort: Callable[[], Engine], path: Path, kw: dict) -> Callable[[], Engine]:
    """Opens the ONNX Runtime candidate on a second thread, and measures the graph's geometry on it
    where the graph needs that, while OpenVINO compiles and checks its probes on this one (both
    libraries leave the GIL while they work; the second core is otherwise idle then). Returns the
    candidate's factory: it waits for that thread."""
    from concurrent.futures import ThreadPoolExecutor

    def work() -> Engine:
        engine = open_ort()
        if not engine.meta.receptive_radius and not engine.meta.shapes:
            _measured_geometry(path, engine.meta, kw, lambda: engine)
        return engine
    pool = ThreadPoolExecutor(1, thread_name_prefix="onnxruntime")
    opened = pool.submit(work)
    pool.shutdown(wait=False)
    return opened.result


def _measured_geometry(path: Path, meta: EngineMeta, kw: dict,
                       session: Callable[[], Engine] | None = None) -> dict:
    """Receptive radius and total stride of an ONNX graph by experiment (ONNX Runtime on the CPU:
    ``session()``, else a session of its own), cached by the graph's bytes. The radius is tried
    on a 128 px probe first (256 px when it reaches that probe's edge), the stride on the smallest
    images that radius allows: about a third of the pixels of 256 px probes throughout."""
    from engines.base import file_sha256
    from engines.cache import cache_dir, read_json, write_json
    store = cache_dir("onnx") / f"{file_sha256(path)[:20]}-geometry.json"
    probe = session() if session else None  # (a session opened on another thread may have measured it)
    known = read_json(store)
    if isinstance(known, dict) and "radius" in known and "scale" in known:
        return known
    from engines.onnx_backend import OnnxEngine
    from engines.receptive import measured_multiple, measured_radius
    probe = probe or OnnxEngine(path, device="cpu", **kw)
    fixed: dict = {}

    def run(x):  # with fixed statistics the effect of one pixel stays local
        if not probe.meta.stats_width:
            return probe.run_numpy(x)[0]
        if "stats" not in fixed:
            fixed["stats"] = probe.run_numpy(x)[1]
        return probe.run_numpy(x, fixed["stats"], 1.0)[0]
    try:
        c, value_range = meta.in_channels, meta.input_range
        scale = _scale(probe, c, value_range[0], meta.size_multiple)
        if scale != 1:  # (a super-resolution graph: no geometry of a picture kept at its size)
            facts = {"radius": 0, "multiple": meta.size_multiple, "scale": scale}
        else:
            radius = measured_radius(run, c, value_range, sides=(128, 256))
            facts = {"radius": radius, "multiple": measured_multiple(run, c, value_range, radius=radius), "scale": 1}
    except Exception:  # a graph that will not run on a small probe: tile without the facts
        return {"radius": 0, "multiple": meta.size_multiple, "scale": 1}
    finally:
        if not session:
            probe.close()
    write_json(store, {**facts, "source": str(path)})
    return facts


def _scale(probe: Engine, channels: int, value: float, multiple: int) -> float:
    """How many times its input's size a graph's output is, on the smallest flat probe it runs on
    (1 where it runs on none; its own statistics, not ``_measured_geometry``'s fixed ones)."""
    for side in sorted({max(64, multiple or 1), 128, 256}):
        try:
            return probe.run_numpy(np.full((1, channels, side, side), value, np.float32))[0].shape[-1] / side
        except Exception:  # (too small for its downsamplings: the next)
            continue
    return 1.0


def _open_xml(path: Path, device, opts: dict) -> Engine:
    from engines.openvino_backend import OpenVINOEngine
    return switchable(lambda precision: OpenVINOEngine(path, device=device, input_range=opts.get("input_range"),
                                                       consts=opts.get("consts"), precision=precision),
                      opts.get("precision"), _cpu_reduced())


def _cpu_reduced() -> str | None:
    """The reduced precision OpenVINO or torch may choose on this CPU (bf16 where it is native)."""
    return "bf16" if cpu_has_fast_bf16() else None


def _open_pt2(path: Path, device, opts: dict) -> Engine:
    from engines.aoti_backend import AOTIEngine
    return AOTIEngine(path, device=device)


def _open_plan(path: Path, device, opts: dict) -> Engine:
    from engines.tensorrt_backend import TensorRTEngine
    return TensorRTEngine(path, device=device)


BACKENDS: dict[str, Callable[[Path, object, dict], Engine]] = {
    **{s: _open_checkpoint for s in CHECKPOINT_SUFFIXES},
    ".onnx": _open_onnx, ".xml": _open_xml, ".pt2": _open_pt2, ".plan": _open_plan, ".engine": _open_plan,
}


# which --backend values each engine file takes
_TAKES = {**{s: ("auto", "torch", "openvino") for s in CHECKPOINT_SUFFIXES},
          ".onnx": ("auto", "openvino", "onnxruntime"), ".xml": ("auto", "openvino"), ".pt2": ("auto",),
          ".plan": ("auto",), ".engine": ("auto",)}


def check_engine(path: str | Path, backend: str | None = "auto") -> Path:
    """An engine file that exists, of a kind streamgan opens, with a ``--backend`` it takes;
    checked before any work (one line otherwise)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such engine or checkpoint")
    suffix = path.suffix.lower()
    if suffix not in BACKENDS:
        raise EngineError(f"{path}: unknown engine type {path.suffix!r}", hint=f"expected one of {', '.join(BACKENDS)}")
    backend = backend or "auto"
    if backend not in _TAKES[suffix]:
        kinds = [s for s, takes in _TAKES.items() if backend in takes]
        raise OptionError(f"--backend {backend} takes {', '.join(kinds)} files, not {path.name}")
    return path


def open_engine(path: str | Path, device: str | torch.device | None = None, **opts) -> Engine:
    """The engine for ``path``: .plan TensorRT, .onnx ONNX Runtime or OpenVINO, .xml OpenVINO,
    .pt2 AOTInductor, .pth/.safetensors torch (or OpenVINO on the exported graph).

    opts: backend (auto: on the CPU the measured fastest of torch/OpenVINO for checkpoints and of
    OpenVINO/ONNX Runtime for .onnx), arch, bn_stats, dropout, precision and compile (torch),
    input_range, consts (ONNX).
    """
    path = check_engine(path, opts.get("backend"))
    engine = BACKENDS[path.suffix.lower()](path, device, opts)
    # what a verdict on content (streamgan/translate/content_check.py) is remembered under
    engine.model_key = f"{file_identity(path)}|{sorted(opts.items())}"
    return engine
