"""Scale-out on a real local Ray instance: folders and keyframe segments, frame-exact, faults, resume."""

import json

import av
import numpy as np
import pytest

from streamgan import open_engine, translate_video
from streamgan.cli import main
from streamgan.media.video import VideoReader
from streamgan.scale.segments import join, plan_items, translate_item
from tests.streamgan.helpers import audio_ends, textured_frames, tiny_resnet, write_clip

pytest.importorskip("ray")

LOSSLESS = ["--crf", "0", "--pix-fmt", "yuv444p"]


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    d = tmp_path_factory.mktemp("ray")
    gen = tiny_resnet(d / "g.pth")
    folder = d / "in"
    folder.mkdir()
    for i, name in enumerate(("a.mp4", "b.mkv", "c.mp4")):
        write_clip(folder / name, textured_frames(12, 48, 64, seed=i), audio_streams=1)
    long = write_clip(folder / "long.mp4", textured_frames(96, 48, 64, shift=2, seed=9), fps=12,
                      audio_streams=1, gop=12)
    engine = open_engine(gen, device="cpu", backend="torch", precision="fp32")
    single = d / "single"
    single.mkdir()
    for v in sorted(folder.iterdir()):
        translate_video(v, single / v.name, engine, crf=0, pix_fmt="yuv444p", progress=False)
    return d, gen, folder, long, single


def _frames(path):
    return [(f.pts, f.rgb) for f in VideoReader(path)]


def _run(d, gen, src, out, *extra):
    report = d / f"report_{out.name}.json"
    rc = main(["run", "--engine", str(gen), "--backend", "torch", "--precision", "fp32", "--input", str(src),
               "--output", str(out), "--ray", "--segment-seconds", "1.5", "--no-progress", "--report", str(report),
               *LOSSLESS, *extra])
    return rc, (json.loads(report.read_text()) if report.exists() else None)


def _assert_same(a, b):
    fa, fb = _frames(a), _frames(b)
    assert len(fa) == len(fb)
    assert [p for p, _ in fa] == [p for p, _ in fb]  # the source's timestamps
    assert all(np.array_equal(x, y) for (_, x), (_, y) in zip(fa, fb))
    (codec_a, end_a), = audio_ends(a)  # exactly one audio stream, as long as the single pass's
    (codec_b, end_b), = audio_ends(b)
    assert codec_a == codec_b and end_b == pytest.approx(end_a, abs=0.05)


def test_folder_and_segments_equal_single_process(job):
    d, gen, folder, long, single = job
    assert len(plan_items(long, d / "x.mp4", 1.5, 0, d)) >= 4
    rc, report = _run(d, gen, folder, d / "out")
    assert rc == 0 and report["videos"]["long.mp4"]["segments"] >= 4 and report["frames"] == 3 * 12 + 96
    assert sum(w["frames"] for w in report["per_worker"].values()) == report["frames"]
    for v in folder.iterdir():
        _assert_same(single / v.name, d / "out" / v.name)
    assert sorted(p.name for p in (d / "out").iterdir()) == sorted(p.name for p in folder.iterdir())



def test_a_copy_cut_between_keyframes_in_segments(job, tmp_path):
    """`ffmpeg -ss 1.3 -c copy` of the long clip: its MP4 holds the frames from the keyframe before
    the cut, which its edit list leaves out; the segments start at the frames it shows (a segment
    began at a left-out frame's negative time: '--start must be >= 0', four times) and the result
    is the single pass's, frame for frame."""
    import subprocess
    d, gen, folder, long, single = job
    cut = tmp_path / "cut.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-ss", "1.3", "-i", str(long), "-c", "copy", str(cut)], check=True)
    with open_engine(gen, device="cpu", backend="torch", precision="fp32") as engine:
        translate_video(cut, tmp_path / "single.mp4", engine, crf=0, pix_fmt="yuv444p", progress=False)
    rc, report = _run(d, gen, cut, tmp_path / "cut_ray.mp4")  # (the report goes beside the job's: its own name)
    assert rc == 0 and report
    _assert_same(tmp_path / "single.mp4", tmp_path / "cut_ray.mp4")


def test_joined_recordings_are_not_cut_into_segments(job, tmp_path):
    """Two recordings joined end to end (their times start again in the middle): the planner does
    not cut it (the join refused it: 'joined 40 frames for 120'), a worker runs it whole, and the
    result is the single pass's."""
    d, gen, folder, long, single = job
    parts = [write_clip(tmp_path / f"{k}.ts", textured_frames(48, 48, 64, seed=k), fps=12, audio_streams=1, gop=12)
             for k in range(2)]
    src = tmp_path / "joined.ts"
    src.write_bytes(parts[0].read_bytes() + parts[1].read_bytes())
    assert len(plan_items(src, tmp_path / "x.mp4", 1.5, 0, tmp_path)) == 1
    with open_engine(gen, device="cpu", backend="torch", precision="fp32") as engine:
        translate_video(src, tmp_path / "single.mp4", engine, crf=0, pix_fmt="yuv444p", progress=False)
    rc, report = _run(d, gen, src, tmp_path / "joined_ray.mp4")
    assert rc == 0 and report
    _assert_same(tmp_path / "single.mp4", tmp_path / "joined_ray.mp4")
    assert len(_frames(tmp_path / "joined_ray.mp4")) == 96

