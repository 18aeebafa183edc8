"""``streamgan build``: checkpoint or ONNX -> .onnx / .xml / .pt2 / .plan, validated against fp32 torch."""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from engines.base import EngineMeta, sha256
from engines.errors import runtime_says
from engines.export import export_onnx
from engines.metrics import max_error, psnr, smooth_image

from ..errors import EngineError, OptionError
from ..media.files import atomic_path, check_output, remove_partials
from .checkpoints import load_generator
from .engine import CHECKPOINT_SUFFIXES, generator_meta, open_engine

ARTIFACTS = (".onnx", ".xml", ".pt2", ".plan")
# the runtime each artifact is checked with (ONNX: the reference runtime, fp32)
VALIDATE_BACKEND = {".onnx": "onnxruntime", ".xml": "openvino"}
MIN_PSNR = {"fp32": 60.0, "fp16": 40.0, "bf16": 40.0}


def sample_inputs(multiple: int, channels: int = 3, seed: int = 0, size: tuple[int, int] | None = None
                  ) -> list[torch.Tensor]:
    """Two smooth random images of different sizes (dynamic shapes are exercised), or of ``size``."""
    g = torch.Generator().manual_seed(seed)
    if size:
        return [smooth_image(channels, *size, g)]
    base = max(multiple, 32)
    sizes = [(base, base), (base * 2, base)] if base >= 128 else [(base * 2, base * 3), (base * 3, base * 2)]
    return [smooth_image(channels, h, w, g) for h, w in sizes]


def validate(artifact: Path, reference, multiple: int, channels: int, value_range: float, precision: str,
             device=None, size: tuple[int, int] | None = None, **open_kw) -> dict:
    """Compare ``artifact`` with ``reference(x)`` on sample inputs, with its own statistics and,
    where it takes statistics (thumbnail tiles), with them collected and given back; fail below the
    PSNR floor of the artifact's precision (an fp32 IR is checked in fp32, not in the bf16 a CPU
    may run it in)."""
    worst_psnr, worst_err = float("inf"), 0.0
    suffix = artifact.suffix.lower()
    if suffix == ".xml":
        open_kw = {**open_kw, "precision": precision}
    with open_engine(artifact, device=device, backend=VALIDATE_BACKEND.get(suffix), **open_kw) as eng:
        for x in sample_inputs(multiple, channels, size=size):
            ref = reference(x)
            try:
                outs = [eng.infer(x)]
                if eng.meta.stats_width:
                    outs.append(eng.infer(x, eng.collect_stats(x)))
            except EngineError:
                raise
            except Exception as exc:  # a runtime's own error: the artifact does not run
                raise EngineError(f"validation failed: the built {suffix} does not run on a "
                                  f"{x.shape[2]}x{x.shape[3]} input ({runtime_says(exc)})") from None
            for got in outs:
                worst_psnr = min(worst_psnr, psnr(got.float().cpu(), ref, value_range))
                worst_err = max(worst_err, max_error(got.float().cpu(), ref))
        ran = eng.meta.precision
    need = min(MIN_PSNR[precision], MIN_PSNR.get(ran, MIN_PSNR[precision]))
    result = {"psnr_db": worst_psnr, "max_error": worst_err, "required_db": need, "ran_as": ran}
    if worst_psnr < need:
        raise EngineError(f"validation failed: PSNR {worst_psnr:.1f} dB < {need} dB, max error {worst_err:.3g}")
    return result


