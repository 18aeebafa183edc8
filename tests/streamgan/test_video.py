"""The video pipeline on real PyAV-made files: frame counts, timestamps, audio, odd sizes, bad input."""

import os
import signal
import subprocess
import sys
from fractions import Fraction

import av
import numpy as np
import pytest

from streamgan import open_engine, translate_video
from streamgan.cli import main
from streamgan.media.video import VideoReader, to_rgb
from streamgan.translate.translator import TranslateOptions
from tests.conftest import DEVICES
from tests.streamgan.helpers import (
    audio_ends,
    av_starts,
    db,
    identity_onnx,
    interlaced_clip,
    interruptible,
    late_video,
    photo,
    textured_frames,
    tiny_resnet,
    write_clip,
    write_tagged_clip,
)


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    return tiny_resnet(tmp_path_factory.mktemp("g") / "g.pth")


@pytest.fixture(scope="module", params=DEVICES)
def engine(gen, request):
    """The checkpoint's automatic engine on each device present (CPU always, CUDA when there is one)."""
    return open_engine(gen, device=request.param)


def _streams(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        pts = [f.pts for f in c.decode(v)]
    with av.open(str(path)) as c:
        out = {"pts": pts, "tb": c.streams.video[0].time_base, "size": (c.streams.video[0].codec_context.width,
                                                                         c.streams.video[0].codec_context.height)}
    out["audio"] = audio_ends(path)
    return out


@pytest.mark.parametrize("suffix,vfr,audio,size", [
    (".mp4", False, 0, (64, 96)), (".mp4", False, 2, (64, 96)), (".mkv", True, 1, (64, 96)),
    (".mp4", True, 1, (65, 97)), (".mkv", False, 0, (47, 33)),
])
def test_frames_timestamps_audio_preserved(tmp_path, engine, suffix, vfr, audio, size):
    src = write_clip(tmp_path / f"in{suffix}", textured_frames(18, *size), audio_streams=audio, vfr=vfr)
    out = tmp_path / f"out{suffix}"
    report = translate_video(src, out, engine, progress=False)
    a, b = _streams(src), _streams(out)
    assert report["frames_in"] == report["frames_out"] == len(a["pts"]) == len(b["pts"]) == 18
    assert all(y > x for x, y in zip(b["pts"], b["pts"][1:]))
    src_t = [float(p * a["tb"]) for p in a["pts"]]
    out_t = [float(p * b["tb"]) for p in b["pts"]]
    assert np.allclose(np.array(out_t) - out_t[0], np.array(src_t) - src_t[0], atol=1e-3)  # VFR stays VFR
    assert b["size"] == (size[1], size[0])
    assert [c for c, _ in b["audio"]] == [c for c, _ in a["audio"]]
    for (_, ea), (_, eb) in zip(a["audio"], b["audio"]):
        assert abs(ea - eb) < 0.05
    if size[0] % 2:  # kept whole: 4:4:4 (the input's layout here; from a 4:2:0 input with a note)
        with av.open(str(out)) as c:
            assert c.streams.video[0].codec_context.pix_fmt.startswith("yuv444p")


def test_segment_and_side_by_side(tmp_path, engine):
    src = write_clip(tmp_path / "in.mp4", textured_frames(24, 64, 64), fps=12, audio_streams=1)
    out = tmp_path / "seg.mp4"
    r = translate_video(src, out, engine, start=0.5, duration=1.0, side_by_side=True, progress=False)
    assert r["frames_out"] == 12
    info = _streams(out)
    assert info["size"] == (128, 64) and float(info["pts"][0] * info["tb"]) < 0.01
    assert abs(info["audio"][0][1] - 1.0) < 0.1


def test_tiled_video_runs(tmp_path, engine):
    src = write_clip(tmp_path / "in.mp4", textured_frames(6, 96, 128))
    r = translate_video(src, tmp_path / "o.mp4", engine, options=TranslateOptions(tile=48, batch=3), progress=False)
    assert r["frames_out"] == 6 and r["ms_per_frame"]["stats"] > 0


def _run(args, capsys):
    rc = main(args)
    return rc, capsys.readouterr().err


def test_bad_inputs(tmp_path, gen, capsys):
    clip = write_clip(tmp_path / "ok.mp4", textured_frames(12, 32, 32))
    base = ["run", "--engine", str(gen), "--no-progress"]
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("not a video at all\n" * 10)
    (tmp_path / "emptydir").mkdir()
    with av.open(str(tmp_path / "audio.m4a"), "w") as c:  # a file without a video stream
        a = c.add_stream("aac", rate=48000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 48000
        for p in [*a.encode(frame), *a.encode()]:
            c.mux(p)
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"keep")
    cases = [
        (tmp_path / "missing.mp4", tmp_path / "o1.mp4", "no such file"),
        (tmp_path / "emptydir", tmp_path / "o2", "no images or videos"),
        (tmp_path / "empty.mp4", tmp_path / "o3.mp4", "empty file"),
        (tmp_path / "text.mp4", tmp_path / "o4.mp4", "not a readable video"),
        (tmp_path / "audio.m4a", tmp_path / "o5.mp4", "no video stream"),
        (clip, clip, "output equals the input"),
        (clip, tmp_path / "nowhere" / "o.mp4", "does not exist"),
        (clip, existing, "already exists"),
        ("-", tmp_path / "o6.mp4", "standard input is not read"),
        (clip, "-", "standard output is not written"),
    ]
    for src, dst, msg in cases:
        rc, err = _run(base + ["--input", str(src), "--output", str(dst)], capsys)
        assert rc != 0 and msg in err and "Traceback" not in err, (src, err)
        assert len(err.strip().splitlines()) == 1
    assert existing.read_bytes() == b"keep"
    # a folder nobody can write to, root included (CI runs as root, who may write into a 0500 folder)
    rc, err = _run(base + ["--input", str(clip), "--output", "/proc/o.mp4"], capsys)
    assert rc == 2 and "not writable" in err and len(err.strip().splitlines()) == 1, err
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    rc, err = _run(base + ["--input", str(clip), "--output", str(ro / "o.mp4")], capsys)
    if os.geteuid() != 0:
        assert rc == 2 and "not writable" in err
    else:  # root may: the run writes it
        assert rc == 0 and (ro / "o.mp4").exists()
    assert not list(tmp_path.glob("*.partial*"))


CONTAINERS = [(".mp4", "libx264", 1), (".mkv", "libx264", 1), (".webm", "libvpx-vp9", 0), (".avi", "mpeg4", 1),
              (".mov", "libx264", 1), (".ts", "libx264", 1)]


@pytest.mark.parametrize("suffix,codec,audio", CONTAINERS)
def test_truncated_file_in_every_container(tmp_path, gen, capsys, suffix, codec, audio):
    """A file cut to 60% of its bytes: refused with nothing written, or with --keep-partial written
    with the number of lost frames said; the whole file of the same container runs clean (an AVI
    of mpeg4 with B-frames indexes one more chunk than it has frames: not a loss)."""
    clip = write_clip(tmp_path / f"t{suffix}", textured_frames(40, 64, 64), codec=codec, audio_streams=audio,
                      fps=20)
    base = ["run", "--engine", str(gen), "--no-progress"]
    rc, err = _run(base + ["--input", str(clip), "--output", str(tmp_path / "whole.mkv")], capsys)
    assert rc == 0 and "truncated" not in err and len(_streams(tmp_path / "whole.mkv")["pts"]) == 40, err
    data = clip.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    base += ["--input", str(cut)]
    rc, err = _run(base + ["--output", str(tmp_path / "o.mkv")], capsys)
    assert rc in (2, 3) and not (tmp_path / "o.mkv").exists(), err
    if rc == 2:  # a QuickTime file keeps its index at the end: without it nothing can be read
        assert suffix == ".mov" and "not a readable video" in err
        return
    assert "truncated" in err and len(err.strip().splitlines()) == 1
    rc, err = _run(base + ["--output", str(tmp_path / "p.mkv"), "--keep-partial"], capsys)
    n = len(_streams(tmp_path / "p.mkv")["pts"])
    assert rc == 0 and 0 < n < 40
    said = int(err.split("warning: input truncated, ")[1].split()[0]) if suffix != ".ts" else None
    if said is not None:  # the count said is the count lost, to a frame
        assert abs(said - (40 - n)) <= 1, (said, n)
    else:  # a transport stream states no length: the cut shows as a partial 188-byte packet
        assert "an unknown number of frames lost" in err


def test_segment_past_the_end_writes_nothing(tmp_path, gen, capsys):
    clip = write_clip(tmp_path / "c.mp4", textured_frames(24, 32, 32), fps=12)
    base = ["run", "--engine", str(gen), "--no-progress", "--input", str(clip), "--output", str(tmp_path / "o.mp4")]
    rc, err = _run(base + ["--start", "100"], capsys)
    assert rc == 2 and "only 2.00 s long" in err and not (tmp_path / "o.mp4").exists()
    rc, err = _run(base + ["--start", "1.99"], capsys)
    assert rc == 3 and "holds no video frames" in err and not (tmp_path / "o.mp4").exists()
    assert not list(tmp_path.glob(".o.*"))


def test_ctrl_c_leaves_nothing(tmp_path, gen):
    # long enough that the run is still going when the signal comes, on a fast warm CPU path too
    clip = write_clip(tmp_path / "long.mp4", textured_frames(2000, 64, 64))
    out = tmp_path / "o.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "streamgan", "run", "--engine", str(gen), "--input", str(clip),
                             "--output", str(out), "--no-progress", "--tile", "32"],
                            stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)
    import time
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".o.*partial*")):
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, (proc.returncode, err[-2000:])
    assert not out.exists() and not list(tmp_path.glob(".o.*"))


