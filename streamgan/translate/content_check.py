"""Precision by content: whether a run keeps a reduced precision (bf16 or int8 on a CPU, fp16 on
a GPU) is decided on the run's own frames, not on the synthetic probe the engine chose by.

Before the first frame is translated, it and a few frames spread over the clip (``samples``) are
translated at fp32 and at the reduced precisions the engine's probe found faster, fastest first;
the first whose worst picture stays >= REDUCED_DB (40 dB) from fp32's runs, else fp32 does, whatever
the probe said (a probe can be harder or easier than real pictures: multistyle26 reads 38 dB on
the probe and 43-45 dB on photographs on an AMX Xeon). int8 (OpenVINO) is quantized over the
activation ranges of these same fp32 translations, so it is calibrated on the user's content, and
can only be chosen this way. The probe does not time it either (``probe_verdict``'s untimed): its
frames after the first run in flight, as the run's will, and it is taken only where they are
faster than fp32's by the probe's margin (REDUCED_SPEEDUP, and _OVERLAP_GAIN). One later frame
is checked again (``recheck_at``): its picture against its fp32 translation; below the floor,
fp32 runs from there on. The verdict, with its dB, is in the run report; a file's verdict (with
int8's ranges) is remembered (same model, file, segment and options), so a second run of it checks
nothing.

Only engines opened to choose their precision are checked (``engines.precision.Switchable``): a
precision the user named, fixed artifacts (.plan, .pt2), and reduced precisions that the engine's
probe found no faster than fp32 on this machine are not."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np

from engines.base import sha256
from engines.cache import cache_dir, read_json, update_json
from engines.metrics import psnr
from engines.precision import REDUCED_DB, REDUCED_SPEEDUP, choosing, not_faster

# The check's fp32 frames run one at a time on one latency-mode request; a precision timed here runs
# its frames in flight, as the run will (Translator.submit), and in flight fp32 too would gain about
# this much (OpenVINOEngine.start_host: 10% more frames a second): the speed rule asks that much more.
_OVERLAP_GAIN = 1.1
# ... and where one timing of each does not clear that by this much more, both are timed again
_CLEARLY = 1.25
TILED = ("int8 is not tried on tiled frames or carried statistics (its calibration reads a whole frame's own "
         "activations)")


class ContentCheck:
    """The precision verdict of one run. ``key``: what identifies the run's content for the cache
    (None: not remembered, e.g. a live source). ``int8``: whether int8 may be tried (not for live
    runs: they check their first frame only, too little to calibrate on, and compiling the int8
    graph on that frame stalls the stream)."""

    def __init__(self, translator, samples: Callable[[], list[np.ndarray]] | None = None,
                 recheck_at: int | None = None, key: str | None = None, int8: bool = True):
        self.translator, self.samples, self.recheck_at, self.int8 = translator, samples, recheck_at, int8
        self.overlap = False  # whether the run translates frames in flight (Translator.submit; set by
        # pipeline.Stage and translate_images): a precision is timed as the run's frames will run
        model = getattr(translator.engine, "model_key", None)  # (set by open_engine: the file and options)
        self.key = None if key is None or model is None else sha256(f"{model}|{key}|{translator.opt}".encode())[:32]
        self.seen = 0  # frames handed to ``before``
        self.reduced: str | None = None
        self.int8_left = ""  # why int8 was offered but not tried (a live run, tiled frames)
        self.verdict: dict = {}
        self._held = None  # the frame to recheck, until its output comes

    @property
    def engine(self):
        return self.translator.engine

    def before(self, rgb: np.ndarray, tag=None) -> np.ndarray | None:
        """A frame about to be translated (``tag`` identifies it in ``after``). For the first frame,
        where the check translated it at the precision chosen: that output (the frame is done)."""
        self.seen += 1
        if self.seen == 1:
            return self._first(rgb)
        if self.seen == self.recheck_at and self.reduced and self.engine.meta.precision == self.reduced \
                and "recheck_db" not in self.verdict:
            self._held = (tag, rgb)
        return None

    def after(self, tag, out: np.ndarray) -> None:
        """A frame's translated output, before smoothing."""
        if self._held is None or self._held[0] is not tag:
            return
        rgb, self._held = self._held[1], None
        t0 = time.perf_counter()
        db = self._db(rgb, out)
        self.verdict["seconds"] = round(self.verdict.get("seconds", 0.0) + time.perf_counter() - t0, 2)
        self.verdict["recheck_db"], self.verdict["recheck_frame"] = db, self.recheck_at
        if db < REDUCED_DB:
            self.engine.set_precision("fp32")
            self.verdict["precision"] = "fp32"
        self._remember()

    def _first(self, rgb: np.ndarray) -> np.ndarray | None:
        known = read_json(_store(), {}).get(self.key) if self.key else None
        self.translator.prepare(*rgb.shape[:2])  # the backend is chosen first where a probe decides
        if getattr(self.engine, "chosen", True) is None:  # ... or where it is measured on a first frame
            with kept_state(self.translator):
                self.translator(rgb)
        options = self.engine.precisions()
        chosen = choosing(self.engine)
        candidates = chosen.candidates() if hasattr(chosen, "candidates") else [p for p in options if p != "fp32"]
        if "int8" in candidates and not self.int8:
            self.int8_left = ("int8 is not tried on a live run (one frame is too little to calibrate on, and "
                              "compiling it on that frame would stall the stream)")
        elif "int8" in candidates and not self.translator.plan(*rgb.shape[:2]).full_frame:
            self.int8_left = TILED
        candidates = [p for p in candidates if p != "int8" or not self.int8_left]
        if "fp32" not in options or not candidates:
            return None
        if known and known.get("precisions") == list(options):
            self.verdict = {**known, "cached": True}
            if known.get("ranges"):
                chosen.calibrate(known["ranges"])
            self.engine.set_precision(self.verdict["precision"])
            return None
        t0 = time.perf_counter()
        frames = [rgb] + (self.samples() if self.samples else [])
        calibrating = "int8" in candidates
        if calibrating:
            chosen.observe(True)
        refs, fp32_s = [], []  # (picture, statistics it left); seconds each took
        for f in frames:
            t = time.perf_counter()
            refs.append(self._picture(f, "fp32"))
            fp32_s.append(time.perf_counter() - t)
        if calibrating:
            chosen.observe(False)
            ranges = chosen.variant("fp32").observed()
            if ranges is None:  # the frames ran with given statistics (tiles, an EMA): nothing for int8
                candidates, calibrating = [p for p in candidates if p != "int8"], False
                if not candidates:  # the first frame's fp32 picture is its output (not translated again)
                    self.int8_left = TILED
                    return self._output(refs[0])
            else:
                chosen.calibrate(ranges)
        untimed = getattr(chosen, "untimed", [])
        gain = _OVERLAP_GAIN if self._overlaps(rgb) else 1.0
        tried, outs, ms, taken = {}, {"fp32": refs[0]}, {}, "fp32"
        for p in candidates:  # fastest first: the first that stays >= REDUCED_DB on every frame runs
            tried[p] = self._trial(p, frames, refs, outs, ms if p in untimed else None)
            if min(tried[p]) < REDUCED_DB:
                continue
            if p in ms:  # not timed by the probe: faster on these frames, or not taken
                ms.setdefault("fp32", self._fp32_ms(frames, fp32_s))
                if ms[p] * REDUCED_SPEEDUP * gain * _CLEARLY > ms["fp32"]:  # close, or a busy spell in one
                    self._retime(p, frames, ms)
                if ms[p] * REDUCED_SPEEDUP * gain > ms["fp32"]:
                    continue
            taken = p
            break
        self.reduced = taken if taken != "fp32" else p
        self.verdict = {"precision": taken, "reduced": p, "db": tried[p],
                        "tried": {q: min(d) for q, d in tried.items()}, "frames": len(frames),
                        "checked": {q: len(d) for q, d in tried.items()}, "probe": self._probed(),
                        "precisions": list(options), "seconds": round(time.perf_counter() - t0, 2),
                        **({"ms": {q: round(v, 1) for q, v in ms.items()}} if ms else {}),
                        **({"ranges": chosen.ranges} if calibrating else {})}
        self._remember()
        self.engine.set_precision(self.verdict["precision"])
        return self._output(outs[self.verdict["precision"]])

    def _output(self, picture: tuple[np.ndarray, object]) -> np.ndarray:
        """The first frame's output is the check's ``picture`` (at the precision that runs), and so
        are the smoothed statistics it leaves."""
        out, stats = picture
        self.translator.frames += 1
        self.translator._stats = stats
        return out

    def _trial(self, p: str, frames: list, refs: list, outs: dict, timing: dict | None) -> list[float]:
        """dB of ``p``'s pictures of ``frames`` to fp32's (``refs``), up to the first below the
        floor; the first frame's picture (and statistics) kept in ``outs``. ``timing`` (for a
        precision the probe did not time): the frames after the first are translated as the run
        will translate them (``_overlapped`` of ``_timed_frames``) and ``timing[p]`` is the ms a
        frame that took."""
        first = self._picture(frames[0], p)  # (its first call compiles)
        outs.setdefault(p, first)
        dbs = [_db(first[0], refs[0][0])]
        rest = list(zip(frames[1:], refs[1:]))
        if timing is not None and dbs[-1] >= REDUCED_DB:
            like = [(f, ref) for f, ref in rest if _alike(f, frames[0])]  # (the size compiled)
            pictures, seconds = self._overlapped(self._timed_frames(frames), p)
            timing[p] = 1000 * seconds
            dbs += [_db(out, ref[0]) for out, (_, ref) in zip(pictures, like)]
            rest = [(f, ref) for f, ref in rest if not _alike(f, frames[0])]  # images of other sizes: not timed
        for f, ref in rest:
            if dbs[-1] < REDUCED_DB:
                break
            dbs.append(_db(self._picture(f, p)[0], ref[0]))
        return dbs

    def _timed_frames(self, frames: list) -> list:
        """What a precision is timed on: the frames after the first that have its size (images of
        other sizes would add their compilation), repeated up to the frames a run keeps in flight,
        and at least two."""
        todo = [f for f in frames[1:] if _alike(f, frames[0])] or frames[:1]
        return [todo[i % len(todo)] for i in range(max(len(todo), 2, self.engine.inflight))]

    def _overlaps(self, rgb: np.ndarray) -> bool:
        """Whether the run's frames of this size go through the engine in flight."""
        return self.overlap and self.translator.overlaps(*rgb.shape[:2])

    def _retime(self, p: str, frames: list, ms: dict, rounds: int = 2) -> None:
        """``ms`` of ``p`` and fp32 timed again in ``rounds`` interleaved rounds (fp32 on the first
        frame, ``p`` in flight), the best of each kept: load that comes and goes on a shared
        machine then falls on both alike (as on the probe: ``engines.precision.best_ms``)."""
        for _ in range(rounds):
            t = time.perf_counter()
            self._picture(frames[0], "fp32")
            ms["fp32"] = min(ms["fp32"], 1000 * (time.perf_counter() - t))
            ms[p] = min(ms[p], 1000 * self._overlapped(self._timed_frames(frames), p)[1])

    def _overlapped(self, frames: list, precision: str) -> tuple[list[np.ndarray], float]:
        """``frames`` translated at ``precision`` as a run translates them (``Translator.submit``:
        in flight where frames overlap, else one by one from the run's statistics so far), and
        the seconds a frame that took; the translator's state and precision left as they were."""
        if not self._overlaps(frames[0]):
            t = time.perf_counter()
            pictures = [self._picture(f, precision)[0] for f in frames]
            return pictures, (time.perf_counter() - t) / len(frames)
        with self._at(precision):
            t = time.perf_counter()
            done = [d for i, f in enumerate(frames) for d in self.translator.submit(f, i)]
            done += self.translator.flush()
            seconds = (time.perf_counter() - t) / len(frames)
        return [out for _, out in sorted(done, key=lambda d: d[0])], seconds

    def _fp32_ms(self, frames: list, seconds: list[float]) -> float:
        """ms a frame at fp32: the best of the check's frames after the first (the first compiled)
        that have its size, else the first translated once more."""
        like = [s for f, s in zip(frames[1:], seconds[1:]) if _alike(f, frames[0])]
        if not like:
            t = time.perf_counter()
            self._picture(frames[0], "fp32")
            like = [time.perf_counter() - t]
        return 1000 * min(like)

    def _picture(self, rgb: np.ndarray, precision: str) -> tuple[np.ndarray, object]:
        """``rgb`` translated at ``precision`` from the run's statistics so far, and the
        statistics that leaves; the translator's state and precision are left as they were."""
        with self._at(precision):
            out = self.translator(rgb)
            left = self.translator._stats
        return out, left

    @contextmanager
    def _at(self, precision: str):
        """The engine at ``precision`` for a check's translations; the translator's state
        (``kept_state``) and the engine's precision as they were afterwards."""
        engine, was = self.engine, self.engine.meta.precision
        with kept_state(self.translator):
            engine.set_precision(precision)
            try:
                yield
            finally:
                engine.set_precision(was)

    def _probed(self) -> str:
        engine = choosing(self.engine)
        return getattr(engine, "probed", engine.meta.precision)

    def _db(self, rgb: np.ndarray, out: np.ndarray) -> float:
        """dB of ``out`` (``rgb`` at the reduced precision) to ``rgb``'s fp32 picture."""
        return _db(out, self._picture(rgb, "fp32")[0])

    def _remember(self) -> None:
        if self.key:
            entry = {k: v for k, v in self.verdict.items() if k != "cached"}
            update_json(_store(), lambda known: known.update({self.key: entry}))

    def describe(self) -> str:
        """The verdict for the run report ('' when nothing was checked)."""
        v = self.verdict
        if not v:  # nothing checked: why, where a reduced precision was slower or int8 was left out
            if self.int8_left:
                return f"fp32: {self.int8_left}"
            return not_faster(choosing(self.engine))
        if v.get("cached"):
            text = f"{v['precision']} (this content's verdict, remembered: worst {min(v['db']):.1f} dB to fp32)"
        else:
            n = v.get("frames", len(v["db"]))
            where = "the first frame" + (f" and {n - 1} spread over the input" if n > 1 else "")
            tried = v.get("tried") or {v["reduced"]: min(v["db"])}
            checked = v.get("checked", {})

            def on(p: str) -> str:  # the frames a precision ran on: all, or up to its first below the floor
                c = checked.get(p, n)
                return "at worst on " + where if c >= n else (
                    f"on checked frame {c} of {n} (below the floor there, so not run on the rest)" if c > 1
                    else f"on the first frame (below the floor there, so not run on the {n - 1} spread over the input)")
            ms = v.get("ms", {})

            def timed(p: str, d: float) -> str:  # a faithful precision timed: its speed, and why not taken
                if p not in ms or d < REDUCED_DB:  # (one below the floor is refused for that alone)
                    return ""
                slow = "" if p == v["precision"] else " (not enough faster to take)"
                return f", {ms[p]:.0f} ms a frame against fp32's {ms['fp32']:.0f}{slow}"
            text = (f"{v['precision']}: " + ", ".join(f"{p} is {d:.1f} dB from fp32 {on(p)}{timed(p, d)}"
                                                      for p, d in tried.items())
                    + f" (floor {REDUCED_DB:g}; the probe had chosen {v['probe']})")
        if "recheck_db" in v:
            text += f"; rechecked at frame {v['recheck_frame']}: {v['recheck_db']:.1f} dB"
            if v["recheck_db"] < REDUCED_DB:
                text += f", below {REDUCED_DB:g}: fp32 from there on"
        if not v.get("cached") and v.get("seconds"):
            text += f"; checking took {v['seconds']:.2f} s (--precision skips it)"
        return text


def _alike(a: np.ndarray, b: np.ndarray) -> bool:
    """Frames of one size (a folder's images may differ: another size compiles anew)."""
    return a.shape == b.shape


def _db(out: np.ndarray, ref: np.ndarray) -> float:
    return round(min(psnr(out.astype(np.float32), ref.astype(np.float32), 255.0), 999.0), 1)


def _store():
    return cache_dir("choices") / "content.json"


class kept_state:
    """Runs the translator for a check without touching what the run's frames carry: its frame
    count, times and smoothed statistics are as they were before."""

    def __init__(self, translator):
        self.t = translator

    def __enter__(self):
        t = self.t
        self.saved = (t.frames, dict(t.times), dict(t.last), t._stats)

    def __exit__(self, *exc):
        t = self.t
        t.frames, times, last, t._stats = self.saved
        t.times.clear()
        t.times.update(times)
        t.last = last
