"""The one pipeline every front-end runs: a source's frames -> translate (+ temporal smoothing) ->
sinks, under one of two policies.

offline (files): every frame, with backpressure. The source is read on one thread, the sink
    written on another, both through bounded queues (memory stays flat on any length); frames in =
    frames out, or the run fails. ``run_offline``.
live (network streams, cameras, ``--live`` files): the newest frame wins. The source is read on
    its own thread into a slot that holds one frame; a frame replaced there before it was taken is
    dropped, and counted. At most the engine's few frames are in flight. Output timestamps follow
    the source's clock (re-anchored after a reconnect, so they stay monotonic), and while the
    input is lost the last output is repeated at the frame rate so a player's connection does not
    stall. A frame near the last translated one can reuse its output (``skip_similar``), counted
    apart. Latency is measured from a frame's arrival to its output having been written. ``run_live``.
"""

from __future__ import annotations

import collections
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from .latency import LatencyLog, since_launch
from .media.video import Frame

_END = object()
QUEUE_DEPTH = 8


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, stop: threading.Event):
    """The next item of ``q``; ``_END`` once ``stop`` is set (a stopped run's threads end promptly)."""
    while not stop.is_set():
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            continue
    return _END


@dataclass
class Controls:
    """What a viewer may change while a live run goes (the window's keys, the browser page)."""

    paused: bool = False
    side_by_side: bool = False
    temporal: bool = True
    stop: bool = False


class Stage:
    """Translate, then smooth over time, then (optionally) put the input beside the output, for
    frames handed over in order. ``submit`` returns the frames finished meanwhile, in order."""

    def __init__(self, translator, smoother=None, side_by_side: bool = False, yuv: dict | None = None,
                 controls: Controls | None = None, overlap: bool = True, check=None):
        self.translator, self.smoother, self.yuv = translator, smoother, yuv
        self.check = check  # a content_check.ContentCheck: the precision decided on these frames
        self.overlap = overlap  # frames may overlap in the engine (throughput); False: one at a time (latency)
        if check is not None:
            check.overlap = overlap  # (it times a precision as these frames will run)
        self.controls = controls or Controls(side_by_side=side_by_side)
        self.times = {"temporal": 0.0}
        self.last: dict[str, float] = {}

    def submit(self, frame: Frame) -> list[tuple[Frame, np.ndarray]]:
        if self.smoother is not None and self.controls.temporal:
            self.smoother.ahead(frame.rgb)  # its flow runs beside the model
        first = self.check.before(frame.rgb, frame) if self.check is not None and frame.rgb is not None else None
        if first is not None:  # the check translated it
            done = self.translator.flush() + [(frame, first)]
        elif frame.planes is not None:
            done = self.translator.submit_planes(frame.planes, self.yuv, frame)
        elif self.overlap:
            done = self.translator.submit(frame.rgb, frame)
        else:
            done = [(frame, self.translator(frame.rgb))]
        return [self._finish(f, out) for f, out in done]

    def flush(self) -> list[tuple[Frame, np.ndarray]]:
        return [self._finish(f, out) for f, out in self.translator.flush()]

    def _finish(self, frame: Frame, out):
        if self.check is not None:
            self.check.after(frame, out)
        t0 = time.perf_counter()
        if self.smoother is not None and self.controls.temporal:
            out, cut = self.smoother(frame.rgb, out)
            if cut:
                self.translator.reset()
        self.last["temporal"] = time.perf_counter() - t0
        self.times["temporal"] += self.last["temporal"]
        if self.controls.side_by_side:
            out = np.concatenate([frame.rgb, out], axis=1)
        return frame, out

    def set_temporal(self, on: bool) -> None:
        if self.smoother is not None and on != self.controls.temporal:
            self.smoother.reset()
        self.controls.temporal = on