def test_memory_flat_on_long_video():
    """Peak memory does not grow with length (bounded queues), at a real frame size: 720p, 40 and
    200 frames. Were the pipeline to keep every frame, the longer run would hold 160 more frames
    (440 MB of RGB alone); the limit is 20 frames' RGB."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).parents[2] / "bench" / "bench_memory.py"
    spec = importlib.util.spec_from_file_location("bench_memory", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    w, h = 1280, 720
    short, long = mod.measure(40, w, h), mod.measure(200, w, h)
    assert long["frames"] == 200
    assert long["peak_rss_mb"] - short["peak_rss_mb"] < 20 * w * h * 3 / 2 ** 20, (short, long)


def test_rotation_metadata_kept(tmp_path, engine):
    src = tmp_path / "rot.mp4"
    with av.open(str(src), "w") as c:
        s = c.add_stream("libx264", rate=12)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.set_display_rotation(90)
        for f in textured_frames(6, 48, 64):
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    out = tmp_path / "out.mp4"
    translate_video(src, out, engine, progress=False)
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0))
        assert frame.rotation == 90 and (frame.width, frame.height) == (64, 48)



def test_interlaced_video_is_deinterlaced_and_anamorphic_video_keeps_its_shape(tmp_path, capsys):
    """An interlaced, anamorphic clip (a photograph panned 3 px a field): the model gets progressive
    frames (bwdif) far nearer each frame's first moment than the woven fields, the output is
    progressive with the input's pixel shape (16:15; it was written square, showing 4:3 video at
    15:16 of its width), and --deinterlace off gives the woven frames as they are."""
    moments = [photo(96, 128, shift=3 * k) for k in range(24)]
    src = tmp_path / "interlaced.mp4"
    woven = interlaced_clip(src, moments)
    frames = [f.rgb for f in VideoReader(src)]
    assert len(frames) == len(woven) == 12
    for n, f in enumerate(frames):
        assert db(f, moments[2 * n]) > db(woven[n], moments[2 * n]) + 6, n  # 25-30 dB against 16-20
        assert db(f[0::2], moments[2 * n][0::2]) > 45  # the top field itself is kept
    model = identity_onnx(tmp_path / "id.onnx")
    for mode, want in (("auto", frames), ("off", woven)):
        out = tmp_path / f"{mode}.mp4"
        rc, err = _run(["run", "--engine", str(model), "--range", "0,1", "--input", str(src), "--output", str(out),
                        "--crf", "0", "--pix-fmt", "yuv444p", "--no-progress", "--deinterlace", mode], capsys)
        assert rc == 0, err
        assert "interlaced input (top field first): " + ("deinterlaced" if mode == "auto" else "not") in err
        with av.open(str(out)) as c:
            v = c.streams.video[0]
            assert v.sample_aspect_ratio == Fraction(16, 15) and v.codec_context.field_order in (0, 1)
            got = [f.to_ndarray(format="rgb24") for f in c.decode(v)]
        assert len(got) == 12 and min(db(a, b) for a, b in zip(got, want)) > 45, mode


def test_the_files_tags_are_kept(tmp_path, gen, capsys):
    """A phone's or camera's tags survive as the ffmpeg command keeps them: the title and place,
    each stream's language, a camera's timecode (a .mov writes its timecode track); the file's
    creation time is the new file's own (they were all dropped)."""
    clip = write_clip(tmp_path / "in.mp4", textured_frames(12, 32, 48), audio_streams=1)
    src = tmp_path / "tagged.mov"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(clip), "-c", "copy", "-metadata", "title=Paris walk",
                    "-metadata", "location=+48.8584+002.2945/", "-metadata", "creation_time=2026-05-01T10:00:00Z",
                    "-metadata:s:v:0", "language=fra", "-metadata:s:a:0", "language=fra", "-timecode",
                    "01:00:00:00", str(src)], check=True)
    for suffix in (".mp4", ".mov", ".mkv"):
        out = tmp_path / f"out{suffix}"
        rc, err = _run(["run", "--engine", str(gen), "--no-progress", "--input", str(src), "--output", str(out)],
                       capsys)
        assert rc == 0, err
        with av.open(str(out)) as c:
            tags = {k.lower(): v for k, v in c.metadata.items()}
            assert tags["title"] == "Paris walk" and tags["location"] == "+48.8584+002.2945/", (suffix, tags)
            assert "2026-05-01" not in tags.get("creation_time", ""), suffix
            assert [s.metadata.get("language") for s in c.streams if s.type != "data"] == ["fra", "fra"], suffix
            assert {k.lower(): v for k, v in c.streams.video[0].metadata.items()}["timecode"] == "01:00:00:00"
            if suffix == ".mov":
                assert [s.metadata.get("timecode") for s in c.streams if s.type == "data"] == ["01:00:00:00"]
        assert "data streams" not in err  # (the timecode track is the timecode tag's, kept)


