"""``streamgan doctor``: what this machine can run and how fast — the first thing for a bug report.

Facts (versions, devices, precisions, codecs, protocols, optional parts), then a self-test of
about 10 s: the bundled model through each engine path available here, on a synthetic street scene
of its own domain, in ms a frame and dB to its fp32 eager output (after uint8 rounding).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROBE = (256, 448)  # (h, w) of the self-test frame
CODECS = ("libx264", "libx265", "libvpx-vp9", "libaom-av1")
HW_CODECS = ("h264_nvenc", "hevc_nvenc", "h264_qsv", "h264_vaapi")  # built in; usable with their hardware
PROTOCOLS = ("rtmp", "rtsp", "srt", "https")


def _version(module: str) -> str | None:
    try:
        return getattr(__import__(module), "__version__", "installed")
    except Exception:
        return None


def _cpu() -> dict:
    from engines.cpuinfo import cpu_flags, cpu_name
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8", "amx_tile")
           if f in cpu_flags()]
    return {"model": cpu_name(), "cores": cores, "features": isa}


def _torch() -> dict:
    import torch
    out = {"version": torch.__version__, "threads": torch.get_num_threads(), "cuda": None}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        out["cuda"] = {"device": p.name, "memory_gib": round(p.total_memory / 2 ** 30, 1),
                       "capability": f"{p.major}.{p.minor}", "cuda_version": torch.version.cuda,
                       "count": torch.cuda.device_count()}
    return out


def _triton() -> dict:
    version = _version("triton")
    if version is None:
        return {"version": None}
    import torch
    if not torch.cuda.is_available():
        return {"version": version, "kernels": "the interpreter only (no GPU): the fused kernels run on CUDA"}
    try:  # a kernel compiled and run here
        import kernels
        x = (torch.rand(1, 3, 8, 8, device="cuda") * 2 - 1)
        kernels.postprocess(x)
        torch.cuda.synchronize()
        return {"version": version, "kernels": "compile and run"}
    except Exception as exc:
        return {"version": version, "kernels": f"failed: {exc.__class__.__name__}: {str(exc)[:200]}"}


def _openvino() -> dict | None:
    try:
        import openvino as ov
    except ImportError:
        return None
    core = ov.Core()
    devices = {}
    for d in core.available_devices:
        try:
            devices[d] = list(core.get_property(d, "OPTIMIZATION_CAPABILITIES"))
        except Exception:
            devices[d] = []
    return {"version": ov.__version__, "devices": devices}


def _onnxruntime() -> dict | None:
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    return {"version": ort.__version__, "providers": ort.get_available_providers()}


def _protocol(name: str) -> bool:
    """Whether this FFmpeg speaks ``name``: opening a closed local port fails with "protocol not
    found" only when it does not."""
    import av
    try:
        with av.open(f"{name}://127.0.0.1:9/x", options={"timeout": "200000", "rw_timeout": "200000",
                                                          "stimeout": "200000"}, timeout=0.5):
            pass
    except av.error.ProtocolNotFoundError:
        return False
    except Exception:
        return True
    return True


def _media() -> dict:
    import av
    import cv2

    from ..live.webcam import opencv_has_gui
    ffmpeg = {k: ".".join(str(p) for p in v) if isinstance(v, tuple) else str(v)
              for k, v in getattr(av, "library_versions", {}).items() if k in ("libavcodec", "libavformat")}
    return {"pyav": av.__version__, "ffmpeg": getattr(av, "ffmpeg_version_info", None) or ffmpeg,
            "encoders": [c for c in CODECS if c in av.codecs_available],
            "hardware_encoders": [c for c in HW_CODECS if c in av.codecs_available],
            "protocols": [p for p in PROTOCOLS if _protocol(p)],
            "opencv": cv2.__version__, "opencv_window": opencv_has_gui()}


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "firefox"):
        if shutil.which(name):
            return name
    return None


def facts() -> dict:
    return {"python": platform.python_version(), "platform": platform.platform(), "cpu": _cpu(),
            "torch": _torch(), "triton": _triton(), "tensorrt": _version("tensorrt"), "openvino": _openvino(),
            "onnxruntime": _onnxruntime(), "media": _media(), "ray": _version("ray"),
            "live_page": {"aiortc": _version("aiortc"), "aiohttp": _version("aiohttp"), "browser": _browser()}}


def candidates(f: dict) -> list[tuple[str, dict]]:
    """(label, open_engine options) of the engine paths this machine has."""
    from engines.cpuinfo import cpu_has_fast_bf16
    out = [("torch fp32", dict(backend="torch", precision="fp32", device="cpu"))]
    if cpu_has_fast_bf16():
        out.append(("torch bf16", dict(backend="torch", precision="bf16", device="cpu")))
    if f["openvino"]:
        out.append(("openvino fp32", dict(backend="openvino", precision="fp32")))
        if "BF16" in f["openvino"]["devices"].get("CPU", []):
            out.append(("openvino bf16", dict(backend="openvino", precision="bf16")))
        if "INT8" in f["openvino"]["devices"].get("CPU", []):  # as a run's content check makes it
            out.append(("openvino int8 (calibrated on the probe)", dict(backend="openvino", precision="fp32",
                                                                      int8=True)))
    if f["onnxruntime"]:
        out.append(("onnxruntime fp32 (.onnx built from it)", dict(onnx=True)))
    if f["torch"]["cuda"]:
        out.append(("torch cuda fp16", dict(backend="torch", precision="fp16", device="cuda")))
    return out


