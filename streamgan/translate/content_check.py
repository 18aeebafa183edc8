"""Precision by content: whether a run keeps its engine's reduced precision (bf16 on a CPU, fp16
on a GPU) is decided on the run's own frames, not on the synthetic probe the engine chose by.

Before the first frame is translated, it and a few frames spread over the clip (``samples``) are
translated at fp32 and at the reduced precision; the reduced one runs where the worst of them stays
>= REDUCED_DB (40 dB) from fp32, else fp32 does, whatever the probe said (a probe can be harder or
easier than real pictures: multistyle26 reads 38 dB on the probe and 43-45 dB on photographs on an
AMX Xeon). One later frame is checked again (``recheck_at``): its reduced-precision output against
its fp32 translation; below the floor, fp32 runs from there on. The verdict, with its dB, is in
the run report; a file's verdict is remembered (same model, file, segment and options), so a
second run of it checks nothing.

Only engines opened to choose their precision are checked (``engines.precision.Switchable``): a
precision the user named, and fixed artifacts (.plan, .pt2), run as they are.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from engines.base import sha256
from engines.cache import cache_dir, read_json, update_json
from engines.fastest import REDUCED_DB
from engines.metrics import psnr


class ContentCheck:
    """The precision verdict of one run. ``key``: what identifies the run's content for the cache
    (None: not remembered, e.g. a live source)."""

    def __init__(self, translator, samples: Callable[[], list[np.ndarray]] | None = None,
                 recheck_at: int | None = None, key: str | None = None):
        self.translator, self.samples, self.recheck_at = translator, samples, recheck_at
        model = getattr(translator.engine, "model_key", None)  # (set by open_engine: the file and options)
        self.key = None if key is None or model is None else sha256(f"{model}|{key}|{translator.opt}".encode())[:32]
        self.seen = 0  # frames handed to ``before``
        self.reduced: str | None = None
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
        self.reduced = next((p for p in options if p != "fp32"), None) if "fp32" in options else None
        if self.reduced is None:
            return None
        if known and known.get("precisions") == list(options):
            self.verdict = {**known, "cached": True}
            self.engine.set_precision(self.verdict["precision"])
            return None
        outs, t0 = {}, time.perf_counter()
        dbs = [self._db(rgb, outs=outs)] + [self._db(f) for f in (self.samples() if self.samples else [])]
        self.verdict = {"precision": self.reduced if min(dbs) >= REDUCED_DB else "fp32",
                        "reduced": self.reduced, "db": dbs, "probe": self._probed(), "precisions": list(options),
                        "seconds": round(time.perf_counter() - t0, 2)}
        self._remember()
        self.engine.set_precision(self.verdict["precision"])
        out, stats = outs[self.verdict["precision"]]
        self.translator.frames += 1  # the first frame's output is the check's, at the chosen precision
        self.translator._stats = stats  # ... and so are the smoothed statistics it leaves
        return out

    def _probed(self) -> str:
        engine = self.engine
        engine = getattr(engine, "chosen", None) or engine
        return getattr(engine, "probed", engine.meta.precision)

    def _db(self, rgb: np.ndarray, out: np.ndarray | None = None, outs: dict | None = None) -> float:
        """dB of the reduced precision's picture of ``rgb`` (``out``, or translated now) to fp32's;
        ``outs`` gets, by precision, each picture with the smoothed statistics it left."""
        engine, was, before = self.engine, self.engine.meta.precision, self.translator._stats
        with kept_state(self.translator):
            if out is None:
                engine.set_precision(self.reduced)
                out = self.translator(rgb)
                left = self.translator._stats
                self.translator._stats = before
            engine.set_precision("fp32")
            ref = self.translator(rgb)
            if outs is not None:
                outs.update({self.reduced: (out, left), "fp32": (ref, self.translator._stats)})
            engine.set_precision(was)
        db = psnr(out.astype(np.float32), ref.astype(np.float32), 255.0)
        return round(min(db, 999.0), 1)

    def _remember(self) -> None:
        if self.key:
            entry = {k: v for k, v in self.verdict.items() if k != "cached"}
            update_json(_store(), lambda known: known.update({self.key: entry}))

    def describe(self) -> str:
        """The verdict for the run report ('' when nothing was checked)."""
        v = self.verdict
        if not v:
            return ""
        if v.get("cached"):
            text = f"{v['precision']} (this content's verdict, remembered: worst {min(v['db']):.1f} dB to fp32)"
        else:
            n = len(v["db"])
            where = "the first frame" + (f" and {n - 1} spread over the input" if n > 1 else "")
            text = (f"{v['precision']}: {v['reduced']} is {min(v['db']):.1f} dB from fp32 at worst on {where} "
                    f"(floor {REDUCED_DB:g}; the probe had chosen {v['probe']})")
        if "recheck_db" in v:
            text += f"; rechecked at frame {v['recheck_frame']}: {v['recheck_db']:.1f} dB"
            if v["recheck_db"] < REDUCED_DB:
                text += f", below {REDUCED_DB:g}: fp32 from there on"
        if not v.get("cached") and v.get("seconds"):
            text += f"; checking took {v['seconds']:.2f} s (--precision skips it)"
        return text


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
