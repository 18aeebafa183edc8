"""Warping error E_warp (Lai et al., ECCV 2018) of a translated video, with flow of its input.

For each pair (t-1, t): forward flow F (t-1 -> t) and backward flow B (t -> t-1) on the input
frames; warp output frame t to t-1 with F; mean squared difference over non-occluded pixels
(Ruder et al.: occluded where |F + B~|^2 > 0.01 (|F|^2 + |B~|^2) + 0.5), pixels in [0, 1].
"""

import sys
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..media.video import VideoReader
from .smooth import dis_flow, fb_consistent, remap


def input_flows(inputs: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(forward t-1 -> t, backward t -> t-1) DIS flow (medium preset) of each consecutive input pair."""
    preset = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
    flows = []
    for t in range(1, len(inputs)):
        a = cv2.cvtColor(inputs[t - 1], cv2.COLOR_RGB2GRAY)
        b = cv2.cvtColor(inputs[t], cv2.COLOR_RGB2GRAY)
        flows.append((dis_flow(a, b, preset), dis_flow(b, a, preset)))
    return flows


def _masked_mse(a: np.ndarray, b: np.ndarray, valid: np.ndarray) -> float:
    diff = ((a.astype(np.float32) - b.astype(np.float32)) / 255.0) ** 2
    n = valid.sum() * diff.shape[-1]
    return float(diff[valid].sum() / n) if n else float(diff.mean())


def frame_warping_errors(inputs: list[np.ndarray], outputs: list[np.ndarray],
                         flows: list | None = None) -> list[float]:
    """E_warp of every consecutive pair (len(inputs) - 1 values)."""
    flows = flows or input_flows(inputs)
    return [_masked_mse(remap(outputs[t], fw), outputs[t - 1], fb_consistent(fw, bw))
            for t, (fw, bw) in enumerate(flows, start=1)]


def detail_ratio(outputs: list[np.ndarray], reference: list[np.ndarray]) -> float:
    """Detail kept: mean variance of the Laplacian of ``outputs`` over that of ``reference`` (1 = all)."""
    def energy(frames):
        return np.mean([cv2.Laplacian(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), cv2.CV_32F).var() for f in frames])
    return float(energy(outputs) / max(energy(reference), 1e-12))


def lag_ratio(outputs: list[np.ndarray], reference: list[np.ndarray], flows: list) -> float:
    """Distance of each smoothed frame to the current per-frame output, over the distance of the
    previous per-frame output (warped onto the current frame) to it; < 1: no lag."""
    near = far = 0.0
    for t, (fw, bw) in enumerate(flows, start=1):
        valid = fb_consistent(bw, fw)
        near += _masked_mse(outputs[t], reference[t], valid)
        far += _masked_mse(remap(reference[t - 1], bw), reference[t], valid)
    return near / far if far else 0.0


def _frames(path: Path) -> list[np.ndarray]:
    return [f.rgb for f in VideoReader(path)]


def _psnr(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    mse = np.mean([np.mean((x.astype(np.float32) - y.astype(np.float32)) ** 2) for x, y in zip(a, b)])
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def evaluate_temporal(input: str | Path, outputs: dict[str, str | Path], reference: str | Path | None = None) -> dict:
    """E_warp for each named output video (flow of ``input``); with ``reference`` (the per-frame
    output) also PSNR to it, detail kept (Laplacian energy ratio) and the lag ratio."""
    inp = _frames(Path(input))
    ref = _frames(Path(reference)) if reference else None
    flows = input_flows(inp)
    table = {}
    for name, path in outputs.items():
        out = _frames(Path(path))
        if len(out) != len(inp):
            raise InputError(f"{path}: {len(out)} frames, the input has {len(inp)}")
        if out[0].shape != inp[0].shape:
            raise InputError(f"{path}: frame size {out[0].shape[:2]} differs from the input's {inp[0].shape[:2]}")
        per_frame = frame_warping_errors(inp, out, flows)
        table[name] = {"e_warp": float(np.mean(per_frame)), "per_frame": per_frame,
                       "psnr_to_reference": _psnr(out, ref) if ref else None,
                       "detail": detail_ratio(out, ref) if ref else None,
                       "lag": lag_ratio(out, ref, flows) if ref else None}
    return table


def plot_warping_errors(table: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 3.5), dpi=110)
    for name, row in table.items():
        ax.plot(range(1, len(row["per_frame"]) + 1), row["per_frame"], label=f"{name} (mean {row['e_warp']:.5f})")
    ax.set_xlabel("frame")
    ax.set_ylabel("E_warp")
    ax.set_title("Warping error per frame (lower = steadier)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def add_eval_args(p) -> None:
    p.add_argument("--input", required=True, help="the untranslated video (flow is computed on it)")
    p.add_argument("--output", required=True, action="append", help="translated video(s); NAME=PATH to label")
    p.add_argument("--reference", default=None,
                   help="per-frame output: PSNR to it, detail kept (Laplacian energy) and lag (< 1: none)")
    p.add_argument("--plot", default=None, help="write E_warp per frame as a PNG (or PDF, SVG)")
    p.add_argument("--json", default=None, help="write the table as JSON here")
    p.add_argument("--overwrite", action="store_true", help="replace existing --plot / --json files")


def cmd_eval_temporal(args) -> int:
    from ..errors import InputError
    from ..options import check_plot, check_report
    outputs = {}
    for item in args.output:
        name, sep, path = item.partition("=")
        outputs[name if sep else Path(item).stem] = path if sep else item
    for path in (args.input, *outputs.values(), *([args.reference] if args.reference else [])):
        if not Path(path).is_file():
            raise InputError(f"{path}: no such file")
    check_plot(args.plot, args.overwrite, [Path(args.input), *map(Path, outputs.values())])
    check_report(args.json, args.overwrite, "--json")
    table = evaluate_temporal(args.input, outputs, args.reference)
    print(f"{'output':<20} {'E_warp':>10} {'PSNR to ref':>12} {'detail':>7} {'lag':>6}")
    for name, row in table.items():
        p, d, lag = row["psnr_to_reference"], row["detail"], row["lag"]
        print(f"{name:<20} {row['e_warp']:>10.6f} {('%.2f dB' % p) if p is not None else '-':>12} "
              f"{('%.2fx' % d) if d is not None else '-':>7} {('%.2f' % lag) if lag is not None else '-':>6}")
    if args.plot:
        from ..media.files import atomic_path
        with atomic_path(Path(args.plot)) as tmp:
            plot_warping_errors(table, tmp)
        print(f"plot: {args.plot}", file=sys.stderr)
    if args.json:
        from engines.cache import write_json
        write_json(Path(args.json), table)
    return 0


cmd_eval_temporal.add_args = add_eval_args