def selftest(f: dict, frames: int = 3) -> list[dict]:
    """Each engine path on the probe: ms a frame (median of ``frames`` after one warm-up) and dB of
    its picture to the fp32 eager one. A path that fails is reported with why, and the rest go on."""
    import numpy as np
    import torch

    from engines.metrics import psnr

    from .. import load_generator, open_engine
    from ..data.synthetic import make_scene, render
    from ..translate.translator import Translator
    from .demo import BUNDLED
    frame = render(make_scene(3), 1.0, "day", PROBE)
    with torch.no_grad():
        x = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 127.5 - 1
        want = np.rint(((load_generator(BUNDLED)(x)[0].permute(1, 2, 0).numpy() + 1) * 127.5).clip(0, 255))
    results = []
    tmp = Path(tempfile.mkdtemp(prefix="streamgan_doctor_"))
    for label, opts in candidates(f):
        row = {"path": label}
        try:
            path = BUNDLED
            if opts.pop("onnx", False):
                from ..translate.build import build
                path = tmp / "day2night.onnx"
                build(BUNDLED, path, do_validate=False)
                opts = dict(backend="onnxruntime")
            int8 = opts.pop("int8", False)
            with open_engine(path, **opts) as eng:
                if int8:
                    eng.observe(True)
                    Translator(eng)(frame)
                    eng.observe(False)
                    eng = eng.quantized(eng.observed())
                tr = Translator(eng)
                got = tr(frame)
                times = []
                for _ in range(frames):
                    t = time.perf_counter()
                    got = tr(frame)
                    times.append(time.perf_counter() - t)
                row.update(ms=round(1000 * statistics.median(times), 1), precision=eng.meta.precision,
                           db=round(float(psnr(torch.from_numpy(got.astype(np.float32)),
                                               torch.from_numpy(want.astype(np.float32)), 255.0)), 1))
        except Exception as exc:  # one path's failure is a finding, not the end of the test
            row["failed"] = f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        results.append(row)
    shutil.rmtree(tmp, ignore_errors=True)
    return results


def _line(k: str, v) -> str:
    if isinstance(v, dict):
        v = ", ".join(f"{a} {b}" for a, b in v.items() if b not in (None, [], {}))
    elif isinstance(v, list):
        v = ", ".join(map(str, v)) or "none"
    return f"{k:>12}: {v if v not in (None, '') else 'not installed'}"


def report(f: dict, tests: list[dict] | None) -> str:
    lines = [_line("python", f"{f['python']} on {f['platform']}"),
             _line("cpu", f"{f['cpu']['model']}, {f['cpu']['cores']} cores ({', '.join(f['cpu']['features']) or '-'})"),
             _line("torch", f"{f['torch']['version']}, {f['torch']['threads']} threads"),
             _line("cuda", f["torch"]["cuda"] or "no GPU"),
             _line("triton", f["triton"]), _line("tensorrt", f["tensorrt"]),
             _line("openvino", f"{f['openvino']['version']}: " + "; ".join(
                 f"{d} {' '.join(c)}" for d, c in f["openvino"]["devices"].items()) if f["openvino"] else None),
             _line("onnxruntime", f"{f['onnxruntime']['version']}: {', '.join(f['onnxruntime']['providers'])}"
                   if f["onnxruntime"] else None),
             _line("pyav", f"{f['media']['pyav']} (FFmpeg {f['media']['ffmpeg']})"),
             _line("encoders", ", ".join(f["media"]["encoders"]) + (
                 f"; built in, for their hardware: {', '.join(f['media']['hardware_encoders'])}"
                 if f["media"]["hardware_encoders"] else "")),
             _line("protocols", f["media"]["protocols"]),
             _line("opencv", f"{f['media']['opencv']}, " + ("can open windows" if f["media"]["opencv_window"]
                                                            else "no GUI (webcam shows its view in the browser)")),
             _line("ray", f["ray"]), _line("live page", f["live_page"])]
    if tests is not None:
        lines.append(f"self-test: the bundled model on a {PROBE[1]}x{PROBE[0]} street scene, against its fp32 "
                     "eager picture")
        for r in tests:
            lines.append(f"  {r['path']:<40} " + (f"failed: {r['failed']}" if "failed" in r else
                                                  f"{r['ms']:7.1f} ms  {r['db']:5.1f} dB  ({r['precision']})"))
    return "\n".join(lines)


def add_doctor_args(p) -> None:
    p.add_argument("--json", default=None, metavar="PATH",
                   help="also write the findings as JSON ('-': to stdout instead of the text; default none)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.add_argument("--no-selftest", action="store_true", help="facts only, no engine runs (default: run them)")


def cmd_doctor(args) -> int:
    from ..options import check_report
    if args.json not in (None, "-"):
        check_report(args.json, args.overwrite, "--json")
    f = facts()
    tests = None if args.no_selftest else selftest(f)
    if args.json == "-":
        print(json.dumps({"facts": f, "selftest": tests}, indent=2, default=str))
        return 0
    print(report(f, tests))
    if args.json:
        from engines.cache import write_json
        write_json(Path(args.json), json.loads(json.dumps({"facts": f, "selftest": tests}, default=str)))
    sys.stdout.flush()
    return 0


cmd_doctor.add_args = add_doctor_args