def test_attachments_are_carried_into_matroska_and_named_where_left_out(tmp_path, gen, capsys):
    """A Matroska file's attachments (the fonts of its styled subtitles) go into a .mkv output with
    their file name, type and bytes (they were dropped without a word); a container that cannot
    hold them gets a note naming them."""
    clip = write_clip(tmp_path / "in.mp4", textured_frames(12, 32, 48), audio_streams=1)
    font = tmp_path / "Subs.ttf"
    font.write_bytes(np.random.default_rng(0).bytes(3000))
    src = tmp_path / "fonts.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(clip), "-attach", str(font), "-metadata:s:t",
                    "mimetype=application/x-truetype-font", "-c", "copy", str(src)], check=True)
    for suffix in (".mkv", ".mp4"):
        out = tmp_path / f"out{suffix}"
        rc, err = _run(["run", "--engine", str(gen), "--no-progress", "--input", str(src), "--output", str(out)],
                       capsys)
        assert rc == 0, err
        with av.open(str(out)) as c:
            kept = [(s.name, s.mimetype, bytes(s.data)) for s in c.streams.attachments]
        if suffix == ".mkv":
            assert kept == [("Subs.ttf", "application/x-truetype-font", font.read_bytes())]
        else:
            assert not kept and "the input's attachments (Subs.ttf) are left out: mp4 cannot hold them" in err