def run_offline(frames, write: Callable, stage: Stage, *, desc: str = "", total: int | None = None,
                progress: bool = True, keep: Callable[[Frame], bool] | None = None,
                on_frame: Callable[[int], None] | None = None) -> dict:
    """Every frame of ``frames`` (an iterable; read on a thread of its own) through ``stage`` and
    ``write(out, frame)`` (on another thread), in order, with bounded queues. ``keep(frame)``
    False: the frame warmed the state and is not written (a segment's lead-in). Returns counts and
    seconds per stage; an error on any thread stops all and is raised here."""
    stop = threading.Event()
    q_in: queue.Queue = queue.Queue(QUEUE_DEPTH)
    q_out: queue.Queue = queue.Queue(QUEUE_DEPTH)
    times = {"decode": 0.0, "encode": 0.0}
    errors: list[BaseException] = []

    def read() -> None:
        try:
            it = iter(frames)
            while not stop.is_set():
                t0 = time.perf_counter()
                frame = next(it, _END)
                times["decode"] += time.perf_counter() - t0
                if not _put(q_in, frame, stop) or frame is _END:
                    return
        except BaseException as exc:  # handed to the main thread
            errors.append(exc)
            _put(q_in, _END, stop)

    def encode() -> None:
        try:
            while True:
                item = _get(q_out, stop)
                if item is _END:
                    return
                t0 = time.perf_counter()
                write(*item)
                times["encode"] += time.perf_counter() - t0
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=read, daemon=True), threading.Thread(target=encode, daemon=True)]
    for t in threads:
        t.start()
    t_start = time.perf_counter()
    # the first frame also compiles kernels, captures graphs, measures the backends: the bar says so
    bar = tqdm(total=total, unit="frame", desc=f"{desc} (warming up)", disable=not progress, file=sys.stderr)
    counts = {"frames_in": 0, "lead_in": 0, "done": 0, "first_frame_after_launch_s": None, "first_out": None}

    def emit(frame, out) -> bool:  # frames come back in order; False: stop
        counts["done"] += 1
        if counts["done"] == 1:
            counts["first_frame_after_launch_s"], counts["first_out"] = since_launch(), time.perf_counter()
            bar.set_description(desc, refresh=False)
        if on_frame is not None:
            on_frame(counts["done"])
        if keep is not None and not keep(frame):
            counts["lead_in"] += 1
            return True
        if not _put(q_out, (out, frame), stop):
            return False
        bar.update(1)
        return True

    try:
        while not stop.is_set():
            frame = q_in.get()
            if frame is _END:
                break
            counts["frames_in"] += 1
            if not all(emit(f, out) for f, out in stage.submit(frame)):
                break
        if not stop.is_set() and all(emit(f, out) for f, out in stage.flush()):
            _put(q_out, _END, stop)
        for t in threads:
            t.join()
    except BaseException:
        stop.set()
        for t in threads:
            t.join(timeout=5)
        raise
    finally:
        bar.close()
    if errors:
        raise errors[0]
    counts["seconds"] = time.perf_counter() - t_start
    counts["times"] = {**times, **stage.times}
    return counts


class _Newest:
    """A slot that holds the newest frame: putting one over a frame not yet taken drops that frame."""

    def __init__(self):
        self.cond = threading.Condition()
        self.frame: Frame | None = None
        self.ended = False
        self.dropped = 0
        self.timeline: Timeline | None = None  # (the report's per-second record)

    def put(self, frame: Frame) -> None:
        with self.cond:
            if self.frame is not None:
                self.dropped += 1
                if self.timeline is not None:
                    self.timeline.dropped(time.perf_counter())
            self.frame = frame
            self.cond.notify()

    def end(self) -> None:
        with self.cond:
            self.ended = True
            self.cond.notify()

    def take(self, timeout: float) -> Frame | None | object:
        """The newest frame; None when none came within ``timeout``; ``_END`` once the source ended
        and its last frame was taken."""
        with self.cond:
            if not self.cond.wait_for(lambda: self.frame is not None or self.ended, timeout):
                return None
            frame, self.frame = self.frame, None
            return frame if frame is not None else _END

    def discard(self) -> None:
        """Count a frame still waiting at the end as dropped (it was never translated)."""
        with self.cond:
            if self.frame is not None:
                self.dropped += 1
                self.frame = None


class Clock:
    """Output timestamps (seconds) from a live source's: within one connection they follow the
    source (its frame spacing, VFR included); after a reconnect, or when frames are repeated
    during an outage, they go on from the last one, so they always increase."""

    def __init__(self, interval: float):
        self.interval = interval
        self.last: float | None = None
        self._epoch: int | None = None
        self._anchor = (0.0, 0.0)  # (source seconds, output seconds) of the epoch's first frame

    def of(self, frame: Frame) -> float:
        src = float(frame.pts * frame.time_base) if frame.pts is not None else None
        if src is None:
            return self.next()
        if frame.epoch != self._epoch or self.last is None:
            self._epoch = frame.epoch
            self._anchor = (src, 0.0 if self.last is None else self.last + self.interval)
        t = self._anchor[1] + (src - self._anchor[0])
        if self.last is not None and t <= self.last:  # a source that went back in time
            t = self.last + 1e-3
        self.last = t
        return t

    def next(self) -> float:
        self.last = 0.0 if self.last is None else self.last + self.interval
        return self.last


