"""Every `streamgan ...` command shown in the README and docs/ is run as shown, on small inputs,
in a folder holding the files it names (a tiny checkpoint under each name the pages use, a
photograph, a folder of them, a short x264 clip with AAC audio, training folders), with only
sizes and lengths made small (``SMALL``): each must exit 0. The commands that need what a test
machine has not got are listed with why (``ELSEWHERE``); the list must match the pages exactly,
so a new command is either run here or listed."""

import shlex
import shutil

import cv2
import numpy as np
import pytest

from streamgan.cli import main
from tests.docs.test_docs_commands import CASES
from tests.streamgan.helpers import photo, tiny_resnet, write_clip

# what each command is given on top of what the page shows (later options win in argparse)
SMALL = {
    "demo": ["--seconds", "1", "--no-progress"],
    "bench": ["--size", "96x64", "--frames", "2", "--warmup", "1"],
    "train": ["--steps", "2", "--size", "256", "--load-size", "256", "--workers", "0", "--ngf", "8", "--ndf", "8",
              "--batch-size", "1"],
    "doctor": ["--no-selftest"],  # (its ~10 s self-test: tests/streamgan/test_doctor.py)
    "run": ["--no-progress"],
}

# commands that need a network peer, a camera, a browser or a cluster: where they are exercised
ELSEWHERE = {
    "network": ("rtsp://cam/1", "udp://0.0.0.0:5000"),  # tests/streamgan/test_live.py over loopback
    "camera": ("webcam --engine G.pth --camera 0",),  # tests/streamgan/test_live.py (a file played live)
    "browser": ("serve --engine G.pth",),  # tests/streamgan/test_serve.py (Chromium, WHIP/WHEP)
    "cluster": ("--ray",),  # tests/streamgan/test_ray.py (a local Ray instance)
}


# files another shown command writes -> the commands that read them
READS = {"G.onnx": ("run", "bench"), "out.mp4": ("eval-temporal",), "out_flow.mp4": ("eval-temporal",)}


def _elsewhere(command: str) -> str | None:
    return next((why for why, marks in ELSEWHERE.items() if any(m in command for m in marks)), None)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """The files the pages' commands name, small."""
    d = tmp_path_factory.mktemp("docs_ws")
    ckpt = tiny_resnet(d / "G.pth")
    shutil.copy(ckpt, d / "latest_net_G.pth")
    cv2.imwrite(str(d / "photo.jpg"), photo(72, 96)[:, :, ::-1])
    (d / "photos").mkdir()
    for i in range(2):
        cv2.imwrite(str(d / "photos" / f"p{i}.png"), photo(64, 80, shift=5 * i)[:, :, ::-1])
    frames = [photo(64, 96, shift=2 * i) for i in range(6)]
    write_clip(d / "video.mp4", frames, audio_streams=1)
    shutil.copy(d / "video.mp4", d / "4k.mp4")  # (named as the page names it; small)
    (d / "footage").mkdir()
    shutil.copy(d / "video.mp4", d / "footage" / "a.mp4")
    (d / "prepared").mkdir()  # outputs of other shown commands, put in place for those that read them
    assert main(["build", str(d / "G.pth"), "--out", str(d / "prepared" / "G.onnx")]) == 0
    for name, temporal in (("out.mp4", "off"), ("out_flow.mp4", "flow")):
        assert main(["run", "--engine", str(d / "G.pth"), "--input", str(d / "video.mp4"), "--output",
                     str(d / "prepared" / name), "--temporal", temporal, "--no-progress", "--quiet"]) == 0
    rs = np.random.RandomState(0)
    for root in ("horse2zebra", "DIR", "d2n"):  # unpaired (trainA, trainB) and paired (train: A | B) sets
        for sub in ("trainA", "trainB", "train"):
            (d / root / sub).mkdir(parents=True)
            for i in range(2):
                img = (rs.rand(40, 80 if sub == "train" else 40, 3) * 255).astype(np.uint8)
                cv2.imwrite(str(d / root / sub / f"{i}.png"), img)
    return d


RUNNABLE = [(p, n, c) for p, n, c in CASES if _elsewhere(c) is None]


def test_every_command_is_run_or_listed():
    listed = [c for _, _, c in CASES if _elsewhere(c)]
    for marks in ELSEWHERE.values():  # each listed mark still names a shown command
        assert all(any(m in c for c in listed) for m in marks), marks
    assert len(RUNNABLE) + len(listed) == len(CASES) and len(RUNNABLE) >= 15


@pytest.mark.parametrize("page,line,command", RUNNABLE, ids=[f"{p.name}:{n}" for p, n, _ in RUNNABLE])
def test_a_shown_command_runs(page, line, command, workspace, tmp_path, monkeypatch):
    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws)
    monkeypatch.chdir(ws)
    argv = shlex.split(command)[1:]
    argv += SMALL.get(argv[0], [])
    for f in (ws / "prepared").iterdir():  # what a command reads that another shown command writes
        if f.name in command and argv[0] in READS[f.name]:
            shutil.copy(f, ws / f.name)
    assert main(argv) == 0, f"{page.name}:{line}: `{command}` failed"
