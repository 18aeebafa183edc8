"""``streamgan info``: what a checkpoint or engine file is."""

import json
from pathlib import Path

from .errors import EngineError, InputError


def info(path: str | Path) -> dict:
    """Architecture and parameters of a checkpoint, or the metadata of an engine file."""
    from .checkpoints import describe, load_generator
    from .engine import CHECKPOINT_SUFFIXES
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
        facts = {"file": str(path), "kind": "onnx", **read_onnx_meta(path)}
        layers = with_norm_stats(path)[1]
        if layers:
            facts["normalisation"] = f"{layers} instance-norm layers, statistics exposed (thumbnail tiles, EMA)"
        return _with_choices(facts, path)
    if suffix == ".xml":
        from engines.openvino_backend import read_ir_meta
        return {"file": str(path), "kind": "openvino-ir", **read_ir_meta(path)}
    sidecar = Path(str(path) + ".json")
    if suffix in (".plan", ".engine", ".pt2") and sidecar.exists():
        return {"file": str(path), "kind": suffix[1:], **json.loads(sidecar.read_text())}
    if suffix == ".pt2":
        from engines.aoti_backend import read_pt2_meta
        return {"file": str(path), "kind": "pt2", **read_pt2_meta(path)}
    raise EngineError(f"{path}: unknown file type {suffix!r} (or its {sidecar.name} is missing)")


def _with_choices(facts: dict, path: Path) -> dict:
    """``facts`` and which backend `--backend auto` runs ``path`` with, per frame shape (or probe)
    and machine, and why (the measured times)."""
    from engines.fastest import remembered_choices
    chosen = remembered_choices(f"{path.resolve()}:{path.stat().st_mtime_ns}")
    return {**facts, "engine choices": chosen} if chosen else facts
