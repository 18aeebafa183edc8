"""The on-disk cache ($STREAMGAN_CACHE) that several processes share safely.

Several runs may start at once on one cache (a shell loop with ``&``, GNU parallel, Ray workers on
one node). Every entry is therefore written to a name of its own and renamed into place (a reader
sees the old entry or the new one, never half of one), read-modify-write files are updated under
an exclusive lock, work that would otherwise be done N times at once (a compile, an export) is
done under a lock by the first process while the others wait and then read its result, and an
entry that does not parse or is shorter than recorded is treated as missing and rebuilt.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def cache_dir(kind: str) -> Path:
    """Where compiled artifacts and measured choices of one kind are kept ($STREAMGAN_CACHE)."""
    return Path(os.environ.get("STREAMGAN_CACHE", Path.home() / ".cache" / "streamgan")) / kind


def _private(path: Path) -> Path:
    """A temporary name beside ``path`` that no other process or thread uses."""
    return path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` all at once: a reader sees the old file or the new one, never half."""
    write_with(path, lambda tmp: tmp.write_bytes(data))


def write_with(path: Path, write: Callable[[Path], object]) -> None:
    """``write(tmp)`` fills a private temporary file, which then replaces ``path`` in one rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _private(path)
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, data) -> None:
    """Write ``data`` as JSON all at once."""
    write_bytes(path, json.dumps(data, indent=1).encode())


def read_json(path: Path, default=None):
    """The JSON at ``path``; ``default`` when it is missing or does not parse (a damaged entry is
    rebuilt by its owner, never trusted)."""
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return default


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock named after ``path`` (``path``.lock), across processes and threads;
    released when the block ends or the process dies. Where the file system has no locks, the
    block runs unlocked (the writes inside are atomic all the same)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _thread_lock(path):
        try:
            import fcntl
        except ImportError:  # not POSIX
            yield
            return
        with open(path.with_name(path.name + ".lock"), "a+b") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX)
            except OSError:
                yield
                return
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


_thread_locks: dict[str, threading.RLock] = {}
_guard = threading.Lock()


def _thread_lock(path: Path) -> threading.RLock:
    """flock excludes other processes; threads of this one are excluded here."""
    with _guard:
        return _thread_locks.setdefault(str(path), threading.RLock())


def update_json(path: Path, change: Callable[[dict], object]) -> dict:
    """Read the JSON object at ``path`` (empty when missing or damaged), apply ``change`` to it
    in place and write it back, under the file's lock: concurrent updates all land."""
    with locked(path):
        data = read_json(path, {})
        if not isinstance(data, dict):
            data = {}
        change(data)
        write_json(path, data)
        return data


def entry(path: Path, make: Callable[[Path], dict | None] | None = None) -> dict | None:
    """A cached file and its facts: ``path`` with ``path``.json beside it recording its size
    (and whatever ``make`` returns). Returns the facts when both are there and the size matches;
    otherwise, with ``make``, builds the entry under a lock (a process that waited finds it made)
    by calling ``make(tmp)`` to write the file (it may leave it absent: a fact-only entry) and
    return its facts; None without ``make``."""
    facts_path = path.with_name(path.name + ".json")

    def valid() -> dict | None:
        facts = read_json(facts_path)
        if not isinstance(facts, dict):
            return None
        size = facts.get("bytes")
        if size is not None and (not path.exists() or path.stat().st_size != size):
            return None
        return facts

    found = valid()
    if found is not None or make is None:
        return found
    with locked(path):
        found = valid()
        if found is not None:
            return found
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _private(path)
        try:
            facts = dict(make(tmp) or {})
            if tmp.exists():
                facts["bytes"] = tmp.stat().st_size
                tmp.replace(path)
            write_json(facts_path, facts)
        finally:
            tmp.unlink(missing_ok=True)
        return facts
