"""Live filter with a clip standing in for the camera; bench JSON schema and plot."""

import json
import os
import shutil
import subprocess
import time

import cv2
import pytest

from streamgan.cli import main
from tests.streamgan.helpers import textured_frames, tiny_resnet, write_clip


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("live")
    return d, tiny_resnet(d / "g.pth"), write_clip(d / "cam.mp4", textured_frames(36, 64, 96), fps=24)


def test_webcam_headless_stats(setup, tmp_path):
    d, gen, clip = setup
    stats_path, rec = tmp_path / "s.json", tmp_path / "rec.mp4"
    rc = main(["webcam", "--engine", str(gen), "--camera", str(clip), "--no-window", "--frames", "20",
               "--stats-json", str(stats_path), "--record", str(rec), "--temporal", "flow", "--side-by-side"])
    assert rc == 0
    s = json.loads(stats_path.read_text())
    assert s["written"] == s["translated"] == 20 and s["received"] >= s["translated"] + s["dropped"]
    assert s["warm_up_s"] > 0  # the pipeline ran on a capture-size frame before the camera started
    lat = s["latency_ms"]
    for stage in ("wait", "translate", "temporal", "output", "end_to_end", "translate.infer"):
        assert lat[stage]["p50"] <= lat[stage]["p95"] <= lat[stage]["p99"]
        assert lat[stage]["n"] == 20
    import av
    with av.open(str(rec)) as c:
        assert c.streams.video[0].codec_context.width == 192 and sum(1 for _ in c.decode(video=0)) == 20


def test_webcam_whole_clip_accounts_every_frame(setup, tmp_path):
    d, gen, clip = setup
    stats_path = tmp_path / "s.json"
    assert main(["webcam", "--engine", str(gen), "--camera", str(clip), "--no-window",
                 "--stats-json", str(stats_path)]) == 0
    s = json.loads(stats_path.read_text())
    assert s["translated"] + s["skipped"] + s["dropped"] == s["received"] == 36


def test_webcam_errors(setup, capsys):
    d, gen, clip = setup
    assert main(["webcam", "--engine", str(gen), "--camera", "/dev/video99", "--no-window"]) == 2
    assert "cannot open" in capsys.readouterr().err
    existing = d / "existing.mp4"
    existing.write_bytes(b"keep")
    # refused before the camera is opened (this one does not exist, so that error would come first)
    assert main(["webcam", "--engine", str(gen), "--camera", "/dev/video99", "--no-window", "--record",
                 str(existing)]) == 2
    assert "already exists" in capsys.readouterr().err and existing.read_bytes() == b"keep"
    if not os.environ.get("DISPLAY"):
        assert main(["webcam", "--engine", str(gen), "--camera", str(clip), "--view", "window", "--frames", "2"]) == 2
        assert "cannot open a window here" in capsys.readouterr().err


def _has_gui() -> bool:
    return "GTK" in cv2.getBuildInformation() or "QT" in cv2.getBuildInformation().split("GUI")[-1][:200]


@pytest.mark.skipif(not shutil.which("Xvfb") or not shutil.which("import"), reason="needs Xvfb and ImageMagick")
def test_window_screenshot_under_xvfb(setup, tmp_path):
    if not _has_gui():
        pytest.skip("this OpenCV build has no GUI backend (opencv-python-headless)")
    d, gen, clip = setup
    xvfb = subprocess.Popen(["Xvfb", ":93", "-screen", "0", "640x480x24"])
    try:
        env = {**os.environ, "DISPLAY": ":93"}
        proc = subprocess.Popen(["streamgan", "webcam", "--engine", str(gen), "--camera", str(clip)], env=env)
        time.sleep(3)
        shot = tmp_path / "shot.png"
        subprocess.run(["import", "-window", "root", str(shot)], env=env, check=True)
        proc.terminate()
        assert shot.stat().st_size > 1000
    finally:
        xvfb.terminate()


def test_bench_json_and_plot(setup, tmp_path):
    d, gen, clip = setup
    out, png = tmp_path / "b.json", tmp_path / "b.png"
    assert main(["bench", "--engine", str(gen), "--size", "96x64", "--frames", "6", "--warmup", "2",
                 "--json", str(out), "--plot", str(png), "--compare", str(gen), "--tile", "48"]) == 0
    r = json.loads(out.read_text())
    assert {"device", "date", "versions", "options", "results"} <= set(r) and r["versions"]["torch"]
    assert len(r["results"]) == 2
    for res in r["results"]:
        assert {"engine", "meta", "fps", "latency_ms", "warmup_seconds", "peak_host_mb", "peak_device_mb",
                "plan"} <= set(res)
        assert res["plan"]["tiles"] > 1 and res["fps"] > 0
        for stage in ("preprocess", "stats", "infer", "postprocess", "end_to_end"):
            lat = res["latency_ms"][stage]
            assert lat["p50"] <= lat["p95"] <= lat["p99"] and lat["n"] == 6
    img = cv2.imread(str(png))
    assert img is not None and img.shape[1] > 800
    assert main(["bench", "--engine", str(gen), "--size", "big"]) == 2
