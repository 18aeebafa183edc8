"""OpenVINO engine: ONNX models and OpenVINO IR (.xml + .bin) on the CPU.

The graph is compiled once per input shape (a static shape lets the CPU plugin pick its fastest
convolution kernels) and the compiled model is kept under ``$STREAMGAN_CACHE/openvino``: exported
and imported by this module rather than by OpenVINO's CACHE_DIR, which writes its blobs in place
and maps them in (a process that read a blob another was still writing died with SIGBUS).
Precision "auto" runs bf16 where the CPU plugin offers it and, on an image-like probe, it stays
>= 40 dB from f32 and runs faster, else f32; the verdict is cached per model, OpenVINO version and CPU.
"""

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .base import Engine, file_sha256, sha256
from .cache import cache_dir, locked, write_bytes
from .errors import EngineError, runtime_says
from .onnx_backend import Binding, GraphInput, as_input, bind_inputs, graph_meta, read_onnx_meta, stats_feed
from .onnx_stats import MIX_IN, STATS_IN, STATS_OUT
from .precision import best_ms, measured_once, probe_verdict

PRECISIONS = {"fp32": "f32", "bf16": "bf16"}
_OV_NP = {"f16": np.float16, "u8": np.uint8}  # image inputs not f32: what they are fed
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
        ops = re.search(r"No conversion rule found for operations: ([^\n]+)", str(exc))
        what = f"unsupported operator {ops.group(1).strip()}" if ops else runtime_says(exc)
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


_QUANTIZED = ("Convolution", "ConvolutionBackpropData")
_RANGE_MARGIN = 0.1  # activation ranges widened by this share of their span (content brighter later)


def _quantizable(model) -> list:
    """The convolutions of ``model`` (an ov.Model) that int8 runs: plain and transposed, with
    constant fp32 weights, in graph order (the same order for every copy of one graph)."""
    ops = []
    for op in model.get_ordered_ops():
        if op.get_type_name() in _QUANTIZED and op.input_value(1).get_node().get_type_name() == "Constant" \
                and op.input_value(1).get_node().get_data().dtype == np.float32:
            ops.append(op)
    return ops


def observing_model(model, ops):
    """A copy of ``model`` that also outputs each quantizable convolution's input minimum and
    maximum (outputs ``range_lo_<i>``, ``range_hi_<i>``): what int8 calibration reads."""
    m = model.clone()
    for i, conv in enumerate(_quantizable(m)):
        x = conv.input_value(0)
        axes = ops.constant(np.arange(len(x.get_partial_shape()), dtype=np.int64))
        for name, reduce in (("lo", ops.reduce_min), ("hi", ops.reduce_max)):
            r = ops.result(reduce(x, axes, False))
            r.output(0).get_tensor().set_names({f"range_{name}_{i}"})
            m.add_results([r])
    m.validate_nodes_and_infer_types()
    return m


def quantized_model(model, ops, ranges: list[list[float]]):
    """A copy of ``model`` with int8 convolutions: each quantizable convolution's input through a
    FakeQuantize of 256 levels over its observed ``ranges`` ([lo, hi] each; unsigned where lo >= 0),
    widened by _RANGE_MARGIN, and its weights through one of 255 symmetric levels per output
    channel. The CPU plugin's low-precision transformations run these as int8 kernels (VNNI)."""
    m = model.clone()
    convs = _quantizable(m)
    if len(convs) != len(ranges):
        raise EngineError(f"int8 calibration has {len(ranges)} ranges for {len(convs)} convolutions")

    def fq(x, lo, hi, levels):
        lo, hi = ops.constant(np.asarray(lo, np.float32)), ops.constant(np.asarray(hi, np.float32))
        return ops.fake_quantize(x, lo, hi, lo, hi, levels)
    for conv, (lo, hi) in zip(convs, ranges):
        pad = _RANGE_MARGIN * (hi - lo)
        lo, hi = (0.0 if lo >= 0 else lo - pad), hi + pad
        hi = hi if hi > lo else lo + 1e-3
        conv.input(0).replace_source_output(fq(conv.input_value(0), lo, hi, 256).output(0))
        w = conv.input_value(1).get_node().get_data()
        axis = 1 if conv.get_type_name() == "ConvolutionBackpropData" else 0  # (in, out, k, k) there
        shape = [1] * w.ndim
        shape[axis] = w.shape[axis]
        s = np.abs(np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)).max(1).reshape(shape)
        s = np.maximum(s, 1e-8).astype(np.float32)
        conv.input(1).replace_source_output(fq(conv.input_value(1), -s, s, 255).output(0))
    m.validate_nodes_and_infer_types()
    return m


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