def test_a_video_that_starts_after_its_audio_stays_in_step(tmp_path, gen, capsys):
    """Picture 1 s after the sound (and a segment of it): the output keeps the picture 1 s after
    the sound, as the ffmpeg command does (its picture was moved to 0 and its sound left at 0: the
    whole video 1 s early)."""
    src = late_video(tmp_path / "late.mp4", write_clip(tmp_path / "in.mp4", textured_frames(24, 32, 48),
                                                       audio_streams=1), 1.0)
    video, audio = av_starts(src)
    assert video - audio == pytest.approx(1.0, abs=0.03)
    for extra, lag in (([], 1.0), (["--start", "0.5"], 0.5)):
        out = tmp_path / f"out{len(extra)}.mp4"
        rc, err = _run(["run", "--engine", str(gen), "--no-progress", "--input", str(src), "--output", str(out),
                        *extra], capsys)
        assert rc == 0, err
        video, audio = av_starts(out)
        assert video - audio == pytest.approx(lag, abs=0.03) and min(video, audio) < 0.03, (extra, video, audio)



def test_a_copy_cut_between_keyframes_is_not_taken_for_a_truncated_file(tmp_path, gen, capsys):
    """`ffmpeg -ss 0.7 -c copy`: the MP4 holds the frames from the keyframe before the cut and an
    edit list that leaves them out; its sample count (24) is more than its length (1.3 s at 12 fps:
    16 frames) and the run refused it as truncated. Every frame the file shows is translated."""
    clip = write_clip(tmp_path / "in.mp4", textured_frames(24, 32, 48), audio_streams=1)
    src = tmp_path / "cut.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-ss", "0.7", "-i", str(clip), "-c", "copy", str(src)], check=True)
    with av.open(str(src)) as c:
        shown = sum(1 for _ in c.decode(video=0))
        assert c.streams.video[0].frames > shown  # the case: samples the edit list leaves out
    out = tmp_path / "out.mp4"
    rc, err = _run(["run", "--engine", str(gen), "--no-progress", "--input", str(src), "--output", str(out)], capsys)
    assert rc == 0, err
    assert len(list(VideoReader(out))) == shown


