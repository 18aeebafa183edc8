"""Work items for scale-out: whole videos, or long videos cut at keyframes, joined by stream copy.

A segment covers the frames whose pts lie in [start, end) where start is a keyframe, so it
decodes on its own. Its worker seeks to ``lead_in`` frames before ``start`` and translates those
too (temporal state and statistics EMA warm up as in a single pass), then drops them. Every
segment is encoded with the same parameters, starting with an IDR frame (closed GOP), with
timestamps relative to its own start; ``join`` copies the packets of all segments into one stream,
shifted back to the source's timestamps, and remuxes the source's audio and subtitles once.
Frames in = frames out and pts = the source's are checked; a mismatch fails the join.
"""

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from ..errors import PipelineError
from ..media.files import atomic_path
from ..media.video import ENCODED_TAGS, FILE_TAGS, Remuxer, carried_tags, main_video, open_input


@dataclass(frozen=True)
class Item:
    """A whole video (``segment`` None) or one segment of it, and where its result goes."""

    video: str
    output: str
    frames: int
    segment: int | None = None
    start_pts: int = 0
    end_pts: int | None = None
    lead_pts: int = 0
    time_base: Fraction = Fraction(1)

    @property
    def key(self) -> str:
        return f"{Path(self.video).name}" + ("" if self.segment is None else f"#{self.segment}")


def frame_index(path: Path) -> tuple[list[int], list[int], Fraction, bool]:
    """(pts of every frame in presentation order, pts of keyframes, time base, whether the times go
    back: recordings joined end to end, which a single pass runs whole), from packets only."""
    with open_input(path) as c:
        s = main_video(c)
        pts, keys, back = [], [], False
        for p in c.demux(s):
            if p.size == 0 or p.pts is None or p.is_discard:  # (frames an MP4's edit list leaves out: a
                continue  # copy cut between keyframes holds the frames from the keyframe before it)
            if p.is_keyframe:
                back = back or (bool(keys) and keys[-1] >= p.pts)  # (keyframes come in order: B-frames
                keys.append(p.pts)  # reorder the frames between them only)
            pts.append(p.pts)
        return sorted(pts), sorted(keys), s.time_base, back


def plan_items(video: Path, output: Path, segment_seconds: float, lead_in: int, workdir: Path) -> list[Item]:
    """One item for a short video; for a long one, segments of at least ``segment_seconds`` cut at
    keyframes (segment files go to ``workdir``)."""
    pts, keys, tb, back = frame_index(video)
    seconds = float((pts[-1] - pts[0]) * tb) if pts else 0.0
    if seconds < 2 * segment_seconds or len(keys) < 2 or back:
        return [Item(str(video), str(output), len(pts), time_base=tb)]
    cuts = [pts[0]]
    for k in keys:
        if float((k - cuts[-1]) * tb) >= segment_seconds and float((pts[-1] - k) * tb) >= segment_seconds / 2:
            cuts.append(k)
    items = []
    for i, start in enumerate(cuts):
        end = cuts[i + 1] if i + 1 < len(cuts) else None
        first = pts.index(start)
        n = (pts.index(end) if end is not None else len(pts)) - first
        items.append(Item(str(video), str(workdir / f"{video.stem}.{i:04d}{output.suffix}"), n, i, start, end,
                          pts[max(0, first - lead_in)], tb))  # (the output's container: its codec, e.g. VP9)
    return items


def translate_item(item: Item, engine, video_kw: dict, on_frame=None) -> dict:
    """Run one work item through the single-process pipeline."""
    from ..offline.video import translate_video
    kw = {**video_kw, "progress": False, "quiet": True, "on_frame": on_frame}
    if item.segment is None:
        return translate_video(item.video, item.output, engine, **kw)
    tb = item.time_base
    start = float(item.lead_pts * tb)
    duration = None if item.end_pts is None else float((item.end_pts - item.lead_pts) * tb)
    return translate_video(item.video, item.output, engine, **{**kw, "start": start, "duration": duration,
                                                              "lead_in_until": item.start_pts,
                                                              "copy_streams": False, "overwrite": True})


def _video_packets(segments: list[Item], first_pts: int):
    """Packets of every segment file in order, timestamps shifted back to the source's clock less
    ``first_pts`` (the output's zero on it)."""
    for item in segments:
        with av.open(item.output) as c:
            s = c.streams.video[0]
            shift = int(round((item.start_pts - first_pts) * item.time_base / s.time_base))
            for p in c.demux(s):
                if p.size == 0:
                    continue
                p.pts = None if p.pts is None else p.pts + shift
                p.dts = None if p.dts is None else p.dts + shift
                yield p


def _at(p) -> float:
    ts = p.dts if p.dts is not None else p.pts
    return float(ts * p.time_base) if ts is not None else 0.0


def join(segments: list[Item], output: Path, notes: list[str] | None = None) -> int:
    """Concatenate the segment files of one video into ``output`` (stream copy) with the source's
    audio/subtitle packets (re-encoded where the container cannot hold them, said in ``notes``);
    returns the frame count. Checks frames and timestamps."""
    source = Path(segments[0].video)
    pts, _, tb, _ = frame_index(source)
    with atomic_path(output) as tmp:
        with av.open(segments[0].output) as first, av.open(str(tmp), "w") as out:
            vout = out.add_stream_from_template(first.streams.video[0])
            out.metadata.update(carried_tags(first.metadata, FILE_TAGS))  # (the source's, as each segment has them)
            vout.metadata.update(carried_tags(first.streams.video[0].metadata, ENCODED_TAGS))
            remux = Remuxer(source, out)  # the source's audio and subtitles, re-encoded where they must be
            zero = round(remux.origin / tb)  # (where a single run's output starts: the streams stay in step)
            written = []
            try:
                for p in _video_packets(segments, zero):
                    written.append(float(p.pts * p.time_base))
                    p.stream = vout
                    out.mux(p)
                    remux.until(_at(p) + 0.5)
                remux.until(None)
                remux.finish()
            finally:
                remux.close()
            if notes is not None:
                notes += [n for n in remux.notes if n not in notes]
        want = sorted(float((q - zero) * tb) for q in pts)
        if len(written) != len(pts) or any(abs(a - b) > 1e-3 for a, b in zip(sorted(written), want)):
            raise PipelineError(f"{source}: joined {len(written)} frames for {len(pts)} in the source, or their "
                                "timestamps differ; nothing written")
    return len(written)