def build(src: str | Path, out: str | Path, *, fp16: bool | None = None, shapes: str | None = None,
          tile: int | None = None,
          batch: int = 1, input_range: tuple[float, float] | None = None, do_validate: bool = True,
          overwrite: bool = False, device: str | None = None, bn_stats: str = "batch", arch: str | None = None,
          static: bool = False) -> dict:
    """Build one artifact; returns a report (sizes, timings, validation numbers).

    fp16 None: FP16 for TensorRT plans, fp32 for ONNX; an AOTInductor package for a CPU with native
    bf16 is bf16 where that stays >= 40 dB from fp32 (fp16 False: fp32), else fp32.
    """
    src, out = Path(src), Path(out)
    suffix = out.suffix.lower()
    if suffix not in ARTIFACTS:
        raise OptionError(f"--out {out}: the suffix picks the artifact; use one of {', '.join(ARTIFACTS)}")
    check_output(out, [src], overwrite)
    if suffix == ".xml":
        check_output(out.with_suffix(".bin"), [src], overwrite)
    if suffix == ".pt2" and not os.environ.get(_CHILD):
        return _build_isolated(dict(src=str(src), out=str(out), fp16=fp16, shapes=shapes, tile=tile, batch=batch,
                                    input_range=input_range, do_validate=do_validate, overwrite=overwrite,
                                    device=device, bn_stats=bn_stats, arch=arch, static=static))
    t0 = time.perf_counter()
    graph = src  # what the artifact is built from
    if src.suffix.lower() in CHECKPOINT_SUFFIXES:
        model = load_generator(src, arch=arch, bn_stats=bn_stats)
        meta = generator_meta(model)
        if input_range:
            meta.input_range = meta.output_range = input_range

        def reference(x):
            with torch.no_grad():
                return model(x)
    elif src.suffix.lower() == ".onnx":
        if suffix == ".pt2":
            raise EngineError("an ONNX model cannot be compiled to .pt2 (AOTInductor needs the torch model)",
                              hint="build .plan or run the .onnx directly")
        from engines.layout import nchw_graph
        model, (graph, _) = None, nchw_graph(src)  # a channels-last graph is built as it runs: NCHW
        src_engine = open_engine(src, device="cpu", backend="onnxruntime", input_range=input_range)
        meta = src_engine.meta

        def reference(x):
            return src_engine.infer(x).float()
    else:
        raise OptionError(f"{src}: build takes a checkpoint ({', '.join(CHECKPOINT_SUFFIXES)}) or an .onnx")
    meta.source_hash = sha256(src.read_bytes())[:16]
    report = {"source": str(src), "output": str(out), "artifact": suffix[1:]}
    with atomic_path(out) as tmp:
        companions = [(tmp.with_suffix(".bin"), out.with_suffix(".bin"))] if suffix == ".xml" else \
            [(Path(str(tmp) + side), Path(str(out) + side)) for side in (".json", ".timing")]  # an IR's weights;
        # a TensorRT plan's metadata and timing cache
        try:
            precision = _build_artifact(model, graph, tmp, suffix, meta, fp16=fp16, shapes=shapes, tile=tile,
                                        batch=batch, device=device, static=static)
            report["build_seconds"] = time.perf_counter() - t0
            if do_validate:
                lo, hi = meta.output_range
                report["validation"] = validate(tmp, reference, meta.size_multiple, meta.in_channels, hi - lo,
                                                precision, device=device, input_range=input_range,
                                                size=tuple(meta.shapes["max"]) if static and meta.shapes else None)
            for side, dst in companions:  # sidecars follow the artifact's final name
                if side.exists():
                    side.replace(dst)
        finally:
            for side, _ in companions:
                side.unlink(missing_ok=True)
    report["bytes"] = sum(p.stat().st_size for p in (out, *(dst for _, dst in companions)) if p.exists())
    report["files"] = [str(p) for p in (out, *(dst for _, dst in companions)) if p.exists()]
    report["precision"] = precision
    return report


_CHILD = "STREAMGAN_BUILD_CHILD"
_CHILD_MAIN = """
import json, sys
from engines.errors import EngineError
from streamgan.errors import StreamganError
from streamgan.translate.build import build
try:
    print(json.dumps(build(**json.loads(sys.argv[1])), default=str))
except (StreamganError, EngineError) as exc:
    print(exc, file=sys.stderr)
    sys.exit(2)
"""