def test_joined_recordings_of_two_sizes(tmp_path, gen, capsys):
    """Two MPEG-TS recordings joined end to end (`cat a.ts b.ts`, as captures are): the second's
    times start again and its picture is smaller. Every frame comes out, at the first's size, each
    part after the one before, with its sound (the encoder refused the times that went back: a
    traceback); the run says what it did."""
    a = write_clip(tmp_path / "a.ts", [photo(48, 64, shift=i) for i in range(12)], audio_streams=1)
    b = write_clip(tmp_path / "b.ts", [photo(24, 32, shift=i) for i in range(12)], audio_streams=1)
    src = tmp_path / "joined.ts"
    src.write_bytes(a.read_bytes() + b.read_bytes())
    out = tmp_path / "out.mp4"
    rc, err = _run(["run", "--engine", str(gen), "--no-progress", "--input", str(src), "--output", str(out)], capsys)
    assert rc == 0, err
    assert "times went back 1 time(s)" in err and "size changed at frame 12 (32x24): scaled to" in err
    with av.open(str(out)) as c:
        frames = list(c.decode(video=0))
    times = [f.time for f in frames]
    assert len(frames) == 24 and {(f.width, f.height) for f in frames} == {(64, 48)}
    assert all(y > x for x, y in zip(times, times[1:])) and times[-1] == pytest.approx(23 / 12, abs=0.05)
    (_, end), = audio_ends(out)
    assert end == pytest.approx(2.0, abs=0.1)  # both parts' sound, one after the other

def test_avi_with_b_frames(tmp_path, capsys):
    """An AVI holding H.264 with B-frames (as DivX/Xvid AVIs hold theirs): AVI stores no
    presentation times, and its frames decoded with times out of order (the encoder refused them:
    the run ended in a traceback). Every frame comes out once, in order, a frame period apart,
    each the input's own picture (identity model, lossless)."""
    src = write_clip(tmp_path / "b.avi", [photo(48, 64, shift=2 * i) for i in range(24)], audio_streams=1)
    with av.open(str(src)) as c:
        assert c.streams.video[0].codec_context.has_b_frames  # the case
        want = [to_rgb(f) for f in c.decode(video=0)]  # (as streamgan decodes them)
    out = tmp_path / "o.mp4"
    rc, err = _run(["run", "--engine", str(identity_onnx(tmp_path / "id.onnx")), "--range", "0,1", "--input",
                    str(src), "--output", str(out), "--crf", "0", "--pix-fmt", "yuv444p", "--no-progress"], capsys)
    assert rc == 0, err
    with av.open(str(out)) as c:
        frames = list(c.decode(video=0))
    times = np.array([f.time for f in frames])
    assert len(frames) == 24 and np.allclose(np.diff(times), 1 / 12, atol=1e-3), times
    assert min(db(to_rgb(f), w) for f, w in zip(frames, want)) > 45
    assert audio_ends(out)

def test_default_encoder_settings_are_in_the_stream(tmp_path, engine):
    """x264 records its settings in the stream: medium at the given crf, with the shorter rate-control
    lookahead (20 frames, media/video.py); another preset keeps its own."""
    src = write_clip(tmp_path / "in.mp4", textured_frames(6, 48, 64))
    for preset, lookahead in (("medium", 20), ("slow", 50)):
        out = tmp_path / f"{preset}.mp4"
        translate_video(src, out, engine, progress=False, preset=preset)
        settings = out.read_bytes()
        assert b"crf=18.0" in settings and f"rc_lookahead={lookahead} ".encode() in settings, preset


def _tone(path, stream: int) -> tuple[float, float, float]:
    """(dominant frequency in Hz, rms, seconds) of one audio stream of ``path``, decoded."""
    with av.open(str(path)) as c:
        s = c.streams.audio[stream]
        x = np.concatenate([f.to_ndarray().reshape(-1, f.samples)[0] for f in c.decode(s)])
        rate = s.rate
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x)), float(np.sqrt(np.mean(x ** 2))), len(x) / rate


def test_webm_output_gets_vp9_and_its_audio_reencoded(tmp_path, gen, capsys):
    """.webm holds neither H.264 nor AAC: with no --codec the video is VP9 and each AAC stream is
    re-encoded to Opus (said in a note), the same tone at the same level and length; the picture is
    the one the same run writes to .mp4."""
    src = write_clip(tmp_path / "in.mp4", [photo(64, 96, shift=2 * i) for i in range(12)], audio_streams=2)
    outs, errs = {}, {}
    for suffix in (".webm", ".mp4"):
        outs[suffix] = tmp_path / f"out{suffix}"
        rc, errs[suffix] = _run(["run", "--engine", str(gen), "--no-progress", "--precision", "fp32", "--input",
                                 str(src), "--output", str(outs[suffix])], capsys)
        assert rc == 0, errs[suffix]
    assert "aac re-encoded as libopus (webm cannot hold aac)" in errs[".webm"]
    assert "re-encoded" not in errs[".mp4"]
    with av.open(str(outs[".webm"])) as c:
        assert c.streams.video[0].codec_context.name == "vp9"
        assert [a.codec_context.name for a in c.streams.audio] == ["opus", "opus"]
    for k, hz in enumerate((440, 550)):  # write_clip's tones
        f_in, rms_in, t_in = _tone(src, k)
        f_out, rms_out, t_out = _tone(outs[".webm"], k)
        assert abs(f_in - hz) < 5 and abs(f_out - hz) < 5, (k, f_in, f_out)
        assert abs(rms_out / rms_in - 1) < 0.05 and abs(t_out - t_in) < 0.03, (rms_in, rms_out, t_in, t_out)
    webm, mp4, given = (np.stack([f.rgb for f in VideoReader(p)]) for p in (outs[".webm"], outs[".mp4"], src))
    assert len(webm) == len(mp4) == 12
    # two lossy encodes (VP9 crf 31, x264 crf 18) of one translation, far nearer than to its input
    assert db(webm, mp4) > db(webm, given) + 10, (db(webm, mp4), db(webm, given))


