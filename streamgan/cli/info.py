"""``streamgan info``: what a checkpoint or engine file is."""

import json
from pathlib import Path

from ..errors import EngineError, InputError

# engine metadata that says nothing to a reader when empty, or that the file's own graph states better
_QUIET = ("backend", "consts", "shapes", "max_batch", "stats_width", "extra")


def info(path: str | Path) -> dict:
    """Architecture and parameters of a checkpoint, or the metadata of an engine file."""
    from ..translate.checkpoints import describe, load_generator
    from ..translate.engine import CHECKPOINT_SUFFIXES
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in CHECKPOINT_SUFFIXES:
        facts = {"file": str(path), "kind": "checkpoint", **describe(load_generator(path))}
        return _with_choices(facts, path)
    if suffix == ".onnx":
        from engines.onnx_backend import read_onnx_meta
        from engines.onnx_stats import with_norm_stats
        facts = {"file": str(path), "kind": "onnx", **_tidy(read_onnx_meta(path))}
        layers = with_norm_stats(path)[1]
        if layers:
            facts["normalisation"] = f"{layers} instance-norm layers, statistics exposed (thumbnail tiles, EMA)"
        return _with_choices(facts, path)
    if suffix == ".xml":
        from engines.openvino_backend import read_ir_meta
        facts = {"file": str(path), "kind": "openvino-ir", **_tidy(read_ir_meta(path))}
        if "norm_stats" in facts.get("inputs", []):
            facts["normalisation"] = "statistics inputs and outputs (thumbnail tiles, EMA)"
        return facts
    sidecar = Path(str(path) + ".json")
    if suffix in (".plan", ".engine", ".pt2") and sidecar.exists():
        return {"file": str(path), "kind": suffix[1:], **_tidy(json.loads(sidecar.read_text()))}
    if suffix == ".pt2":
        from engines.aoti_backend import read_pt2_meta
        return {"file": str(path), "kind": "pt2", **_tidy(read_pt2_meta(path))}
    raise EngineError(f"{path}: unknown file type {suffix!r} (or its {sidecar.name} is missing)")


def _tidy(meta: dict) -> dict:
    """Engine metadata for a reader: empty fields left out, the model's own facts (name, norm,
    layout, ...) next to the others, a fixed shape as HxW."""
    out = {k: v for k, v in meta.items() if k not in _QUIET}
    out.update({k: v for k, v in (meta.get("extra") or {}).items() if v not in (None, "")})
    if meta.get("shapes"):
        out["fixed frame size"] = "x".join(map(str, meta["shapes"]["max"]))
        if meta.get("max_batch"):
            out["fixed batch"] = meta["max_batch"]
    return out


def _with_choices(facts: dict, path: Path) -> dict:
    """``facts`` and which backend `--backend auto` runs ``path`` with, in words: per frame size
    (or for every size, where a probe decided), machine and options, and why (the times)."""
    from engines.fastest import remembered_choices
    chosen = remembered_choices(f"{path.resolve()}:{path.stat().st_mtime_ns}")
    if chosen:
        facts["engine choices"] = {_choice_words(key): verdict for key, verdict in chosen.items()}
    return facts


def _choice_words(key: str) -> str:
    """'auto|None|batch|AMD EPYC x2|1x3x360x640' -> '640x360 frames on AMD EPYC x2 (precision auto)'."""
    *options, machine, shape = key.split("|")
    dims = shape.split("x")
    where = "every frame size" if shape == "probe" else (
        f"{dims[3]}x{dims[2]} frames" + (f", batches of {dims[0]}" if dims[0] != "1" else "") if len(dims) == 4
        else shape)
    said = [o for o in options if o not in ("None", "", "batch")]
    precision = f" (precision {said[0]})" if said else ""
    return f"{where} on {machine}{precision}"
