"""TensorRT: build FP16 engines from ONNX and run them (all TensorRT use lives in this module).

Version split (TensorRT 10.x vs 11.x):
- 10.x: parse the fp32 ONNX graph and set BuilderFlag.FP16 (weak typing).
- 11.x: networks are strongly typed and BuilderFlag.FP16 is gone, so the engine is built from
  an fp16 ONNX graph whose normalisation statistics stay fp32 (see engines.export, fp16=True).
Engines depend on the TensorRT version and GPU: both are recorded in ``<engine>.json`` and
checked before deserialising. A timing cache is kept beside the engine; built engines are
cached under a key of (ONNX hash, shapes, precision, TensorRT version, GPU name).
"""

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from .base import Engine, EngineMeta
from .cache import cache_dir, locked, write_bytes
from .errors import EngineError


def import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError:
        raise EngineError("TensorRT is not installed here",
                          hint="pip install 'streamgan[tensorrt]' on a machine with an NVIDIA GPU") from None
    return trt


def trt_major(version: str) -> int:
    return int(version.split(".")[0])


def needs_fp16_graph(version: str) -> bool:
    """TensorRT 11+ has no FP16 builder flag: FP16 engines come from an FP16 ONNX graph."""
    return trt_major(version) >= 11


@dataclass(frozen=True)
class Profile:
    """One optimization profile: (batch, H, W) at min / opt / max."""

    min: tuple[int, int, int]
    opt: tuple[int, int, int]
    max: tuple[int, int, int]

    def shapes(self, name: str, channels: int, stats_width: int) -> tuple:
        if name == "image":
            return tuple((b, channels, h, w) for b, h, w in (self.min, self.opt, self.max))
        if name == "norm_stats":
            return tuple((b, stats_width) for b, _, _ in (self.min, self.opt, self.max))
        return ((1,), (1,), (1,))


def parse_shapes(text: str, batch: int, multiple: int) -> Profile:
    """'256x256:720x1280:1088x1920' (H x W at min:opt:max) -> Profile, sides rounded up to ``multiple``."""
    parts = text.split(":")
    if len(parts) != 3:
        raise EngineError(f"--shapes {text!r}: expected MIN:OPT:MAX, each HxW")
    sizes = []
    for p in parts:
        try:
            h, w = (int(v) for v in p.lower().split("x"))
        except ValueError:
            raise EngineError(f"--shapes {text!r}: {p!r} is not HxW") from None
        up = lambda v: -(-v // multiple) * multiple  # noqa: E731
        sizes.append((up(h), up(w)))
    if not all(a <= b for a, b in zip(sizes[0] + sizes[1], sizes[1] + sizes[2])):
        raise EngineError(f"--shapes {text!r}: need MIN <= OPT <= MAX")
    return Profile((1, *sizes[0]), (batch, *sizes[1]), (batch, *sizes[2]))


def cache_key(onnx_bytes: bytes, profile: Profile, precision: str, trt_version: str, gpu: str) -> str:
    h = hashlib.sha256(onnx_bytes).hexdigest()[:16]
    shape = "_".join("x".join(map(str, s)) for s in (profile.min, profile.opt, profile.max))
    tag = hashlib.sha256(f"{shape}|{precision}|{trt_version}|{gpu}".encode()).hexdigest()[:12]
    return f"{h}-{tag}"


def build_plan(onnx_bytes: bytes, plan: Path, meta: EngineMeta, profile: Profile, *, fp16: bool = True,
               workspace_gb: float = 8.0) -> Path:
    """ONNX bytes + profile -> serialized engine at ``plan`` (+ .json metadata, + .timing cache)."""
    trt = import_tensorrt()
    if not torch.cuda.is_available():
        raise EngineError("building a TensorRT engine needs an NVIDIA GPU")
    gpu = torch.cuda.get_device_name()
    precision = "fp16" if fp16 else "fp32"
    key = cache_key(onnx_bytes, profile, precision, trt.__version__, gpu)
    cached = cache_dir("tensorrt") / f"{key}.plan"
    meta.backend, meta.precision = "tensorrt", precision
    meta.shapes = {"min": list(profile.min), "opt": list(profile.opt), "max": list(profile.max)}
    meta.extra = {**meta.extra, "tensorrt_version": trt.__version__, "device_name": gpu, "cache_key": key}
    with locked(cached):  # one build at a time; a process that waited finds it built
        if not cached.exists():
            logger = trt.Logger(trt.Logger.WARNING)
            builder = trt.Builder(logger)
            flags = 0
            strong = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
            if needs_fp16_graph(trt.__version__) and strong is not None:
                flags |= 1 << int(strong)
            network = builder.create_network(flags)
            parser = trt.OnnxParser(network, logger)
            if not parser.parse(onnx_bytes):
                errs = "; ".join(str(parser.get_error(i).desc()) for i in range(parser.num_errors))
                raise EngineError(f"TensorRT cannot parse the ONNX graph: {errs[:300]}")
            config = builder.create_builder_config()
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
            if fp16 and not needs_fp16_graph(trt.__version__):
                config.set_flag(trt.BuilderFlag.FP16)
            opt_profile = builder.create_optimization_profile()
            for i in range(network.num_inputs):
                name = network.get_input(i).name
                opt_profile.set_shape(name, *profile.shapes(name, meta.in_channels, meta.stats_width))
            config.add_optimization_profile(opt_profile)
            tc_path = plan.with_name(plan.name + ".timing")
            cache = config.create_timing_cache(tc_path.read_bytes() if tc_path.exists() else b"")
            config.set_timing_cache(cache, False)
            serialized = builder.build_serialized_network(network, config)
            if serialized is None:
                raise EngineError("TensorRT failed to build the engine (see the log above)")
            write_bytes(cached, bytes(serialized))
            write_bytes(tc_path, bytes(config.get_timing_cache().serialize()))
    shutil.copyfile(cached, plan)
    Path(str(plan) + ".json").write_text(meta.to_json())
    return plan


_TORCH_DTYPES = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16, "INT32": torch.int32}