def _with_subtitles(clip, tmp_path, suffix: str, codec: str):
    """``clip`` with one text subtitle cue, 'hello' from 0 to 0.4 s, in ``codec`` (Debian's ffmpeg)."""
    srt = tmp_path / "subs.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,400\nhello\n")
    out = tmp_path / f"subbed{suffix}"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(clip), "-i", str(srt), "-map", "0", "-map", "1", "-c", "copy",
                    "-c:s", codec, str(out)], check=True)
    return out


def test_text_subtitles_are_carried_into_containers_of_another_format(tmp_path, gen, capsys):
    """A phone's MP4 subtitles (mov_text) into .mkv (SubRip) and .webm (WebVTT): re-encoded, with
    a note, the cue's text and times kept (the run refused, naming .mkv as the way out even for
    .mkv)."""
    subbed = _with_subtitles(write_clip(tmp_path / "in.mp4", textured_frames(8, 32, 32), audio_streams=1),
                             tmp_path, ".mp4", "mov_text")
    for suffix, codec in ((".mkv", "subrip"), (".webm", "webvtt")):
        out = tmp_path / f"out{suffix}"
        rc, err = _run(["run", "--engine", str(gen), "--no-progress", "--input", str(subbed), "--output", str(out)],
                       capsys)
        assert rc == 0 and f"subtitles: mov_text re-encoded as {codec}" in err, err
        cues = subprocess.run(["ffmpeg", "-v", "error", "-i", str(out), "-map", "0:s", "-f", "srt", "-"],
                              capture_output=True, text=True, check=True).stdout
        times = cues.splitlines()[1]  # "00:00:00,000 --> 00:00:00,400", to the container's start shift
        start, end = (float(t.replace(",", ".").split(":")[-1]) for t in times.split(" --> "))
        assert "hello" in cues and abs(start) < 0.03 and abs(end - start - 0.4) < 0.002, cues


def test_a_poster_before_the_video_is_not_taken_for_it(tmp_path, gen, capsys):
    """An MKV that carries a one-frame MJPEG poster as its first video stream: the video is the
    stream translated (the poster was, one frame out, and the video left out without a word), and
    the poster is carried along."""
    import cv2
    clip = write_clip(tmp_path / "in.mp4", textured_frames(12, 32, 48), audio_streams=1)
    cv2.imwrite(str(tmp_path / "poster.jpg"), textured_frames(1, 40, 24, seed=5)[0])
    src = tmp_path / "poster_first.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(tmp_path / "poster.jpg"), "-i", str(clip), "-map", "0", "-map",
                    "1", "-c", "copy", str(src)], check=True)
    with av.open(str(src)) as c:
        assert c.streams.video[0].codec_context.name == "mjpeg"  # the case: the poster comes first
    out = tmp_path / "out.mkv"
    rc, err = _run(["run", "--engine", str(gen), "--no-progress", "--input", str(src), "--output", str(out)], capsys)
    assert rc == 0, err
    with av.open(str(out)) as c:
        assert sorted(s.codec_context.name for s in c.streams.video) == ["h264", "mjpeg"]
    assert len(list(VideoReader(out))) == 12 and audio_ends(out)


def test_outputs_a_container_cannot_hold_are_one_line(tmp_path, gen, capsys):
    """Subtitles into .avi (it holds none) and a .gif output: one error line each, nothing written
    (PyAV crashed the process on the first before)."""
    clip = write_clip(tmp_path / "in.mp4", textured_frames(6, 32, 32), audio_streams=1)
    subbed = _with_subtitles(clip, tmp_path, ".mkv", "srt")
    base = ["run", "--engine", str(gen), "--no-progress", "--input"]
    for src, out, msg in ((subbed, "o.avi", "the output (avi) cannot hold the input's srt subtitle stream"),
                          (clip, "o.gif", "a gif file holds no video")):
        rc, err = _run(base + [str(src), "--output", str(tmp_path / out)], capsys)
        assert rc == 2 and msg in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / out).exists()
    assert not list(tmp_path.glob("*.partial*"))


