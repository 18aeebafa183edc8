"""OpenVINO engine: ONNX models and OpenVINO IR (.xml + .bin) on the CPU.

The graph is compiled once per input shape (a static shape lets the CPU plugin pick its fastest
convolution kernels) and the compiled model is kept under ``$STREAMGAN_CACHE/openvino``: exported
and imported by this module rather than by OpenVINO's CACHE_DIR, which writes its blobs in place
and maps them in (a process that read a blob another was still writing died with SIGBUS).
Precision "auto" runs bf16 where the CPU has native bf16 and a probe on an image-like input stays
>= 40 dB from f32, else f32; the probe's verdict is cached per model and OpenVINO version.
"""

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .base import Engine, file_sha256, sha256
from .cache import cache_dir, locked, read_json, update_json, write_bytes
from .errors import EngineError
from .onnx_backend import Binding, GraphInput, bind_inputs, graph_meta, read_onnx_meta, stats_feed
from .onnx_stats import MIX_IN, STATS_IN, STATS_OUT

PRECISIONS = {"fp32": "f32", "bf16": "bf16"}
_BF16_MIN_PSNR = 40.0
_MAX_INFLIGHT = 4  # frames in flight at most on a many-core CPU (latency and memory stay bounded)


def _core():
    import openvino as ov
    return ov, ov.Core()


def _check_ir(path: Path) -> None:
    """A clear error for a corrupt or incomplete IR before OpenVINO tries every frontend on it."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise EngineError(f"{path}: not a readable OpenVINO IR ({exc.__class__.__name__}: {exc})") from None
    if root.tag != "net":
        raise EngineError(f"{path}: not an OpenVINO IR (root element <{root.tag}>, expected <net>)")
    if not path.with_suffix(".bin").exists():
        raise EngineError(f"{path}: its weights {path.with_suffix('.bin').name} are missing")


def read_ir_meta(path: Path) -> dict:
    """The streamgan metadata stored in an IR's rt_info (or a description of its inputs)."""
    _check_ir(path)
    _, core = _core()
    model = _read(core, path)
    d = json.loads(model.get_rt_info("streamgan").astype(str)) if model.has_rt_info("streamgan") \
        else {"arch": "third-party openvino"}
    d["inputs"] = [i.get_any_name() for i in model.inputs]
    d["outputs"] = [o.get_any_name() for o in model.outputs]
    return d


def _read(core, path: Path):
    try:
        return core.read_model(str(path))
    except Exception as exc:
        msg = str(exc)
        ops = re.search(r"No conversion rule found for operations: ([^\n]+)", msg)
        lines = [ln for ln in msg.splitlines() if ln.strip() and not ln.startswith(("Exception from", "Check '"))]
        what = f"unsupported operator {ops.group(1).strip()}" if ops else (lines or ["?"])[0][:200]
        raise EngineError(f"{path}: OpenVINO cannot read this model ({what})") from None


def save_ir(onnx_path: Path, xml_path: Path, meta_json: str) -> None:
    """ONNX -> OpenVINO IR at ``xml_path`` (+ .bin), fp32 weights, streamgan metadata in rt_info."""
    ov, _ = _core()
    model = ov.convert_model(str(onnx_path))
    model.set_rt_info(meta_json, "streamgan")
    ov.save_model(model, str(xml_path), compress_to_fp16=False)


# A KxK convolution with a few output channels (a generator's RGB output layer) leaves most of the
# CPU plugin's output-channel vector lanes empty: 32 -> 3 channels 7x7 at 640x360 took 13.8 ms
# of ResNet-6 ngf32's 88 ms in bf16, as long as 32 -> 16 channels. Split as a Kx1 convolution with
# K times the outputs (one per column offset) and a grouped 1xK convolution that adds the shifted
# columns, it took 7.6 ms. Measured on single layers at 640x360 (2-core EPYC, bf16): 2x faster
# from 32 in-channels x 7 up; no gain below about 64 in-channels x kernel width.
_SPLIT_MAX_OUT = 4
_SPLIT_MIN_DEPTH = 64


