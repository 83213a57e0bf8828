"""Atomic writes: a file or folder appears whole or not at all.

A run can be killed at any moment (SIGKILL, a lost machine); readers must
never see half a file. Everything the suite writes goes through here: the
content goes to a temporary sibling, which replaces the target in one
``os.replace`` (atomic on POSIX within a folder).

Files and folders are created with the process umask, like any other tool's
(0644 and 0755 under the default umask 022): a results folder is shared with
reviewers or served by a web server. ``tempfile.mkstemp`` would make every file
0600 and ``mkdtemp`` every folder 0700, readable by their owner only.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path``; on success it replaces ``path``, on error it is removed.

    The temporary name keeps ``path``'s suffix, so writers that infer a format from it
    (``np.savez``, ``to_parquet``) see the right one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _fresh(path.parent, f".{path.stem}.", f".tmp{path.suffix}", lambda p: os.close(os.open(p, _NEW, 0o666)))
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:  # on disk before it is visible under its name
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL  # create, never open one that exists


def _fresh(folder: Path, prefix: str, suffix: str, create) -> str:
    """A new entry of a random name in ``folder``, made by ``create(path)`` with the mode it asks for, which
    the OS narrows by the umask (a name that exists already, however unlikely, is drawn again)."""
    while True:
        candidate = str(folder / f"{prefix}{secrets.token_hex(6)}{suffix}")
        try:
            create(candidate)
            return candidate
        except FileExistsError:
            continue


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """A temporary folder beside ``path``, renamed to ``path`` on success.

    For caches built the same way by whoever gets there first: where ``path`` appeared
    meanwhile (another process finished the same build), ours is discarded."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(_fresh(path.parent, f".{path.name}.", ".tmp", lambda p: os.mkdir(p, 0o777)))
    try:
        yield tmp
        try:
            tmp.rename(path)
        except OSError:
            if not path.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def waiting_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created if missing), waiting while another process
    holds it: for a cache entry that two parallel jobs could otherwise both compute. The OS releases
    the lock when its holder dies, so a killed job never blocks the next."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