def test_folder_runs_refuse_file_outputs_and_report_bad_videos(tmp_path, gen, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    write_clip(folder / "a.mp4", textured_frames(6, 32, 32))
    write_clip(folder / "b.mp4", textured_frames(6, 32, 32, seed=2))
    base = ["run", "--engine", str(gen), "--no-progress", "--input", str(folder)]
    rc, err = _run(base + ["--output", str(tmp_path / "out.mp4")], capsys)
    assert rc == 2 and "needs an output folder" in err and not (tmp_path / "out.mp4").exists()
    (folder / "broken.mp4").write_text("not a video\n")
    rc, err = _run(base + ["--output", str(tmp_path / "out")], capsys)
    assert rc == 3 and "1 of 3 videos failed (broken.mp4)" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.mp4", "b.mp4"]  # the good ones, whole
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.mp4").write_text("nope")
    rc, err = _run(["run", "--engine", str(gen), "--no-progress", "--input", str(only_bad), "--output",
                    str(tmp_path / "none")], capsys)
    assert rc == 3 and not (tmp_path / "none").exists()  # a failed run leaves no new folder


def test_a_folder_of_videos_and_images_translates_both(tmp_path, gen, capsys):
    """A folder holding videos and images: every one of them is translated into the output folder
    (the images were translated and the videos silently left out before), and so is a glob (one of
    videos was refused: 'matches no images'); an output that exists stops the run before any work."""
    import cv2
    folder = tmp_path / "in"
    folder.mkdir()
    write_clip(folder / "a.mp4", textured_frames(6, 32, 48), audio_streams=1)
    cv2.imwrite(str(folder / "b.png"), textured_frames(1, 40, 24, seed=3)[0])
    cv2.imwrite(str(folder / "c.jpg"), textured_frames(1, 16, 16, seed=4)[0])
    (folder / "notes.txt").write_text("not a picture")  # what is left out is named (hidden files aside)
    (folder / ".DS_Store").write_bytes(b"")
    (folder / "sub").mkdir()
    out = tmp_path / "out"
    rc, err = _run(["run", "--engine", str(gen), "--no-progress", "--input", str(folder), "--output", str(out)],
                   capsys)
    assert rc == 0, err
    assert f"note: left out of {folder}: notes.txt, sub/ (2: " in err
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "b.png", "c.jpg"]
    assert len([f for f in VideoReader(out / "a.mp4")]) == 6 and audio_ends(out / "a.mp4")
    assert cv2.imread(str(out / "b.png")).shape == (40, 24, 3) and cv2.imread(str(out / "c.jpg")).shape == (16, 16, 3)
    (out / "b.png").unlink()  # only the video's output is left: still nothing is done
    stamp = (out / "a.mp4").stat().st_mtime_ns
    rc, err = _run(["run", "--engine", str(gen), "--no-progress", "--input", str(folder), "--output", str(out)],
                   capsys)
    assert rc == 2 and "already exists" in err and (out / "a.mp4").stat().st_mtime_ns == stamp
    assert not (out / "b.png").exists()
    for pattern, names in (("*.mp4", ["a.mp4"]), ("[ab].*", ["a.mp4", "b.png"])):  # globs alike
        rc, err = _run(["run", "--engine", str(gen), "--no-progress", "--input", str(folder / pattern), "--output",
                        str(tmp_path / pattern[:2])], capsys)
        assert rc == 0 and sorted(p.name for p in (tmp_path / pattern[:2]).iterdir()) == names, err