def test_killed_worker_is_replaced_and_output_unchanged(job, monkeypatch):
    d, gen, folder, long, single = job
    monkeypatch.setenv("STREAMGAN_TEST_KILL", "long.mp4#1:5")
    rc, report = _run(d, gen, long, d / "killed.mp4")
    assert rc == 0 and report["retries"] == 1 and report["failures"][0]["item"] == "long.mp4#1"
    _assert_same(single / "long.mp4", d / "killed.mp4")
    assert not list(d.glob(".killed*"))  # no manifest, segments or partial files left


def test_resume_runs_only_what_is_missing(job, monkeypatch):
    d, gen, folder, long, single = job
    out = d / "resumed.mp4"
    monkeypatch.setenv("STREAMGAN_TEST_KILL", "long.mp4#2:3")
    rc, _ = _run(d, gen, long, out, "--retries", "0")
    assert rc == 3 and not out.exists()  # failed: nothing at the output path
    manifest = d / ".resumed.mp4.streamgan-job.json"
    finished = json.loads(manifest.read_text())["done"]
    assert 0 < len(finished) < 4 and "long.mp4#2" not in finished
    monkeypatch.delenv("STREAMGAN_TEST_KILL")
    rc, report = _run(d, gen, long, out, "--resume")
    assert rc == 0 and report["items"] == 4 - len(finished)
    _assert_same(single / "long.mp4", out)


def test_lead_in_warms_temporal_state_at_joins(job, tmp_path):
    """With --temporal flow, frames right after a join match the single pass once the lead-in has
    warmed the smoother: much nearer with a lead-in than without."""
    d, gen, folder, long, single = job
    engine = open_engine(gen, device="cpu", backend="torch", precision="fp32")
    kw = dict(crf=0, pix_fmt="yuv444p", temporal="flow", overwrite=True)
    translate_video(long, tmp_path / "one.mp4", engine, progress=False, **kw)
    ref = [f for _, f in _frames(tmp_path / "one.mp4")]
    worst = {}
    for lead in (0, 16):
        items = plan_items(long, tmp_path / f"j{lead}.mp4", 1.5, lead, tmp_path)
        for it in items:
            translate_item(it, engine, kw)
        join(items, tmp_path / f"j{lead}.mp4")
        got = [f for _, f in _frames(tmp_path / f"j{lead}.mp4")]
        starts = [sum(i.frames for i in items[:k]) for k in range(1, len(items))]
        mse = [np.mean((got[s + j].astype(float) - ref[s + j]) ** 2) for s in starts for j in range(3)]
        worst[lead] = 10 * np.log10(255 ** 2 / max(max(mse), 1e-12))
    assert worst[16] >= 50 and worst[16] >= worst[0] + 10, worst


def test_joining_a_cluster_that_is_not_there_is_one_line_and_writes_nothing(job, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    d, gen, folder, long, single = job
    out = tmp_path / "out"
    rc = main(["run", "--engine", str(gen), "--backend", "torch", "--input", str(folder), "--output", str(out),
               "--ray", "auto", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("streamgan: error: --ray auto: no Ray cluster to join"), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()  # no folder, no segments left behind


def test_globs_and_images_on_ray_are_said(job, tmp_path, capsys, monkeypatch):
    """A glob runs on Ray like a folder; images beside the videos are named as left out (Ray runs
    videos), and a glob of images alone is one line (no cluster is started for either here)."""
    import cv2
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    d, gen, folder, long, single = job
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "a.mp4").write_bytes((folder / "long.mp4").read_bytes())
    cv2.imwrite(str(mixed / "b.png"), np.zeros((8, 8, 3), np.uint8))
    base = ["run", "--engine", str(gen), "--backend", "torch", "--no-progress", "--output", str(tmp_path / "out"),
            "--ray", "auto", "--input"]
    rc = main(base + [str(mixed / "*")])
    err = capsys.readouterr().err
    assert rc == 2 and "the 1 image(s) here are left out" in err and "no Ray cluster to join" in err, err
    rc = main(base + [str(mixed / "*.png")])
    err = capsys.readouterr().err
    assert rc == 2 and "no videos to run on Ray" in err and len(err.strip().splitlines()) == 1, err


def test_segments_joined_into_webm(job, capsys):
    """A long video cut into segments, out as .webm: the segments are encoded in the output's own
    codec (VP9) and the source's AAC re-encoded to Opus at the join, said in a note; every frame at
    the source's time, the audio as long as the source's (the join copied segments of H.264 into
    .webm and AAC beside them: an error out of the muxer)."""
    d, gen, folder, long, single = job
    out = d / "long.webm"
    rc = main(["run", "--engine", str(gen), "--backend", "torch", "--precision", "fp32", "--input", str(long),
               "--output", str(out), "--ray", "--segment-seconds", "1.5", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 0 and "audio: aac re-encoded as libopus" in err, err
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "vp9"
        assert [a.codec_context.name for a in c.streams.audio] == ["opus"]
    def times(path):
        with av.open(str(path)) as c:
            t = [f.time for f in c.decode(video=0)]
        return np.array(t) - t[0]
    assert len(times(out)) == 96 and np.allclose(times(out), times(long), atol=1e-3)
    (_, end_src), = audio_ends(long)
    (_, end_out), = audio_ends(out)
    assert end_out == pytest.approx(end_src, abs=0.05)