def split_narrow_convs(model, ops) -> int:
    """Rewrites ``model`` (an ov.Model) in place: each stride-1, undilated KxK convolution with
    constant weights, at most ``_SPLIT_MAX_OUT`` outputs and in-channels x K >= ``_SPLIT_MIN_DEPTH``
    becomes the equivalent Kx1 convolution to out x K channels and a grouped 1xK convolution whose
    one-hot weights sum each output's K shifted columns. Returns how many were split."""
    split = 0
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Convolution" or op.input_value(1).get_node().get_type_name() != "Constant":
            continue
        w = op.input_value(1).get_node().get_data()
        a = op.get_attributes()
        if w.ndim != 4 or w.dtype != np.float32 or a["auto_pad"] not in ("explicit", "notset"):
            continue
        oc, ic, kh, kw = w.shape
        if oc > _SPLIT_MAX_OUT or kw < 3 or ic * kw < _SPLIT_MIN_DEPTH or a["strides"] != [1, 1] \
                or a["dilations"] != [1, 1]:
            continue
        columns = np.ascontiguousarray(w.transpose(0, 3, 1, 2).reshape(oc * kw, ic, kh, 1))  # [o*K+dx, c, dy]
        onehot = np.zeros((oc, 1, kw, 1, kw), np.float32)  # group o, column dx, tap dx
        onehot[:, 0, np.arange(kw), 0, np.arange(kw)] = 1
        cols = ops.convolution(op.input_value(0), ops.constant(columns), [1, 1], a["pads_begin"], a["pads_end"],
                               [1, 1])
        out = ops.group_convolution(cols, ops.constant(onehot), [1, 1], [0, 0], [0, 0], [1, 1])
        out.set_friendly_name(op.get_friendly_name())
        op.output(0).replace(out.output(0))
        split += 1
    return split


def plain_model(model, width: int):
    """A copy of ``model`` (an ov.Model with the statistics inputs and output of
    ``onnx_stats.expose_norm_stats`` or an exported StatsGenerator) for per-image inference: the
    mix fixed at 0 and the given statistics at zeros, as constants, and ``own_stats`` no longer an
    output. The CPU plugin folds the branches that are then constant or unused away at compile:
    a graph rewritten by ``expose_norm_stats`` runs as fast as the graph it was made from (its
    selects pick the original normalisation when the mix is 0)."""
    import openvino as ov
    ops = ov.opset13
    m = model.clone()
    fixed = {MIX_IN: np.zeros(1, np.float32), STATS_IN: np.zeros((1, width), np.float32)}
    for p in list(m.get_parameters()):
        names = p.output(0).get_names()
        value = next((v for n, v in fixed.items() if n in names), None)
        if value is None:
            continue
        for target in list(p.output(0).get_target_inputs()):
            target.replace_source_output(ops.constant(value).output(0))
        m.remove_parameter(p)
    for r in list(m.get_results()):
        if STATS_OUT in r.input_value(0).get_names():
            m.remove_result(r)
    m.validate_nodes_and_infer_types()
    return m


def _static(dims, fill) -> list[int]:
    return [d if d is not None else f for d, f in zip(dims, fill)]


@dataclass
class _Graph:
    """One graph the engine runs: the model, how to feed it, its output names."""

    model: object
    binding: Binding
    outputs: list[str]
    digest: str  # of the file it was read from