class Timeline:
    """Per second of a live run: frames written, dropped, and the latency p50/p99 (ms) of new
    frames; a second's latencies are summed up when it ends, and only the last ``keep`` seconds
    are kept, so a stream that runs for days holds a bounded record."""

    def __init__(self, t0: float, keep: int = 3600):
        self.t0, self.rows, self.lock = t0, collections.deque(maxlen=keep), threading.Lock()
        self._second, self._row, self._lat = -1, None, []

    def _at(self, t: float) -> dict:
        second = max(0, int(t - self.t0))
        if second != self._second:
            self._close()
            self._second, self._row = second, {"t": second, "written": 0, "dropped": 0}
        return self._row

    def _close(self) -> None:
        if self._row is not None:
            lat = self._lat
            self._row["p50_ms"] = float(np.percentile(lat, 50)) if lat else None
            self._row["p99_ms"] = float(np.percentile(lat, 99)) if lat else None
            self.rows.append(self._row)
            self._row, self._lat = None, []

    def written(self, t: float, latency: float | None) -> None:
        with self.lock:
            self._at(t)["written"] += 1
            if latency is not None:
                self._lat.append(1000 * latency)

    def dropped(self, t: float) -> None:
        with self.lock:
            self._at(t)["dropped"] += 1

    def summary(self) -> list[dict]:
        with self.lock:
            self._close()
            self._second = -1
            return list(self.rows)


def similar(a: np.ndarray, b: np.ndarray) -> float:
    """How different two frames look: mean |difference| of small gray versions, on 0..1."""
    import cv2

    def small(x):
        g = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)
        return cv2.resize(g, (64, max(1, round(64 * g.shape[0] / g.shape[1]))), interpolation=cv2.INTER_AREA)
    return float(np.mean(cv2.absdiff(small(a), small(b)))) / 255.0


LATENCY_KEEP = 20_000  # latency samples a live run keeps per stage (its percentiles: of the newest this many)
STALL_S = 0.5  # no frame for this long: the input stalled (frames are repeated to a stream output)