def _build_isolated(kwargs: dict) -> dict:
    """Build (and validate) an AOTInductor package in a child process: a compiler or loader that
    crashes (it has, with a signal 11 on CUDA) then costs one line and a non-zero exit, not the CLI."""
    out = Path(kwargs["out"])
    env = {**os.environ, _CHILD: "1"}
    r = subprocess.run([sys.executable, "-c", _CHILD_MAIN, json.dumps(kwargs)], env=env, capture_output=True,
                       text=True)
    remove_partials(out)  # a crashed child's temp file
    if r.returncode == 0:
        return json.loads(r.stdout.strip().splitlines()[-1])
    last = (r.stderr.strip().splitlines() or ["no message"])[-1][:300]
    if r.returncode < 0:
        raise EngineError(f"AOTInductor build crashed (signal {-r.returncode}); nothing written",
                          hint="build .onnx, or run the checkpoint with --compile")
    raise EngineError(last if r.returncode == 2 else f"AOTInductor build failed ({last}); nothing written")


def _fixed_shape(shapes: str | None, batch: int, meta: EngineMeta) -> tuple[int, int, int]:
    """(batch, H, W) of a fixed-shape package from --shapes HxW (a multiple of the model's)."""
    import re
    m = meta.size_multiple
    found = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", shapes or "")
    if not found:
        raise OptionError("--static .pt2 needs the frame size: --shapes HxW (e.g. 1080x1920)")
    h, w = int(found.group(1)), int(found.group(2))
    if h % m or w % m:
        up = f"{-(-h // m) * m}x{-(-w // m) * m}"
        raise OptionError(f"--shapes {h}x{w}: this model needs multiples of {m}",
                          hint=f"use --shapes {up} (smaller frames are padded up to it)")
    return batch, h, w


def _build_artifact(model, src: Path, tmp: Path, suffix: str, meta: EngineMeta, *, fp16, shapes, tile, batch,
                    device, static) -> str:
    fp16_asked = fp16
    if suffix != ".plan":
        fp16 = bool(fp16)
    if suffix == ".onnx":  # fp32: the plain graph (one InstanceNormalization op a norm), as the checkpoint
        # runs; streamgan exposes its statistics for tiles when it opens it, as for any third-party graph.
        # fp16 (for GPUs): the graph with statistics inputs, which computes them in fp32
        if model is None:
            raise EngineError("the source is already ONNX", hint="use it directly with --engine")
        shape = (batch, meta.in_channels, tile or 2 * meta.size_multiple, tile or 2 * meta.size_multiple)
        export_onnx(model, tmp, meta, shape=shape, dynamic=not static, fp16=fp16, stats=fp16)
        return "fp16" if fp16 else "fp32"
    if suffix == ".xml":  # the plain graph with its statistics exposed (OpenVINO runs frames on a
        # copy specialised for their own statistics: as fast as the plain graph)
        from engines.onnx_stats import write_norm_stats
        from engines.openvino_backend import save_ir
        with tempfile.TemporaryDirectory() as d:
            onnx_path, exposed = Path(d) / "g.onnx", Path(d) / "g-stats.onnx"
            if model is not None:
                export_onnx(model, onnx_path, meta, stats=False)
            else:
                onnx_path.write_bytes(src.read_bytes())
            meta.backend = "openvino"
            save_ir(exposed if write_norm_stats(onnx_path, exposed) else onnx_path, tmp, meta.to_json())
        return "fp32"
    if suffix == ".pt2":
        from engines.aoti_backend import build_pt2
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if os.environ.get("STREAMGAN_TEST_CRASH") == "pt2":  # test hook: the compiler dies as it did on CUDA
            os.kill(os.getpid(), signal.SIGSEGV)
        from engines.torch_backend import bf16_worth_it
        # a CPU .pt2 runs bf16 where the checkpoint would (native bf16, >= 40 dB): 2.1x fp32's speed
        bf16 = fp16_asked is None and dev.type == "cpu" and bf16_worth_it(model, meta)
        build_pt2(model, tmp, meta, dev, fp16=fp16, shape=_fixed_shape(shapes, batch, meta) if static else None,
                  bf16=bf16)
        return meta.precision
    from engines.tensorrt_backend import build_plan, import_tensorrt, needs_fp16_graph, parse_shapes
    trt = import_tensorrt()
    fp16 = True if fp16 is None else fp16
    m = meta.size_multiple
    if shapes:
        profile = parse_shapes(shapes, batch, m)
    else:
        t = tile or 512
        profile = parse_shapes(f"{m}x{m}:{t}x{t}:{t}x{t}" if tile else f"{m}x{m}:1088x1920:2176x3840", batch, m)
    if model is not None:
        with tempfile.TemporaryDirectory() as d:
            onnx_path = Path(d) / "g.onnx"
            data = export_onnx(model, onnx_path, meta, fp16=fp16 and needs_fp16_graph(trt.__version__))
    else:  # a plain graph's instance norms get statistics inputs (thumbnail tiles)
        from engines.onnx_stats import with_norm_stats
        data = with_norm_stats(src)[0].read_bytes()
    build_plan(data, tmp, meta, profile, fp16=fp16)
    return "fp16" if fp16 else "fp32"


