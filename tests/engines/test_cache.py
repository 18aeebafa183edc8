"""$STREAMGAN_CACHE shared by runs started at once: entries written whole, updates under a lock,
damaged entries rebuilt; and real ``streamgan run`` processes started together on an empty cache."""

import json
import multiprocessing
import os
import subprocess
import sys

import av
import numpy as np
import pytest

from engines.cache import entry, read_json, update_json
from tests.streamgan.helpers import textured_frames, tiny_resnet, write_clip


def _add_keys(args):
    path, start = args
    for i in range(start, start + 20):
        update_json(path, lambda d, i=i: d.update({str(i): i}))


def test_updates_from_several_processes_all_land(tmp_path):
    path = tmp_path / "choices.json"
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(_add_keys, [(path, k * 100) for k in range(4)])
    assert sorted(map(int, read_json(path))) == sorted(k * 100 + i for k in range(4) for i in range(20))
    assert not list(tmp_path.glob("*.tmp"))


def test_damaged_entries_are_rebuilt_not_trusted(tmp_path):
    made = []

    def make(tmp):
        made.append(1)
        tmp.write_bytes(b"x" * 1000)
        return {"layers": 3}
    path = tmp_path / "graph.onnx"
    assert entry(path, make) == {"layers": 3, "bytes": 1000} and len(made) == 1
    assert entry(path, make)["layers"] == 3 and len(made) == 1  # found, not made again
    path.write_bytes(b"x" * 400)  # cut short (a full disk, a copy interrupted)
    assert entry(path, make)["layers"] == 3 and len(made) == 2 and path.stat().st_size == 1000
    (tmp_path / "graph.onnx.json").write_text('{"layers": ')  # half a JSON file
    assert entry(path, make)["layers"] == 3 and len(made) == 3
    assert read_json(tmp_path / "graph.onnx.json")["bytes"] == 1000
    (tmp_path / "bad.json").write_bytes(b"\x00\xff not json")
    assert read_json(tmp_path / "bad.json", {}) == {}


def _frames(path):
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("shared")
    return d, tiny_resnet(d / "g.pth"), write_clip(d / "in.mp4", textured_frames(12, 48, 64), audio_streams=1)


def _start(d, engine, clip, cache, out):
    return subprocess.Popen([sys.executable, "-m", "streamgan", "run", "--engine", str(engine), "--input", str(clip),
                             "--output", str(out), "--quiet", "--no-progress", "--crf", "0", "--pix-fmt", "yuv444p"],
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "STREAMGAN_CACHE": str(cache)})


def test_runs_started_together_on_an_empty_cache_all_succeed_alike(setup):
    """Three processes at once on an empty cache, twice: each exports the graph, compiles OpenVINO
    blobs and measures the backends, or waits for the one doing it. None dies (a blob read while
    another process wrote it gave SIGBUS), and all run the same choice: equal frames."""
    d, gen, clip = setup
    for round_ in range(2):
        cache = d / f"cache{round_}"
        procs = [(_start(d, gen, clip, cache, d / f"o{round_}_{i}.mp4"), d / f"o{round_}_{i}.mp4") for i in range(3)]
        for p, _ in procs:
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, (round_, p.returncode, err[-2000:])
        frames = [_frames(out) for _, out in procs]
        assert all(f.shape == (12, 48, 64, 3) for f in frames)
        assert all(np.array_equal(frames[0], f) for f in frames[1:]), round_
    choices = read_json(d / "cache1" / "choices" / "fastest.json")
    assert len(choices) == 1  # measured once, remembered once


def test_a_damaged_cache_is_rebuilt(setup):
    """Every cache file cut to half its bytes (and the JSON to garbage): the next run rebuilds
    what it needs and gives the same frames as on the intact cache."""
    d, gen, clip = setup
    cache = d / "damaged"
    p = _start(d, gen, clip, cache, d / "first.mp4")
    assert p.wait(timeout=300) == 0
    damaged = 0
    for f in cache.rglob("*"):
        if f.is_file() and not f.name.endswith(".lock"):
            data = f.read_bytes()
            f.write_bytes(b'{"garbage' if f.suffix == ".json" else data[: len(data) // 2])
            damaged += 1
    assert damaged >= 4  # choices, exported graph and its facts, compiled blobs
    p = _start(d, gen, clip, cache, d / "again.mp4")
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-2000:]
    a, b = _frames(d / "first.mp4").astype(float), _frames(d / "again.mp4").astype(float)
    # (the backend is measured anew: it may come out the other way, at the same precision floor)
    assert 10 * np.log10(255 ** 2 / max(np.mean((a - b) ** 2), 1e-12)) >= 40
    assert json.loads((cache / "choices" / "fastest.json").read_text())  # written anew
