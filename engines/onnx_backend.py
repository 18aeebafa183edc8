"""ONNX Runtime engine: any image-to-image ONNX model, CPU or the CUDA provider when installed."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .base import Engine, EngineMeta, file_sha256
from .cache import cache_dir, read_json, write_json
from .errors import EngineError
from .lazy import torch  # imported on first use (engines/lazy.py)

_NP = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
       "tensor(uint8)": np.uint8}


def as_input(x: np.ndarray, dtype) -> np.ndarray:
    """``x`` (float, in the graph's value range) as the graph's image input takes it: a graph that
    takes 8-bit codes gets them rounded, not truncated."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(x), info.min, info.max).astype(dtype)
    return x.astype(dtype, copy=False)


def read_onnx_meta(path: Path) -> dict:
    """The streamgan metadata of an ONNX file (or what its graph says about inputs/outputs); kept
    in the cache by the file's bytes, so a run that finds it there needs no onnx package (its
    import and a parse of the graph: 0.05-0.1 s at every start)."""
    store = cache_dir("onnx") / f"{file_sha256(path)[:20]}-meta.json"
    known = read_json(store)
    if known is not None and "output_shape" in known:
        return known
    import onnx
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise EngineError(f"{path}: not a readable ONNX file ({exc.__class__.__name__})") from None
    props = {p.key: p.value for p in model.metadata_props}
    d = json.loads(props["streamgan"]) if "streamgan" in props else {"arch": "third-party onnx"}
    if "input_range" in props and "streamgan" not in props:
        d["input_range"] = json.loads(props["input_range"])
    d["opset"] = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    d["inputs"] = [i.name for i in model.graph.input]
    d["outputs"] = [o.name for o in model.graph.output]
    d["output_shape"] = [x.dim_value or None for x in model.graph.output[0].type.tensor_type.shape.dim] \
        if model.graph.output else []  # (the first output's; None where a side is not fixed)
    write_json(store, d)
    return d


@dataclass
class GraphInput:
    """One graph input as either runtime reports it: ``shape`` has None for dynamic dimensions."""

    name: str
    shape: list
    dtype: type


@dataclass
class Binding:
    """How to feed a graph: its image input, whether it exchanges statistics, constant extras."""

    image: GraphInput
    stats_io: bool
    consts: dict[str, np.ndarray]
    stats_width: int = 0  # from the norm_stats input's shape, when static


def bind_inputs(path: Path, inputs: list[GraphInput], consts: dict | None) -> Binding:
    """The 4-D image input, the statistics inputs when present, the rest from ``consts`` (--const)."""
    images = [i for i in inputs if len(i.shape) == 4]
    if not images:
        raise EngineError(f"{path}: no 4-D image input among {[i.name for i in inputs]}")
    names = {i.name for i in inputs}
    stats_io = "norm_stats" in names and "stats_mix" in names
    fed = {}
    for i in inputs:
        if i.name == images[0].name or (stats_io and i.name in ("norm_stats", "stats_mix")):
            continue
        if not consts or i.name not in consts:
            raise EngineError(f"{path}: the model has an extra input {i.name!r} {i.shape}",
                              hint=f"pass --const {i.name}=VALUES")
        fed[i.name] = np.asarray(consts[i.name], dtype=i.dtype).reshape([d or 1 for d in i.shape] or [-1])
    width = next((i.shape[1] or 0 for i in inputs if i.name == "norm_stats" and len(i.shape) == 2), 0)
    return Binding(images[0], stats_io, fed, width if stats_io else 0)


def graph_meta(path: Path, info: dict, binding: Binding, input_range, backend: str) -> EngineMeta:
    """EngineMeta of an ONNX/IR graph: its streamgan metadata, else what its image input says."""
    meta = EngineMeta.from_dict(info)
    if input_range:
        meta.input_range = meta.output_range = tuple(input_range)
    elif binding.image.dtype == np.uint8:  # a graph that takes 8-bit codes takes them as they are
        meta.input_range = meta.output_range = (0.0, 255.0)
    elif "streamgan" not in info and "input_range" in info:
        meta.output_range = meta.input_range
    n, c, h, w = binding.image.shape
    if c:
        meta.in_channels = c
    if n:
        meta.max_batch = n
    if h and w:  # static spatial shape: tile at exactly that size
        if h != w:
            raise EngineError(f"{path}: static non-square input {h}x{w} is not supported")
        meta.size_multiple = h
        meta.shapes = {"min": [h, w], "opt": [h, w], "max": [h, w]}
    meta.backend = backend
    meta.stats_width = (meta.stats_width or binding.stats_width) if binding.stats_io else 0
    return meta


def stats_feed(x, stats, mix: float, width: int) -> dict:
    """The statistics inputs of an exported generator (zeros when the sample's own are used);
    ``stats`` a tensor or a numpy array."""
    if stats is None:
        stats = np.zeros((x.shape[0], width), np.float32)
    elif not isinstance(stats, np.ndarray):
        stats = stats.cpu().numpy()
    return {"norm_stats": stats, "stats_mix": np.array([mix], np.float32)}


class OnnxEngine(Engine):
    """Feeds ``image`` (and the statistics inputs when present); extra inputs come from ``consts``."""

    def __init__(self, path: str | Path, device=None, input_range: tuple[float, float] | None = None,
                 consts: dict | None = None, threads: int = 0):
        import onnxruntime as ort
        path = Path(path)
        info = read_onnx_meta(path)
        providers = ["CPUExecutionProvider"]
        want_cuda = device is None or str(device).startswith("cuda")
        if want_cuda and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        so = ort.SessionOptions()
        so.log_severity_level = 4  # fatal only: a failed run raises (and is reported in one line) anyway
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads must not steal the CPU
        if threads:
            so.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), so, providers=providers)
        except Exception as exc:
            msg = str(exc)
            op = re.search(r"implementation for (\w+)\(|[Oo]p type[: ]+'?(\w+)", msg)
            what = f"unsupported operator {next(g for g in op.groups() if g)}" if op else msg.splitlines()[0][:200]
            raise EngineError(f"{path}: ONNX Runtime cannot run this model ({what})") from None
        self.host = not providers[0].startswith("CUDA")
        if not self.host:
            self.device = torch.device("cuda")
        inputs = [GraphInput(i.name, [d if isinstance(d, int) else None for d in i.shape],
                             _NP.get(i.type, np.float32)) for i in self.session.get_inputs()]
        self.binding = bind_inputs(path, inputs, consts)
        self.np_dtype = self.binding.image.dtype
        if self.np_dtype == np.float16:
            self.dtype = torch.float16
        self.meta = graph_meta(path, info, self.binding, input_range, "onnxruntime")
        self.outputs = [o.name for o in self.session.get_outputs()]

    def run_numpy(self, x: np.ndarray, stats: np.ndarray | None = None, mix: float = 0.0):
        """(output float32, own statistics or None) of a numpy batch; ``stats`` with ``mix``."""
        feed = {self.binding.image.name: as_input(x, self.np_dtype), **self.binding.consts}
        want = [self.outputs[0]]
        if self.binding.stats_io:
            feed.update(stats_feed(x, stats, mix, self.meta.stats_width))
            want.append("own_stats")
        res = self.session.run(want, feed)
        return np.asarray(res[0], dtype=np.float32), (res[1] if self.binding.stats_io else None)

    def run_host(self, x: np.ndarray) -> np.ndarray:
        return self.run_numpy(x)[0]

    def _run(self, x, stats, mix, collect=False):
        y, own = self.run_numpy(x.detach().cpu().numpy(), stats, mix)
        return torch.from_numpy(y), (torch.from_numpy(own) if own is not None else None)