def add_build_args(p) -> None:
    p.add_argument("src", help="checkpoint (.pth/.safetensors) or ONNX model")
    p.add_argument("--out", "--output", required=True,
                   help="artifact: .onnx, .xml (OpenVINO IR), .pt2 or .plan (TensorRT)")
    p.add_argument("--fp16", action=argparse.BooleanOptionalAction, default=None,
                   help="half precision (default: on for .plan, off for .onnx; a .pt2 for a CPU with native bf16 "
                        "is bf16 where that stays >= 40 dB from fp32: --no-fp16 keeps it fp32)")
    p.add_argument("--shapes", default=None, help="TensorRT profile MIN:OPT:MAX, each HxW; .pt2 --static: HxW")
    p.add_argument("--tile", type=int, default=None, help="build for tiles of this size")
    p.add_argument("--batch", type=int, default=1, help="batch size at the profile's opt/max (default 1)")
    p.add_argument("--range", dest="input_range", default=None, help="value range LO,HI")
    p.add_argument("--static", action="store_true",
                   help="a fixed input shape: ONNX at --tile, .pt2 at --shapes HxW (channels-last, no statistics)")
    p.add_argument("--no-validate", dest="validate", action="store_false",
                   help="skip the comparison with the fp32 torch reference")
    p.add_argument("--device", default=None,
                   help="where a .pt2 or .plan runs: cpu, cuda, cuda:N (default: cuda when present)")
    p.add_argument("--arch", default=None, help="override the architecture read off a checkpoint")
    p.add_argument("--bn-stats", choices=("batch", "running"), default="batch",
                   help="batch-norm statistics: per image (default, as the official test.py) or the stored ones")
    p.add_argument("--overwrite", action="store_true", help="replace an existing artifact")


def cmd_build(args) -> int:
    from ..options import check_device
    from .engine import parse_range
    check_device(args.device)
    report = build(args.src, args.out, fp16=args.fp16, shapes=args.shapes, tile=args.tile, batch=args.batch,
                   input_range=parse_range(args.input_range), do_validate=args.validate,
                   overwrite=args.overwrite, device=args.device, bn_stats=args.bn_stats, arch=args.arch,
                   static=args.static)
    v = report.get("validation")
    check = f", PSNR {v['psnr_db']:.1f} dB, max error {v['max_error']:.2e}" if v else ""
    print(f"built {report['output']} ({report['precision']}, {report['bytes'] / 1e6:.1f} MB, "
          f"{report['build_seconds']:.1f} s{check})", file=sys.stderr)
    print(json.dumps(report, default=str))
    return 0


cmd_build.add_args = add_build_args
