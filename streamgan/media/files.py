"""Paths and atomic writes: nothing appears at an output path until it is complete."""

import glob
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ..errors import OutputError


def file_identity(path: Path) -> str:
    """The file as caches key what was decided about it: where it is, when it last changed, its size."""
    st = path.stat()
    return f"{path.resolve()}:{st.st_mtime_ns}:{st.st_size}"


def is_pattern(spec: str) -> bool:
    """A glob pattern (that is not itself a path that exists)."""
    return any(c in spec for c in "*?[") and not Path(spec).exists()


def listing(spec: str) -> list[Path] | None:
    """The files a folder or a glob pattern names, sorted; None where ``spec`` is neither."""
    p = Path(spec)
    if p.is_dir():
        return sorted(q for q in p.iterdir() if q.is_file())
    if is_pattern(spec):
        return sorted(q for q in map(Path, glob.glob(spec)) if q.is_file())
    return None


def check_output(output: Path, inputs: list[Path], overwrite: bool) -> None:
    """Refuse to write over an input, over an existing file (without overwrite), or into nowhere."""
    out = output.resolve()
    for p in inputs:
        if p.exists() and p.resolve() == out:
            raise OutputError(f"{output}: output equals the input", hint="choose another --output")
    if output.exists() and not overwrite:
        raise OutputError(f"{output}: already exists", hint="pass --overwrite to replace it")
    parent = out.parent
    if not parent.is_dir():
        raise OutputError(f"{parent}: output folder does not exist")
    try:  # a real probe: access() says yes to root on read-only mounts and pseudo file systems
        tempfile.TemporaryFile(dir=parent).close()
    except OSError:
        raise OutputError(f"{parent}: output folder is not writable") from None


def temp_beside(output: Path) -> Path:
    """A new empty temp file beside ``output`` (same suffix), named as remove_partials() looks for."""
    fd, tmp = tempfile.mkstemp(prefix=f".{output.stem}.", suffix=f".partial{output.suffix}",
                               dir=output.resolve().parent)
    os.close(fd)
    return Path(tmp)


def publish(tmp: Path, output: Path | str) -> None:
    """Rename the finished ``tmp`` onto ``output``, with the usual permissions (mkstemp makes 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, output)


@contextmanager
def atomic_path(output: Path):
    """Yield a temp path beside ``output`` (same suffix); rename it onto ``output`` on success."""
    tmp = temp_beside(output)
    try:
        yield tmp
        publish(tmp, output)
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_partials(output: Path) -> None:
    """Delete temp files atomic_path left for ``output`` in a process that was killed mid-write."""
    for stale in output.parent.glob(f".{output.stem}.*.partial{output.suffix}"):
        stale.unlink(missing_ok=True)