def run_live(source, sinks: list, stage: Stage, *, duration: float | None = None, skip_similar: float | None = None,
             progress: bool = True, frames: int | None = None, max_repeat_s: float | None = None,
             on_written: Callable[[dict], None] | None = None) -> dict:
    """A live source through ``stage`` into every sink (``write(out, seconds, frame)``), newest
    frame first. Ends when the source ends (or is lost for good), after ``duration`` seconds of
    output or ``frames`` frames written, when a sink or a viewer (``stage.controls.stop``) says so,
    or at Ctrl-C (the report's ``interrupted``). Returns the live report (counts, fps, latency
    percentiles); the caller closes the sinks."""
    slot, log = _Newest(), LatencyLog(keep=LATENCY_KEEP)
    controls = stage.controls
    interrupted = False
    feed = any(getattr(s, "url", False) for s in sinks)  # a player at the other end must not starve
    interval = 1.0 / float(source.info.rate) if source.info.rate else 1 / 30
    clock = Clock(interval)
    counts = {"received": 0, "translated": 0, "skipped": 0, "dropped": 0, "repeated": 0, "written": 0}
    errors: list[BaseException] = []
    done = threading.Event()

    def capture() -> None:
        try:
            for frame in source:
                if done.is_set():
                    break
                counts["received"] += 1
                slot.put(frame)
        except BaseException as exc:
            errors.append(exc)
        finally:
            slot.end()

    # the sinks are written on a thread of their own (an encoder and a network send overlap the
    # model); two outputs may wait there, else the translate loop waits (and more frames drop)
    q_out: queue.Queue = queue.Queue(2)
    write_error: list[BaseException] = []
    record = slot.timeline = Timeline(time.perf_counter())

    def write_loop() -> None:
        while True:
            item = q_out.get()
            if item is _END:
                return
            if not write_error:  # (after an error the queue is only drained: nothing waits on it)
                write_one(*item)

    def write_one(out, t_out, frame, kind) -> None:
        try:
            t0 = time.perf_counter()
            for sink in sinks:
                sink.write(out, t_out, frame)
            now = time.perf_counter()
            counts["written"] += 1
            record.written(now, now - frame.arrival if kind == "new" else None)
            if kind == "new":
                log.add("output", now - t0)
                log.add("end_to_end", now - frame.arrival)
            if on_written is not None:
                on_written({"latency_s": now - frame.arrival, "kind": kind})
            if any(getattr(s, "wants_stop", False) for s in sinks):
                controls.stop = True
        except BaseException as exc:
            write_error.append(exc)
            controls.stop = True

    reader = threading.Thread(target=capture, daemon=True, name="capture")
    writer = threading.Thread(target=write_loop, daemon=True, name="sinks")
    reader.start()
    writer.start()
    bar = tqdm(unit="frame", desc=f"{source.name} (live)", disable=not progress, file=sys.stderr)
    t_start = time.perf_counter()
    first_written = None
    last_out: np.ndarray | None = None
    last_in: np.ndarray | None = None
    last_frame: Frame | None = None
    taken = 0  # frames translated, in flight or skipped
    waited_since = time.perf_counter()

    def translated(finished: list, t0: float, t1: float) -> None:
        """Frames the stage finished between ``t0`` and ``t1``: counted, timed, written."""
        for f, out in finished:
            counts["translated"] += 1
            log.add("wait", max(0.0, t0 - f.arrival))
            log.add("translate", t1 - t0)
            log.add("temporal", stage.last.get("temporal", 0.0))
            for k, v in stage.translator.last.items():
                log.add(f"translate.{k}", v)
            emit(f, out, "new")

    def emit(frame: Frame, out: np.ndarray, kind: str) -> None:
        nonlocal last_out, first_written
        last_out = out
        if first_written is None:
            first_written = since_launch()
        q_out.put((out, frame.out_time, frame, kind))
        bar.update(1)
        if kind == "new" and log.counts["end_to_end"] % 10 == 0:
            p50, _ = log.recent("end_to_end", 30)
            bar.set_postfix_str(f"latency {p50:.0f} ms, dropped {slot.dropped}", refresh=False)

    try:
        while not controls.stop and not write_error:
            if frames is not None and taken >= frames:
                break
            frame = slot.take(timeout=interval)
            if frame is _END:
                break
            if frame is None:  # nothing new: a stalled input; keep a stream's player fed with the last picture
                stalled = time.perf_counter() - waited_since
                if feed and last_out is not None and last_frame is not None and stalled > STALL_S and \
                        reader.is_alive() and (max_repeat_s is None or stalled < max_repeat_s):
                    q_out.put((last_out, clock.next(), last_frame, "repeat"))
                    counts["repeated"] += 1
                continue
            waited_since = time.perf_counter()
            if controls.paused:
                slot.dropped += 1  # not translated while paused: counted, never silent
                continue
            frame.out_time = clock.of(frame)
            if duration is not None and frame.out_time >= duration:  # seconds of output written
                break
            last_frame = frame
            taken += 1
            if skip_similar is not None and last_in is not None and last_out is not None and \
                    similar(frame.rgb, last_in) < skip_similar:
                counts["skipped"] += 1
                emit(frame, last_out, "skipped")
                continue
            last_in = frame.rgb
            t0 = time.perf_counter()
            finished = stage.submit(frame)
            translated(finished, t0, time.perf_counter())
        t0 = time.perf_counter()
        translated(stage.flush(), t0, time.perf_counter())
    except KeyboardInterrupt:  # Ctrl-C: what was translated is written, then the report says so
        interrupted = True
    finally:
        done.set()
        source.close()
        slot.discard()
        q_out.put(_END)
        writer.join(timeout=30)
        bar.close()
    if write_error:
        raise write_error[0]
    if errors:
        raise errors[0]
    elapsed = time.perf_counter() - t_start
    counts["dropped"] = slot.dropped
    return {**counts, "interrupted": interrupted, "seconds": elapsed,
            "fps": counts["written"] / elapsed if elapsed > 0 else 0.0,
            "timeline": record.summary(),
            "first_written_after_launch_s": first_written, "latency_ms": log.summary(),
            "source": {**source.counters, "error": source.error}}
