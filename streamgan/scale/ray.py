"""``streamgan run --ray``: videos and keyframe-aligned segments of long videos over Ray actors.

One actor per GPU (or per ``--cpus-per-worker`` CPU cores) holds a warm engine and runs work items
(``streamgan.scale.segments``) through the single-process pipeline. A failed item (the actor died or
raised) is retried on another actor, at most ``--retries`` times, then the job fails naming the
video and segment. Finished items are recorded in a manifest beside the output, so ``--resume``
runs only what is missing; segments join by stream copy once all of a video's are done.
Nothing appears at an output path until that video is complete.
"""

import os
import shutil
import sys
import time
from pathlib import Path

from tqdm import tqdm

from engines.cache import read_json, write_json

from ..errors import OptionError, PipelineError
from ..media.files import remove_partials
from .segments import Item, join, plan_items, translate_item

KILL_ENV = "STREAMGAN_TEST_KILL"  # test hook: "ITEM_KEY:FRAME" kills the actor process once, mid-item


class Worker:
    """A Ray actor body: one warm engine, items in, per-item reports out."""

    def __init__(self, engine_path: str, open_kw: dict, options, video_kw: dict, kill_marker: str | None):
        from ..translate.engine import open_engine
        self.engine = open_engine(engine_path, **open_kw)
        self.video_kw = {**video_kw, "options": options}
        self.kill_marker = kill_marker
        self.frames, self.seconds = 0, 0.0

    def _killer(self, item: Item):
        spec = os.environ.get(KILL_ENV, "")
        key, _, at = spec.rpartition(":")
        if not spec or key != item.key or not self.kill_marker or os.path.exists(self.kill_marker):
            return None

        def on_frame(n: int) -> None:
            if n >= int(at):
                Path(self.kill_marker).touch()
                os._exit(1)  # the actor process dies mid-segment, as a crashed node would
        return on_frame

    def run(self, item: Item) -> dict:
        t = time.perf_counter()
        report = translate_item(item, self.engine, self.video_kw, on_frame=self._killer(item))
        dt = time.perf_counter() - t
        self.frames += report["frames_out"]
        self.seconds += dt
        return {"key": item.key, "frames": report["frames_out"], "seconds": dt, "node": os.uname().nodename,
                "pid": os.getpid()}


def _save_manifest(path: Path, done: dict) -> None:
    write_json(path, {"done": done})


def _manifest_path(output: Path, folder: bool) -> Path:
    return output / ".streamgan-job.json" if folder else output.with_name(f".{output.name}.streamgan-job.json")


def run_on_ray(videos: list[Path], output: Path, folder: bool, engine_path: str, open_kw: dict, options,
               video_kw: dict, *, address: str | None, cpus_per_worker: int = 1, workers: int | None = None,
               segment_seconds: float = 60.0, lead_in: int = 30, retries: int = 3, resume: bool = False,
               progress: bool = True) -> dict:
    """Translate ``videos`` (into folder ``output``, or the one video to file ``output``) on Ray."""
    import ray
    targets = {v: (output / v.name if folder else output) for v in videos}
    for v, dst in targets.items():
        if dst.exists() and not (resume or video_kw.get("overwrite")):
            raise OptionError(f"{dst}: already exists", hint="pass --overwrite, or --resume to finish a job")
    work = output / ".streamgan-segments" if folder else output.with_name(f".{output.name}.segments")
    manifest_path = _manifest_path(output, folder)
    done = (read_json(manifest_path) or {}).get("done", {}) if resume else {}
    plans = {v: plan_items(v, targets[v], segment_seconds, lead_in, work) for v in videos}  # (reads only)
    todo = [it for items in plans.values() for it in items
            if not (it.key in done and Path(it.output).exists())]
    _start(ray, address)  # before anything is written: a cluster that is not there leaves nothing at the output
    try:
        work.mkdir(parents=True, exist_ok=True)  # (in the output folder, made with it)
        report = _schedule(ray, todo, engine_path, open_kw, options, video_kw, cpus_per_worker, workers, retries,
                           progress, manifest_path, done, work)
    finally:
        ray.shutdown()
    notes: list[str] = []
    for v, items in plans.items():
        if len(items) > 1 and not (targets[v].exists() and done.get(f"{v.name}:joined")):
            join(items, targets[v], notes)  # replaces an existing output only once the join succeeded
            done[f"{v.name}:joined"] = True
            _save_manifest(manifest_path, done)
    shutil.rmtree(work, ignore_errors=True)
    manifest_path.unlink(missing_ok=True)
    for dst in targets.values():  # temp files of items whose worker was killed mid-way
        remove_partials(dst)
    report["videos"] = {v.name: {"output": str(targets[v]), "frames": sum(i.frames for i in plans[v]),
                                 "segments": len(plans[v]) if len(plans[v]) > 1 else 0} for v in videos}
    report["notes"] = notes
    return report


def _start(ray, address: str | None) -> None:
    """Ray started locally (``address`` None) or joined; one line where it cannot be."""
    try:
        ray.init(address=address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    except (ConnectionError, TimeoutError, ValueError, RuntimeError) as exc:
        why = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:160]
        if address is None:
            raise PipelineError(f"--ray: a local Ray instance did not start ({why})") from None
        raise OptionError(f"--ray {address}: no Ray cluster to join ({why})",
                          hint="start one with `ray start --head`, or pass --ray alone for a local instance") from None


