"""Streams in, streams out, over loopback: a photograph panned, sent in real time by a PyAV sender,
through ``streamgan run`` (a real process) to a PyAV receiver, over UDP, TCP, RTMP and RTSP. Every
received frame is the model's output for a source frame (found by content: a pan makes each frame
different), in order; the frames missing are the ones the run reports dropped. Loss and reconnect,
a dead URL, ``--live`` pacing, Ctrl-C and ``--skip-similar``."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import av
import numpy as np
import pytest
import torch

from streamgan import load_generator
from streamgan.media.video import to_rgb
from tests.streamgan.helpers import interruptible, photo, tiny_resnet, write_clip

FPS = 12


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("live")
    gen = tiny_resnet(d / "g.pth")
    frames = [photo(64, 96, shift=1.5 * i) for i in range(10 * FPS)]  # 10 s of a slow pan
    clip = write_clip(d / "pan.mp4", frames, fps=FPS, gop=FPS // 2, crf=12)
    with av.open(str(clip)) as c:
        decoded = [to_rgb(f) for f in c.decode(video=0)]  # as streamgan decodes them
    model = load_generator(gen)
    with torch.no_grad():
        x = torch.from_numpy(np.stack(decoded)).permute(0, 3, 1, 2).float() / 127.5 - 1
        want = ((model(x).permute(0, 2, 3, 1).numpy() + 1) * 127.5).clip(0, 255).round()
    return d, gen, clip, want


# The sender and the receiver run in processes of their own: PyAV holds the GIL while FFmpeg waits
# for a connection (a listening RTMP/RTSP/TCP end), which would stall any thread beside it.
SENDER = """
import sys, time, av
clip, url, fmt, laps, fps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
i = av.open(clip)  # (open while its stream is the template)
s = i.streams.video[0]
packets = [p for p in i.demux(s) if p.dts is not None]
deadline = time.time() + 30
while True:  # the other end may not listen yet (an output connects when its header is written)
    try:
        out = av.open(url, "w", format=fmt, options={"rtsp_transport": "tcp"} if fmt == "rtsp" else {})
        o = out.add_stream_from_template(s)
        out.start_encoding()
        break
    except (av.error.FFmpegError, OSError):
        if time.time() > deadline:
            raise
        time.sleep(0.2)
t0, lap_s = time.perf_counter(), len(packets) / fps
# each lap goes on from the clip's own timestamps (muxing rescales a packet's in place)
stamps = [(p.pts, p.dts, p.time_base) for p in packets]
for lap in range(laps):
    for p, (pts, dts, tb) in zip(packets, stamps):
        t = lap * lap_s + float(dts * tb)
        time.sleep(max(0.0, t0 + t - time.perf_counter()))
        shift = round(lap * lap_s / tb)
        p.time_base, p.pts, p.dts, p.stream = tb, pts + shift, dts + shift, o
        try:
            out.mux(p)
        except OSError:  # UDP: no one listening yet (the datagram is lost, as on a network)
            if not url.startswith("udp:"):
                raise
out.close()
"""
RECEIVER = """
import sys, json, av, numpy as np
from streamgan.media.video import to_rgb
url, options, dst = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
said, pts, frames = "timeout", [], []
with av.open(url, options=options, timeout=(40, 6)) as c:
    try:
        for f in c.decode(video=0):
            pts.append(-1 if f.pts is None else f.pts)
            frames.append(to_rgb(f))  # by the stream's own colour tags
        said = "ended"  # the sender closed the stream
    except av.error.ExitError:  # nothing for 6 s
        pass
    except OSError:  # FFmpeg's RTMP server reads a publisher's close as an I/O error
        said = "ended"