class OpenVINOEngine(Engine):
    """Runs an ONNX or IR graph with OpenVINO on the CPU. precision: auto, fp32 or bf16.
    A host engine: whole frames come as numpy arrays (``run_host``), no torch involved.

    ``stats_graph`` (with ``stats_width``): where the same model with statistics inputs/outputs
    is, for a ``path`` graph without them (``onnx_stats.plain_graph``, a plain checkpoint export);
    opened at the first call that gives or collects statistics. Plain calls run ``path``. A
    ``path`` graph that has statistics inputs/outputs itself (an IR from ``streamgan build``) runs
    plain calls on a copy specialised for its own statistics (``plain_model``).
    """

    host = True

    def __init__(self, path: str | Path, device=None, input_range: tuple[float, float] | None = None,
                 consts: dict | None = None, precision: str = "auto", threads: int = 0,
                 stats_graph: Callable[[], Path] | None = None, stats_width: int = 0):
        path = Path(path)
        if device is not None and str(device).split(":")[0] != "cpu":
            raise EngineError(f"the OpenVINO backend runs on the CPU, not {device}",
                              hint="use --backend onnxruntime or a .plan for a GPU")
        if precision not in ("auto", *PRECISIONS):
            raise EngineError(f"precision {precision!r} is not supported by OpenVINO", hint="use auto, fp32 or bf16")
        self.ov, self.core = _core()
        info = read_ir_meta(path) if path.suffix.lower() == ".xml" else read_onnx_meta(path)
        self.consts = consts
        graph = self._load(path)
        self.meta = graph_meta(path, info, graph.binding, input_range, "openvino")
        self.stats_graph = None
        if graph.binding.stats_io:
            self.graphs = {True: graph, False: self._load(path, plain_model(graph.model, self.meta.stats_width))}
        else:
            self.graphs = {False: graph}
            self.stats_graph = stats_graph
            if stats_graph is not None:
                self.meta.stats_width = stats_width
        self.binding = self.graphs[False].binding
        self.config = {"PERFORMANCE_HINT": "LATENCY"}
        if threads:
            self.config["INFERENCE_NUM_THREADS"] = threads
        self.key = f"{file_sha256(path)[:16]}-{self.ov.get_version()}-split{_SPLIT_MIN_DEPTH}"
        self._compiled: dict[tuple, object] = {}
        if precision == "auto":
            precision = self._auto_precision()
        self.meta.precision = precision
        self._streams: dict[tuple, list] = {}  # frame shape -> asynchronous requests (start_host)
        self._turn = 0

    def _load(self, path: Path, model=None) -> _Graph:
        """The graph in ``path`` (or ``model``, derived from it), made ready to compile."""
        derived = model is not None
        model = model if derived else _read(self.core, path)
        split_narrow_convs(model, self.ov.opset13)
        inputs = [GraphInput(i.get_any_name(),
                             [d.get_length() if d.is_static else None for d in i.get_partial_shape()],
                             np.float16 if i.get_element_type() == self.ov.Type.f16 else np.float32)
                  for i in model.inputs]
        return _Graph(model, bind_inputs(path, inputs, self.consts), [o.get_any_name() for o in model.outputs],
                      file_sha256(path) + ("-plain" if derived else ""))

    def _graph(self, with_stats: bool) -> _Graph:
        """The graph for a call that gives or collects statistics (``with_stats``) or not."""
        if not with_stats or (True not in self.graphs and self.stats_graph is None):
            return self.graphs[False]
        if True not in self.graphs:
            self.graphs[True] = self._load(Path(self.stats_graph()))
        return self.graphs[True]

    def _compile(self, graph: _Graph, x_shape, precision: str, throughput: bool = False):
        """``graph`` compiled for inputs shaped like ``x_shape`` (one latency-mode request, or the
        compiled model for throughput streams); from the cache when compiled here before."""
        image = graph.binding.image
        shapes = {image.name: _static(image.shape, x_shape)}
        if graph.binding.stats_io:
            shapes.update(norm_stats=[x_shape[0], self.meta.stats_width], stats_mix=[1])
        config = {**self.config, "INFERENCE_PRECISION_HINT": PRECISIONS[precision]}
        if throughput:
            config["PERFORMANCE_HINT"] = "THROUGHPUT"
        compiled = self._cached(graph, shapes, config)
        return compiled if throughput else compiled.create_infer_request()

    def _cached(self, graph: _Graph, shapes: dict, config: dict):
        """The compiled model, imported from the cache or compiled (by one process at a time:
        the others wait, then import it) and exported there. The key: the graph's bytes, shapes,
        settings, OpenVINO's version and this CPU. A blob that will not import is compiled anew."""
        from .fastest import machine_tag
        key = json.dumps([graph.digest, _SPLIT_MIN_DEPTH, shapes, config, self.ov.get_version(), machine_tag()],
                         sort_keys=True)
        blob = cache_dir("openvino") / f"{sha256(key.encode())[:32]}.blob"
        compiled = self._import(blob, config)
        if compiled is not None:
            return compiled
        with locked(blob):
            compiled = self._import(blob, config)
            if compiled is not None:
                return compiled
            model = graph.model.clone()
            model.reshape(shapes)
            try:
                compiled = self.core.compile_model(model, "CPU", config)
            except Exception as exc:
                raise EngineError(f"OpenVINO cannot compile this model for {shapes} "
                                  f"({str(exc).splitlines()[-1][:160]})") from None
            try:
                write_bytes(blob, compiled.export_model().getvalue())
            except (OSError, RuntimeError):  # a read-only cache, a plugin that cannot export: compile next time
                pass
            return compiled

    def _import(self, blob: Path, config: dict):
        if not blob.exists():
            return None
        try:
            return self.core.import_model(blob.read_bytes(), "CPU", config)
        except Exception:  # damaged or from another build: compiled anew
            return None

    def _auto_precision(self) -> str:
        """bf16 if the CPU has it natively and the probe stays >= 40 dB from f32; cached."""
        if "BF16" not in self.core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            return "fp32"
        verdicts = cache_dir("openvino") / "precision.json"
        known = read_json(verdicts, {})
        if self.key not in known:
            from .metrics import PROBE_SIDE, probe_image, psnr
            side = max(PROBE_SIDE, self.meta.size_multiple)
            lo, hi = self.meta.input_range
            x = (probe_image(self.meta.in_channels, side, side) + 1) / 2 * (hi - lo) + lo
            graph = self.graphs[False]
            requests = {p: self._compile(graph, x.shape, p) for p in ("fp32", "bf16")}
            outs = [self._infer(graph, requests[p], x)[0] for p in ("fp32", "bf16")]
            olo, ohi = self.meta.output_range
            db = psnr(outs[1], outs[0], ohi - olo)
            known[self.key] = {"bf16_psnr_db": db, "precision": "bf16" if db >= _BF16_MIN_PSNR else "fp32"}
            update_json(verdicts, lambda d: d.update({self.key: known[self.key]}))
            # kept: a measured backend choice times this probe (FastestEngine's probe is the same input)
            self._compiled[(graph.binding.stats_io, *x.shape)] = requests[known[self.key]["precision"]]
        self.probe = known[self.key]
        return self.probe["precision"]

    def _feed(self, graph: _Graph, x: np.ndarray, stats=None, mix: float = 0.0) -> dict:
        feed = {graph.binding.image.name: x.astype(graph.binding.image.dtype, copy=False), **graph.binding.consts}
        if graph.binding.stats_io:
            feed.update(stats_feed(x, stats, mix, self.meta.stats_width))
        return feed

    def _infer(self, graph: _Graph, request, x: np.ndarray, stats=None, mix: float = 0.0):
        """(output float32, own statistics or None) of numpy ``x`` on one compiled request."""
        res = request.infer(self._feed(graph, x, stats, mix))
        by_name = {port.get_any_name(): value for port, value in res.items()}
        y = np.array(by_name[graph.outputs[0]], dtype=np.float32)
        return y, (np.array(by_name["own_stats"]) if graph.binding.stats_io else None)

    def _request(self, graph: _Graph, shape):
        key = (graph.binding.stats_io, *shape)
        if key not in self._compiled:
            if len(self._compiled) >= 4:  # frame sizes change rarely; keep the newest few
                self._compiled.pop(next(iter(self._compiled)))
            self._compiled[key] = self._compile(graph, shape, self.meta.precision)
        return self._compiled[key]

    def _run(self, x, stats, mix, collect=False):
        import torch
        graph = self._graph(stats is not None or collect)
        y, own = self._infer(graph, self._request(graph, x.shape), x.detach().cpu().numpy(), stats, mix)
        return torch.from_numpy(y), (torch.from_numpy(own) if own is not None else None)

    def run_host(self, x: np.ndarray) -> np.ndarray:
        graph = self.graphs[False]
        return self._infer(graph, self._request(graph, x.shape), x)[0]

    def start_host(self, x: np.ndarray):
        """On a second compilation for throughput (OpenVINO's own stream count for this CPU, e.g. 2
        streams of 1 thread on 2 cores): frames overlap instead of all threads meeting at every
        layer, which a busy CPU (the encoder beside it) stalls. Measured on a 2-core CPU with x264
        running: 10% more frames a second than one latency-mode request."""
        graph = self.graphs[False]
        key = tuple(x.shape)
        if key not in self._streams:
            compiled = self._compile(graph, x.shape, self.meta.precision, throughput=True)
            n = max(1, min(_MAX_INFLIGHT, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))))
            self._streams = {key: [compiled.create_infer_request() for _ in range(n)]}  # one frame size at a time
            self._turn = 0
        ring = self._streams[key]
        self.inflight = len(ring)
        request = ring[self._turn % len(ring)]
        self._turn += 1
        request.start_async(self._feed(graph, x))
        name = graph.outputs[0]

        def result() -> np.ndarray:
            request.wait()
            return np.array(request.get_tensor(name).data, dtype=np.float32)
        return result