class TensorRTEngine(Engine):
    """Runs a serialized engine with execute_async_v3 on torch's current CUDA stream."""

    def __init__(self, path: str | Path, device=None):
        path = Path(path)
        side = Path(str(path) + ".json")
        if not side.exists():
            raise EngineError(f"{path}: missing metadata {side.name}", hint="rebuild with streamgan build")
        self.meta = EngineMeta.from_dict(json.loads(side.read_text()))
        trt = import_tensorrt()
        if not torch.cuda.is_available():
            raise EngineError("TensorRT engines need an NVIDIA GPU")
        built_v, built_gpu = self.meta.extra.get("tensorrt_version"), self.meta.extra.get("device_name")
        gpu = torch.cuda.get_device_name()
        if built_v and built_v != trt.__version__:
            raise EngineError(f"{path}: built with TensorRT {built_v}, this is {trt.__version__}",
                              hint="rebuild the engine here with streamgan build")
        if built_gpu and built_gpu != gpu:
            raise EngineError(f"{path}: built for {built_gpu}, this GPU is {gpu}",
                              hint="rebuild the engine here with streamgan build")
        self.device = torch.device(device or "cuda")
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise EngineError(f"{path}: corrupt engine, or one for another TensorRT/GPU")
        self.context = self.engine.create_execution_context()
        self.names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in self.names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in self.names if n not in self.inputs]
        self.dtypes = {n: _TORCH_DTYPES[self.engine.get_tensor_dtype(n).name] for n in self.names}
        self.dtype = self.dtypes["image"] if "image" in self.dtypes else torch.float32

    def _run(self, x, stats, mix, collect=False):
        x = x.to(self.device, self.dtypes.get("image", torch.float32)).contiguous()
        feed = {"image": x}
        if "norm_stats" in self.inputs:
            feed["norm_stats"] = (stats if stats is not None else
                                  torch.zeros(x.shape[0], self.meta.stats_width, device=self.device)).float()
            feed["stats_mix"] = torch.tensor([mix], device=self.device, dtype=torch.float32)
        for name, t in feed.items():
            self.context.set_input_shape(name, tuple(t.shape))
            self.context.set_tensor_address(name, t.data_ptr())
        outs = {}
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            outs[name] = torch.empty(shape, device=self.device, dtype=self.dtypes[name])
            self.context.set_tensor_address(name, outs[name].data_ptr())
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise EngineError("TensorRT execution failed")
        return outs["output"], outs.get("own_stats")

    def close(self) -> None:
        self.context = self.engine = None
