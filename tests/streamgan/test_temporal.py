"""Temporal smoothing: lower warping error, no ghosting, scene cuts pass through."""

import numpy as np
import pytest
import torch

from streamgan import open_engine, translate_video
from streamgan.cli import main
from streamgan.temporal import make_smoother
from streamgan.temporal.evaluate import evaluate_temporal
from streamgan.temporal.smooth import CUT_THRESHOLD, _gray, is_cut
from tests.streamgan.helpers import textured_frames, tiny_resnet, write_clip


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("temporal")
    gen = tiny_resnet(d / "g.pth", seed=1, norm="none")  # per-frame output is stable on clean input
    clean = textured_frames(16, 96, 128, shift=4, vshift=0, seed=2)
    noisy = textured_frames(16, 96, 128, shift=4, vshift=0, seed=2, noise=0.04)
    engine = open_engine(gen, device="cpu", backend="torch", precision="fp32")
    return d, engine, write_clip(d / "clean.mp4", clean, crf=0), write_clip(d / "noisy.mp4", noisy, crf=0)


def _translate(engine, src, out, mode):
    translate_video(src, out, engine, temporal=mode, crf=0, pix_fmt="yuv444p", progress=False)
    return out


_TABLES: dict = {}


def ewarp_table(d, engine, src) -> dict:
    """E_warp, detail and lag of every mode on ``src`` (translated once per test module)."""
    if src not in _TABLES:
        outs = {m: _translate(engine, src, d / f"{src.stem}_{m}.mp4", m) for m in ("off", "ema", "motion", "flow")}
        _TABLES[src] = evaluate_temporal(src, outs, reference=outs["off"])
    return _TABLES[src]


def test_flow_lowers_warping_error(setup):
    d, engine, _, noisy = setup
    table = ewarp_table(d, engine, noisy)
    off, flow = table["off"]["e_warp"], table["flow"]["e_warp"]
    assert flow <= 0.6 * off, {k: v["e_warp"] for k, v in table.items()}
    assert table["motion"]["e_warp"] < off and table["ema"]["e_warp"] < off


def test_flow_keeps_detail_and_does_not_lag(setup):
    d, engine, _, noisy = setup
    table = ewarp_table(d, engine, noisy)
    flow = table["flow"]
    assert flow["detail"] >= 0.8 and flow["lag"] < 1.0, flow
    assert table["ema"]["detail"] < flow["detail"]  # the plain average softens


def test_energy_preserving_bands_beat_a_plain_blend():
    """Same flow and weights; without the per-band gain (max_gain 1) the texture fades."""
    frames = textured_frames(12, 96, 128, shift=3, vshift=0, seed=5)
    rs = np.random.RandomState(1)
    noisy_out = [np.clip(f + rs.randn(*f.shape) * 12, 0, 255).astype(np.uint8) for f in frames]

    def run(**kw):
        sm = make_smoother("flow")
        for k, v in kw.items():
            setattr(sm, k, v)
        return [sm(f, o)[0] for f, o in zip(frames, noisy_out)]

    from streamgan.temporal.evaluate import detail_ratio
    kept, plain = detail_ratio(run(), noisy_out), detail_ratio(run(max_gain=1.0, band_weights=(1, 1, 1)), noisy_out)
    assert kept >= 0.8 and plain < kept - 0.1, (kept, plain)


def test_no_ghosting_on_clean_motion(setup):
    d, engine, clean, _ = setup
    table = ewarp_table(d, engine, clean)
    assert table["flow"]["psnr_to_reference"] >= 30, table["flow"]["psnr_to_reference"]


def test_scene_cut_resets():
    frames = textured_frames(10, 64, 64, cut_at=5, seed=4)
    rs = np.random.RandomState(0)
    fresh = [(rs.rand(64, 64, 3) * 255).astype(np.uint8) for _ in frames]
    for mode in ("ema", "motion", "flow"):
        sm = make_smoother(mode, 0.8)
        outs = [sm(f, o) for f, o in zip(frames, fresh)]
        assert np.array_equal(outs[0][0], fresh[0])
        assert outs[5][1] and np.array_equal(outs[5][0], fresh[5]), mode
        assert not any(cut for _, cut in outs[1:5])