def _by_name(results) -> dict:
    """An inference's outputs by each of their tensor names: a compiled model may give an output
    the names of the tensors folded into it (a Transpose pair cancelled: '/Mul_output_0' beside
    'out'), and any one of them is what ``get_any_name`` returns."""
    return {name: value for port, value in results.items() for name in port.get_names()}


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
        self._observing, self._watch, self._ranges = False, None, None  # int8 calibration (observe)
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
                             _OV_NP.get(i.get_element_type().get_type_name(), np.float32))
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
        config = {**self.config, "INFERENCE_PRECISION_HINT": PRECISIONS.get(precision, "f32")}  # int8: FakeQuantize
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
        """What the CPU plugin offers of bf16 and int8: bf16 timed against f32 on the probe and its
        picture compared: bf16 where it stays >= 40 dB and runs faster (``probe_verdict``), else
        f32. int8 is offered untimed: it runs only by the run's own frames, calibrated on them, and
        is timed there at the frame's size (streamgan's ContentCheck), so the probe compiles no
        int8 graph (on multistyle26, 2-core Xeon: 0.4 s of a cold start's 1.0 s of probing).
        Cached per model, OpenVINO version and CPU."""
        caps = self.core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        reduced = [p for p in ("bf16", "int8") if p.upper() in caps]
        if not reduced:
            return "fp32"
        from .fastest import machine_tag

        def measure() -> dict:
            from .metrics import PROBE_SIDE, probe_image, psnr
            side = max(PROBE_SIDE, self.meta.size_multiple)
            h, w = self.meta.shapes["max"] if self.meta.shapes else (side, side)  # (a fixed-size graph: its size)
            lo, hi = self.meta.input_range
            x = (probe_image(self.meta.in_channels, h, w) + 1) / 2 * (hi - lo) + lo
            graph = self.graphs[False]
            untimed = ("int8",) if "int8" in reduced and _quantizable(graph.model) else ()
            # side by side: OpenVINO compiles mostly on one thread (fp32 and bf16 of multistyle26 on
            # 2 cores: 0.51-0.60 s together, 0.76-0.86 s one after the other)
            with ThreadPoolExecutor(max_workers=2) as pool:
                jobs = {p: pool.submit(self._compile, graph, x.shape, p) for p in ("fp32", *reduced) if p != "int8"}
                requests = {p: job.result() for p, job in jobs.items()}
            runs = {p: (lambda r=r: self._infer(graph, r, x)[0]) for p, r in requests.items()}
            outs = {p: run() for p, run in runs.items()}
            ms = best_ms(runs)
            olo, ohi = self.meta.output_range
            verdict = probe_verdict(ms, {p: psnr(y, outs["fp32"], ohi - olo) for p, y in outs.items() if p != "fp32"},
                                    untimed)
            # kept: a measured backend choice times this probe (FastestEngine's probe is the same input)
            self._compiled[(graph.digest, *x.shape)] = requests[verdict["precision"]]
            return verdict
        self.precision_probe = measured_once(cache_dir("openvino") / "precision.json",
                                             f"{self.key}|untimed-int8|{machine_tag()}", measure)
        return self.precision_probe["precision"]

    def observe(self, on: bool) -> None:
        """While ``on``, plain calls also record each quantizable convolution's input range
        (``observed``; from no ranges at the start); the picture is the f32 graph's."""
        self._observing = on
        if on:
            self._ranges = None

    def observed(self) -> list[list[float]] | None:
        """[lo, hi] of each quantizable convolution's input over the calls observed."""
        return None if self._ranges is None else self._ranges.tolist()

    def _watch_graph(self) -> _Graph:
        """The plain graph with each quantizable convolution's input range as extra outputs."""
        if self._watch is None:
            base = self.graphs[False]
            self._watch = _Graph(observing_model(base.model, self.ov.opset13), base.binding, base.outputs,
                                 base.digest + "-observe")
        return self._watch

    def _observe(self, x: np.ndarray) -> np.ndarray:
        g = self._watch_graph()
        res = self._request(g, x.shape).infer(self._feed(g, x))
        by_name = _by_name(res)
        n = sum(name.startswith("range_lo_") for name in by_name)
        seen = np.array([[float(by_name[f"range_lo_{i}"]), float(by_name[f"range_hi_{i}"])] for i in range(n)])
        if self._ranges is None:
            self._ranges = seen
        else:
            self._ranges = np.stack([np.minimum(self._ranges[:, 0], seen[:, 0]),
                                     np.maximum(self._ranges[:, 1], seen[:, 1])], axis=1)
        return np.array(by_name[g.outputs[0]], dtype=np.float32)

    def quantized(self, ranges: list[list[float]]) -> "OpenVINOEngine":
        """This model with int8 convolutions quantized over activation ``ranges`` (``observed``
        of representative inputs): plain calls run it; calls that give or collect statistics
        (thumbnail tiles) run the f32 graph."""
        import copy
        import dataclasses
        base = self.graphs[False]
        digest = f"{base.digest}-int8-{sha256(json.dumps(ranges).encode())[:16]}"
        q = copy.copy(self)
        q.graphs = {**self.graphs, False: _Graph(quantized_model(base.model, self.ov.opset13, ranges), base.binding,
                                                 base.outputs, digest)}
        q.meta = dataclasses.replace(self.meta, precision="int8")
        q._compiled, q._streams, q._turn, q._observing, q._watch, q._ranges = {}, {}, 0, False, None, None
        return q

    def _feed(self, graph: _Graph, x: np.ndarray, stats=None, mix: float = 0.0) -> dict:
        feed = {graph.binding.image.name: as_input(x, graph.binding.image.dtype), **graph.binding.consts}
        if graph.binding.stats_io:
            feed.update(stats_feed(x, stats, mix, self.meta.stats_width))
        return feed

    def _infer(self, graph: _Graph, request, x: np.ndarray, stats=None, mix: float = 0.0):
        """(output float32, own statistics or None) of numpy ``x`` on one compiled request."""
        res = request.infer(self._feed(graph, x, stats, mix))
        by_name = _by_name(res)
        y = np.array(by_name[graph.outputs[0]], dtype=np.float32)
        return y, (np.array(by_name["own_stats"]) if graph.binding.stats_io else None)

    def _request(self, graph: _Graph, shape):
        key = (graph.digest, *shape)
        watched = None if self._watch is None else (self._watch.digest, *shape)
        if key not in self._compiled and watched in self._compiled and graph is self.graphs[False] \
                and self.meta.precision == "fp32":  # the observing graph, compiled for a check's frames, gives
            return self._compiled[watched]  # the same picture (its ranges unread): no second compilation
        if key not in self._compiled:
            if len(self._compiled) >= 4:  # frame sizes change rarely; keep the newest few
                self._compiled.pop(next(iter(self._compiled)))
            self._compiled[key] = self._compile(graph, shape, self.meta.precision)
        return self._compiled[key]

    def _run(self, x, stats, mix, collect=False):
        import torch
        if self._observing and stats is None and not collect:
            return torch.from_numpy(self._observe(x.detach().cpu().numpy())), None
        graph = self._graph(stats is not None or collect)
        y, own = self._infer(graph, self._request(graph, x.shape), x.detach().cpu().numpy(), stats, mix)
        return torch.from_numpy(y), (torch.from_numpy(own) if own is not None else None)

    def run_host(self, x: np.ndarray) -> np.ndarray:
        if self._observing:
            return self._observe(x)
        if self.meta.precision == "int8":  # one compilation for every int8 picture: OpenVINO's latency and
            return self.start_host(x)()  # throughput compilations of one int8 graph differ (37 dB apart)
        graph = self.graphs[False]
        return self._infer(graph, self._request(graph, x.shape), x)[0]

    def start_host(self, x: np.ndarray):
        """On a second compilation for throughput (OpenVINO's own stream count for this CPU, e.g. 2
        streams of 1 thread on 2 cores): frames overlap instead of all threads meeting at every
        layer, which a busy CPU (the encoder beside it) stalls. Measured on a 2-core CPU with x264
        running: 10% more frames a second than one latency-mode request."""
        if self._observing:
            y = self._observe(x)
            return lambda: y
        graph = self.graphs[False]
        key = tuple(x.shape)
        if key not in self._streams:
            compiled = self._compile(graph, x.shape, self.meta.precision, throughput=True)
            n = max(1, min(_MAX_INFLIGHT, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))))
            if len(self._streams) >= 4:  # a folder of images of a few sizes: the newest few kept
                self._streams.pop(next(iter(self._streams)))  # (a request used at turn t was collected
            self._streams[key] = [compiled.create_infer_request() for _ in range(n)]  # before turn t + n)
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