def _schedule(ray, todo, engine_path, open_kw, options, video_kw, cpus_per_worker, workers, retries, progress,
              manifest_path: Path, done: dict, work: Path) -> dict:
    gpus = int(ray.cluster_resources().get("GPU", 0))
    cpus = int(ray.cluster_resources().get("CPU", 1))
    n = workers or (gpus if gpus else max(1, cpus // cpus_per_worker))
    share = cpus_per_worker if gpus or n * cpus_per_worker <= cpus else cpus / n  # oversubscribed: share the CPUs
    actor_cls = ray.remote(num_cpus=share, num_gpus=1 if gpus else 0)(Worker)
    device = "cuda" if gpus else "cpu"
    kill_marker = str(work / "killed-once")
    open_kw = {**open_kw, "device": device}

    def spawn():
        return actor_cls.remote(engine_path, open_kw, options, video_kw, kill_marker)

    actors = [spawn() for _ in range(n)]
    idle, queue, running = list(range(n)), list(todo), {}
    attempts: dict[str, int] = {}
    failures: list[dict] = []
    per_worker = {i: {"frames": 0, "seconds": 0.0, "items": 0, "failures": 0} for i in range(n)}
    total = sum(it.frames for it in todo)
    bar = tqdm(total=total, unit="frame", desc=f"ray x{n}", disable=not progress, file=sys.stderr)
    t0 = time.perf_counter()
    try:
        while queue or running:
            while queue and idle:
                slot, item = idle.pop(0), queue.pop(0)
                running[actors[slot].run.remote(item)] = (slot, item)
            ready, _ = ray.wait(list(running), num_returns=1)
            slot, item = running.pop(ready[0])
            try:
                r = ray.get(ready[0])
            except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as exc:
                per_worker[slot]["failures"] += 1
                attempts[item.key] = attempts.get(item.key, 0) + 1
                failures.append({"item": item.key, "worker": slot, "error": str(exc).strip().splitlines()[-1][:300]})
                if isinstance(exc, ray.exceptions.RayActorError):
                    actors[slot] = spawn()  # the process is gone: a fresh one takes its place
                if attempts[item.key] > retries:
                    what = "the video" if item.segment is None else f"segment {item.segment}"
                    why = str(exc).strip().splitlines()[-1][:200]
                    raise PipelineError(f"{item.video}: {what} failed {attempts[item.key]} times ({why})",
                                        hint="--resume reruns only what is missing") from None
                queue.append(item)  # retried, preferably elsewhere
                idle.append(slot)
                continue
            w = per_worker[slot]
            w["frames"] += r["frames"]
            w["seconds"] += r["seconds"]
            w["items"] += 1
            done[item.key] = {"frames": r["frames"], "output": item.output}
            _save_manifest(manifest_path, done)
            bar.update(r["frames"])
            idle.append(slot)
    finally:
        bar.close()
    elapsed = time.perf_counter() - t0
    for w in per_worker.values():
        w["fps"] = w["frames"] / w["seconds"] if w["seconds"] else 0.0
    return {"workers": n, "device": device, "seconds": elapsed, "frames": total,
            "fps": total / elapsed if elapsed else 0.0, "per_worker": per_worker,
            "retries": sum(attempts.values()), "failures": failures, "items": len(todo)}


def run_ray_args(args, open_kw: dict, options) -> dict:
    """``streamgan run --ray``: check the job, then run it on the cluster."""
    from ..media.files import listing
    from ..media.images import is_image
    from ..media.video import is_video
    from ..offline.video import folder_output, video_kwargs
    try:
        import ray  # noqa: F401
    except ImportError:
        raise OptionError("--ray needs Ray", hint="pip install 'streamgan[ray]'") from None
    if args.workers is not None and args.workers < 1 or args.cpus_per_worker < 1 or args.segment_seconds <= 0 \
            or args.lead_in < 0 or args.retries < 0:
        raise OptionError("--workers, --cpus-per-worker must be >= 1, --segment-seconds > 0, --lead-in and "
                          "--retries >= 0")
    if args.start or args.duration is not None:
        raise OptionError("--start/--duration are not supported with --ray")
    inp, out = Path(args.input), Path(args.output)
    files = listing(args.input)
    if files is not None:  # a folder or a glob
        videos = [p for p in files if is_video(p)]
        if not videos:
            raise OptionError(f"{inp}: no videos to run on Ray")
        images = [p for p in files if is_image(p)]
        if images:
            print(f"note: Ray runs videos: the {len(images)} image(s) here are left out (run them without --ray)",
                  file=sys.stderr)
        folder_output(out)
        folder = True
    elif inp.is_file() and is_video(inp):
        from ..media.files import check_output
        if not args.resume:
            check_output(out, [inp], args.overwrite)
        videos, folder = [inp], False
    else:
        raise OptionError(f"{inp}: --ray takes a video file or a folder of videos")
    address = None if args.ray == "local" else args.ray
    report = run_on_ray(videos, out, folder, args.engine, open_kw, options, video_kwargs(args), address=address,
                        cpus_per_worker=args.cpus_per_worker, workers=args.workers,
                        segment_seconds=args.segment_seconds, lead_in=args.lead_in, retries=args.retries,
                        resume=args.resume, progress=not args.no_progress)
    if not args.quiet:
        print(f"ray: {report['frames']} frames on {report['workers']} workers in {report['seconds']:.1f} s "
              f"({report['fps']:.1f} fps), {report['retries']} retries", file=sys.stderr)
        for note in report["notes"]:
            print(f"note: {note}", file=sys.stderr)
    return report