def test_a_pan_over_fine_texture_is_not_a_cut():
    """Every pixel of a fine texture changes as the camera pans (more than CUT_THRESHOLD), yet it
    is one shot: smoothing goes on. A cut to another texture of the same statistics still resets."""
    import cv2
    rs = np.random.RandomState(5)
    fine = [cv2.resize(rs.rand(50, 75, 3).astype(np.float32) * 255, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
            for _ in range(2)]
    pan = [np.clip(fine[0][10:154, 7 * i:7 * i + 192], 0, 255).astype(np.uint8) for i in range(6)]
    other = np.clip(fine[1][10:154, 0:192], 0, 255).astype(np.uint8)
    g = [_gray(f, 0.25).astype(np.float32) for f in pan[:2]]  # what is_cut compares
    assert np.abs(g[0] - g[1]).mean() / 255 > CUT_THRESHOLD  # the plain difference alone reads a cut
    assert not any(is_cut(a, b) for a, b in zip(pan, pan[1:]))
    assert is_cut(pan[-1], other)
    sm = make_smoother("flow")
    assert not any(sm(f, f)[1] for f in pan) and sm(other, other)[1] and sm.cuts == 1


def test_eval_temporal_cli(setup, capsys, tmp_path):
    d, engine, clean, _ = setup
    out = _translate(engine, clean, tmp_path / "o.mp4", "off")
    assert main(["eval-temporal", "--input", str(clean), "--output", f"plain={out}", "--plot",
                 str(tmp_path / "e.png")]) == 0
    assert "plain" in capsys.readouterr().out and (tmp_path / "e.png").stat().st_size > 1000
    assert main(["eval-temporal", "--input", str(clean), "--output", str(d / "noisy.mp4"),
                 "--reference", str(tmp_path / "missing.mp4")]) == 2


@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
def test_torch_flow_smoother_matches_the_host_one(device):
    """The GPU smoother's arithmetic (on the CPU here, and on CUDA when present) equals the host one's."""
    from streamgan.temporal.smooth_torch import TorchFlowSmoother
    frames = textured_frames(8, 72, 100, shift=3, vshift=1, seed=8)
    rs = np.random.RandomState(2)
    outs = [np.clip(f + rs.randn(*f.shape) * 10, 0, 255).astype(np.uint8) for f in frames]
    host, dev = make_smoother("flow"), TorchFlowSmoother(device=device)
    for f, o in zip(frames, outs):
        a, b = host(f, o)[0].astype(float), dev(f, o)[0].astype(float)
        assert 10 * np.log10(255 ** 2 / max(np.mean((a - b) ** 2), 1e-12)) >= 40
    assert isinstance(make_smoother("flow", device="cuda:0"), TorchFlowSmoother)


def test_flow_started_ahead_gives_the_same_frames():
    """``ahead`` runs the flow on a worker thread beside the model; the frames are the same as
    computed in turn, through a scene cut, a reset and frames announced but never blended."""
    frames = textured_frames(12, 64, 96, shift=2, vshift=1, cut_at=7, seed=9)
    rs = np.random.RandomState(3)
    outs = [np.clip(f + rs.randn(*f.shape) * 8, 0, 255).astype(np.uint8) for f in frames]
    in_turn, early = make_smoother("flow"), make_smoother("flow")
    want = [in_turn(f, o)[0] for f, o in zip(frames, outs)]
    import threading
    where, flow = [], early._flow_and_trust_between

    def recorded(prev, rgb):
        where.append(threading.current_thread().name.startswith("flow"))
        return flow(prev, rgb)
    early._flow_and_trust_between = recorded
    got = []
    early.ahead(frames[0])
    for i, (f, o) in enumerate(zip(frames, outs)):
        if i + 1 < len(frames):
            early.ahead(frames[i + 1])  # one frame ahead, as frames in flight are
        got.append(early(f, o)[0])
    assert all(np.array_equal(a, b) for a, b in zip(got, want))
    assert len(where) == len(frames) - 1 and all(where)  # every flow on the worker, none again in turn
    assert not early._ahead or set(early._ahead) <= {id(frames[7])}  # the cut frame was never blended
    early.reset()
    early.ahead(frames[1])
    assert np.array_equal(early(frames[0], outs[0])[0], outs[0])  # after a reset: passes through