@pytest.mark.parametrize("path", ["rgb", "yuv"])
@pytest.mark.parametrize("space,rng", [(6, 1), (6, 2), (1, 1), (1, 2), (9, 1)])
def test_colour_matrix_and_range_survive_the_pipeline(tmp_path, space, rng, path, monkeypatch):
    """Saturated patches through an identity model come back within 2 levels, decoded by the
    output's own tags, and the output carries the input's matrix, range, primaries and transfer.
    ``yuv``: the YUV frame path (planes converted by kernels.yuv, here in Triton's interpreter)."""
    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["out"])], "id",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, "h", "w"])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", 3, "h", "w"])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "id.onnx"))
    patches = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255),
               (40, 200, 90), (230, 120, 20)]
    frame = np.zeros((48, 128, 3), np.uint8)
    for i, colour in enumerate(patches):
        frame[:, i * 16:(i + 1) * 16] = colour
    # the patches move a patch a frame: a frame written in another's place shows
    src = write_tagged_clip(tmp_path / "in.mp4", [np.roll(frame, 16 * i, axis=1) for i in range(3)], space=space,
                            rng=rng, primaries=1 if space == 1 else 6, trc=1 if space == 1 else 6,
                            options={"crf": "0"})  # x264 lossless 4:4:4, tagged with the matrix and range
    out = tmp_path / "out.mp4"
    if path == "yuv":
        from streamgan import open_engine, translate_video
        monkeypatch.setenv("STREAMGAN_YUV_PATH", "on")
        with open_engine(tmp_path / "id.onnx", input_range=(0.0, 1.0)) as eng:
            report = translate_video(src, out, eng, crf=0, pix_fmt="yuv444p", progress=False)
        assert report["frame_path"].startswith("yuv") and report["frames_out"] == 3
    else:
        assert main(["run", "--engine", str(tmp_path / "id.onnx"), "--range", "0,1", "--input", str(src),
                     "--output", str(out), "--crf", "0", "--pix-fmt", "yuv444p", "--no-progress"]) == 0
    with av.open(str(out)) as c:
        cc = c.streams.video[0].codec_context
        assert (int(cc.colorspace), int(cc.color_range)) == (space, rng)
        assert int(cc.color_primaries) == int(cc.color_trc) == (1 if space == 1 else 6)
    ins = [f.rgb.astype(int) for f in VideoReader(src)]
    outs = [f.rgb.astype(int) for f in VideoReader(out)]
    assert len(ins) == len(outs) == 3
    centres = np.s_[8:40, [i * 16 + 8 for i in range(len(patches))]]
    assert np.abs(ins[0][centres] - np.array(patches)[None]).max() <= 2  # the input decodes right
    for decoded_in, decoded_out in zip(ins, outs):
        # the output holds what the model was given, to one 8-bit YUV round trip (the old path
        # encoded with BT.601 coefficients whatever the input, and left the stream untagged)
        assert np.abs(decoded_out[centres] - decoded_in[centres]).max() <= 2


@pytest.mark.parametrize("bits", [8, 10])
def test_yuv_frame_path_on_a_420_clip_with_audio(tmp_path, monkeypatch, bits):
    """4:2:0 in, 4:2:0 out through the YUV frame path (no swscale): frames in = frames out, audio
    kept, the stream's format kept, and the same picture as the RGB path (swscale both ways) of
    the same clip: >= 50 dB a plane through an identity model, a photograph panned."""
    from streamgan.media.video import planes_of
    fmt = "yuv420p" if bits == 8 else "yuv420p10le"
    src = write_clip(tmp_path / "in.mp4", [photo(72, 128, shift=3 * i) for i in range(6)], audio_streams=1,
                     pix_fmt=fmt, crf=0)

    def run(path: str):
        monkeypatch.setenv("STREAMGAN_YUV_PATH", path)
        out = tmp_path / f"{path}.mkv"
        with open_engine(identity_onnx(tmp_path / "id.onnx"), input_range=(0.0, 1.0)) as eng:
            return translate_video(src, out, eng, crf=0, progress=False, pix_fmt=fmt), out
    rep, out = run("on")
    assert rep["frames_out"] == 6 and rep["frame_path"].startswith("yuv")
    assert "dB to the RGB path" in rep["frame_path"]
    assert len(audio_ends(out)) == 1  # the AAC stream is kept
    rep_rgb, out_rgb = run("off")
    assert rep_rgb["frame_path"] == "rgb (swscale)"

    def planes(path):
        with av.open(str(path)) as c:
            return [[p.astype(float) for p in planes_of(f)] for f in c.decode(video=0)], c.streams.video[0].format.name
    (got, got_fmt), (want, _) = planes(out), planes(out_rgb)
    assert got_fmt == fmt and len(got) == len(want) == 6
    peak = 2.0 ** bits - 1
    for fa, fb in zip(got, want):
        for a, b in zip(fa, fb):
            assert db(a, b, peak) >= 50


def test_yuv_frame_path_refused_when_its_first_frame_differs(tmp_path, monkeypatch):
    """Fault injected: chroma sited wrongly for the stream (top-centre instead of H.264's left).
    The first frame's check finds the two paths apart (< 45 dB), the RGB path runs, a note says why."""
    import kernels.yuv
    src = write_clip(tmp_path / "in.mp4", [photo(72, 128, shift=3 * i) for i in range(3)], crf=0)
    monkeypatch.setenv("STREAMGAN_YUV_PATH", "on")
    monkeypatch.setitem(kernels.yuv.SITES, "left", ("top", "centre"))
    with open_engine(identity_onnx(tmp_path / "id.onnx"), input_range=(0.0, 1.0)) as eng:
        rep = translate_video(src, tmp_path / "o.mkv", eng, crf=0, progress=False)
    assert rep["frame_path"] == "rgb (swscale)" and rep["frames_out"] == 3
    assert any(n.startswith("frame path: rgb (swscale), as the YUV path's first frame was") for n in rep["notes"])