np.savez(dst, pts=np.array(pts), frames=np.array(frames))
print(said)
"""


def _sender(clip, url: str, fmt: str, laps: int = 1) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SENDER, str(clip), url, fmt, str(laps), str(FPS)],
                            stderr=subprocess.PIPE, text=True)


def _receiver(url: str, options: dict, dst) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", RECEIVER, url, json.dumps(options), str(dst)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _received(dst) -> list[tuple[int, np.ndarray]]:
    got = np.load(dst)
    return list(zip(got["pts"].tolist(), got["frames"]))


def _streamgan(gen, inp, out, *extra, env=None):
    cmd = [sys.executable, "-m", "streamgan", "run", "--engine", str(gen), "--input", inp, "--output", out,
           "--no-progress", "--crf", "0", "--pix-fmt", "yuv444p", *extra]
    return subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env or os.environ.copy(),
                            preexec_fn=interruptible)


def _matches(received, want) -> list[int]:
    """The source frame each received frame is the translation of (best PSNR; asserted close)."""
    flat = want.reshape(len(want), -1)
    found = []
    for _, rgb in received:
        err = ((flat - rgb.reshape(1, -1).astype(np.float64)) ** 2).mean(axis=1)
        i = int(err.argmin())
        assert 10 * np.log10(255 ** 2 / max(err[i], 1e-9)) >= 30, (i, err[i])
        found.append(i % len(want))
    return found


PROTOCOLS = {  # input URL (streamgan listens where it says --listen), the sender's format, output, receiver options
    "udp": ("udp://127.0.0.1:{a}", "mpegts", [], "udp://127.0.0.1:{b}", {}),
    "tcp": ("tcp://127.0.0.1:{a}", "mpegts", ["--listen"], "tcp://127.0.0.1:{b}", {"listen": "1"}),
    "rtmp": ("rtmp://127.0.0.1:{a}/live/in", "flv", ["--listen"], "rtmp://127.0.0.1:{b}/live/out", {"listen": "1"}),
    "rtsp": ("rtsp://127.0.0.1:{a}/in", "rtsp", ["--listen"], "rtsp://127.0.0.1:{b}/out",
             {"rtsp_flags": "listen", "listen_timeout": "40", "rtsp_transport": "tcp"}),
}


@pytest.mark.parametrize("proto", sorted(PROTOCOLS))
def test_stream_in_stream_out(world, tmp_path, proto):
    d, gen, clip, want = world
    a, b = _port(), _port()
    inp, fmt, listen, out, recv_opts = PROTOCOLS[proto]
    inp, out = inp.format(a=a), out.format(b=b)
    receiver = _receiver(out, recv_opts, tmp_path / "got.npz")
    time.sleep(0.5)
    sender = _sender(clip, inp, fmt)  # (it connects once streamgan listens, where it does)
    stats = tmp_path / "s.json"
    run = _streamgan(gen, inp, out, *listen, "--duration", "4", "--timeout", "20", "--stats-json", str(stats))
    _, err = run.communicate(timeout=120)
    sender.kill()
    said, why = receiver.communicate(timeout=60)
    assert run.returncode == 0, err[-3000:]
    # streamgan closed the stream properly (UDP has no end: its receiver stops on silence)
    assert said.strip() == ("timeout" if proto == "udp" else "ended"), why[-2000:]
    frames = _received(tmp_path / "got.npz")
    s = json.loads(stats.read_text())
    assert s["written"] == len(frames) > 0, (s, len(frames), _matches(frames, want), [p for p, _ in frames])
    assert s["received"] >= s["translated"] + s["skipped"] + s["dropped"]  # (frames after the end: neither)
    found = _matches(frames, want)
    assert all(y > x for x, y in zip(found, found[1:])), found  # in order, each once
    gaps = sum(y - x - 1 for x, y in zip(found, found[1:]))
    # frames skipped between the first and last written were dropped by the policy, and counted
    assert gaps <= s["dropped"], (gaps, s["dropped"])
    times = [float(p) for p, _ in frames if p >= 0]  # (RTP gives none until its clock is synced)
    assert len(times) >= len(frames) // 2 and all(y > x for x, y in zip(times, times[1:]))  # increasing
    assert "live: received" in err and "Traceback" not in err


def test_loss_and_reconnect(world, tmp_path):
    """The sender stops for 3 s and starts again: the run says so in a line each, reconnects and
    goes on; the output keeps increasing timestamps across the gap."""
    d, gen, clip, want = world
    a = _port()
    out = tmp_path / "rec.mkv"
    first = _sender(clip, f"udp://127.0.0.1:{a}", "mpegts")
    run = _streamgan(gen, f"udp://127.0.0.1:{a}", str(out), "--timeout", "1.5", "--duration", "8", "--reconnect", "5")
    time.sleep(6)
    first.kill()
    time.sleep(3)
    second = _sender(clip, f"udp://127.0.0.1:{a}", "mpegts")
    _, err = run.communicate(timeout=120)
    second.kill()
    assert run.returncode == 0, err[-3000:]
    assert "input lost" in err and "reconnected to udp://" in err
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        pts = [float(f.pts * s.time_base) for f in c.decode(s)]
    assert all(y > x for x, y in zip(pts, pts[1:])) and pts[-1] > 6  # the second sender's frames too


def test_dead_url_is_one_line_within_the_timeout(world, tmp_path):
    d, gen, _, _ = world
    for url in (f"rtsp://127.0.0.1:{_port()}/x", f"udp://127.0.0.1:{_port()}", f"srt://127.0.0.1:{_port()}"):
        t = time.perf_counter()
        run = _streamgan(gen, url, str(tmp_path / "o.mp4"), "--timeout", "2")
        _, err = run.communicate(timeout=60)
        assert run.returncode == 2 and len(err.strip().splitlines()) == 1 and url in err, err
        assert time.perf_counter() - t < 30 and not (tmp_path / "o.mp4").exists()


def test_live_file_keeps_its_pace(world, tmp_path):
    """--live plays a file at its own rate: 3 s of output take 3 s of wall clock (and not less),
    and the recording's timestamps follow the file's."""
    d, gen, clip, _ = world
    out = tmp_path / "o.mkv"
    run = _streamgan(gen, str(clip), str(out), "--live", "--duration", "3")
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err[-2000:]
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        pts = [float(f.pts * s.time_base) for f in c.decode(s)]
    assert 2.5 <= pts[-1] < 3.1 and len(pts) >= 10
    stats = [ln for ln in err.splitlines() if ln.startswith("live:")][0]
    assert "received" in stats


def test_ctrl_c_finishes_the_outputs(world, tmp_path):
    """SIGINT mid-stream: exit 130 with one line, the recording complete up to the stop, and an RTMP
    receiver sees the stream end (not a dropped connection)."""
    d, gen, clip, _ = world
    rec = tmp_path / "rec.mp4"
    b = _port()
    receiver = _receiver(f"rtmp://127.0.0.1:{b}/live/out", {"listen": "1"}, tmp_path / "got.npz")
    time.sleep(0.5)
    run = _streamgan(gen, str(clip), f"rtmp://127.0.0.1:{b}/live/out", "--live")
    time.sleep(8)  # (start-up, then a few seconds of stream)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=60)
    said, _ = receiver.communicate(timeout=60)
    assert run.returncode == 130 and "stopped" in err and "Traceback" not in err, err[-2000:]
    written = int(err.split(", written ")[1].split(";")[0])  # the live report, printed at the stop
    assert said.strip() == "ended" and len(_received(tmp_path / "got.npz")) == written >= 6  # every frame out
    run = _streamgan(gen, str(clip), str(rec), "--live")
    time.sleep(8)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130 and str(rec) in err, err[-2000:]
    with av.open(str(rec)) as c:
        assert sum(1 for _ in c.decode(video=0)) > 0  # a playable file: its index was written


def test_skip_similar_reuses_the_output_of_a_still_picture(world, tmp_path):
    d, gen, _, _ = world
    still = write_clip(tmp_path / "still.mp4", [photo(64, 96)] * (3 * FPS), fps=FPS, crf=0)
    stats = tmp_path / "s.json"
    run = _streamgan(gen, str(still), str(tmp_path / "o.mkv"), "--live", "--skip-similar", "0.02",
                     "--stats-json", str(stats))
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err[-2000:]
    s = json.loads(stats.read_text())
    assert s["skipped"] > 0 and s["translated"] >= 1 and s["written"] == s["translated"] + s["skipped"]


def test_a_file_served_over_http_is_read_whole(world, tmp_path):
    """An http:// URL of a video file is a file, not a stream: every frame, audio kept (the URL
    reached intact: it once became 'http:/127...', a path)."""
    import http.server
    import socketserver
    import threading
    d, gen, _, _ = world
    write_clip(tmp_path / "c.mp4", [photo(48, 64, shift=i) for i in range(24)], fps=FPS, audio_streams=1)
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path), **kw)  # noqa: E731
    with socketserver.TCPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/c.mp4"
        run = subprocess.Popen([sys.executable, "-m", "streamgan", "run", "--engine", str(gen), "--input", url,
                                "--output", str(tmp_path / "o.mp4"), "--no-progress"], stderr=subprocess.PIPE,
                               text=True)
        _, err = run.communicate(timeout=120)
        server.shutdown()
    assert run.returncode == 0, err[-2000:]
    assert "frames in 24, out 24" in err
    with av.open(str(tmp_path / "o.mp4")) as c:
        assert len(c.streams.audio) == 1 and sum(1 for _ in c.decode(video=0)) == 24


def test_an_interlaced_stream_is_deinterlaced(world, tmp_path):
    """An interlaced broadcast (woven fields of a pan, top field first) sent over TCP: every frame
    written is the progressive frame the file path makes of it (bwdif), not the woven one, and the
    run says so."""
    d, _, _, _ = world
    from streamgan.media.video import VideoReader
    from tests.streamgan.helpers import db, identity_onnx, interlaced_clip
    clip = tmp_path / "interlaced.mp4"
    woven = interlaced_clip(clip, [photo(64, 96, shift=3 * k) for k in range(96)])
    progressive = [f.rgb for f in VideoReader(clip)]
    a, out = _port(), tmp_path / "rec.mkv"
    sender = _sender(clip, f"tcp://127.0.0.1:{a}", "mpegts")
    run = _streamgan(identity_onnx(tmp_path / "id.onnx"), f"tcp://127.0.0.1:{a}", str(out), "--listen",
                     "--range", "0,1", "--timeout", "20", "--duration", "1.5")
    _, err = run.communicate(timeout=120)
    sender.kill()
    assert run.returncode == 0, err[-3000:]
    assert "interlaced input (top field first): deinterlaced" in err
    with av.open(str(out)) as c:
        got = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(got) >= 12
    for f in got:
        best = max(range(len(progressive)), key=lambda i: db(f, progressive[i]))
        assert db(f, progressive[best]) > 45 and db(f, woven[best]) < 35, best
