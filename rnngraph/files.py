"""Atomic file writes, shared by every room that writes a file (models, parameters, run outputs).

A file is first written whole to a temporary file beside its target, flushed to disk,
then renamed over the target in one step: a reader (or a crash) sees the old file or
the whole new one, never a part. Temporary names start with ``.rnngraph-tmp-`` so that
a leftover from a killed process (``kill -9`` leaves no chance to clean up) is
recognizable; on every error the temporary file is removed and nothing else changes.

Written files get the mode an ordinary ``open(path, "w")`` would give them
(0666 less the umask, e.g. 0644), whatever wrote them.

Imports the standard library only, so that any room may use it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import IO

TEMP_PREFIX = ".rnngraph-tmp-"


def default_mode() -> int:
    """0666 less the process umask: what `open(path, "w")` creates."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def check_target(path: str, error: type[Exception], what: str) -> str:
    """The target's folder, after refusing a missing folder and a directory as the target."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise error(f"cannot write {what} {path!r}: directory {directory!r} does not exist.")
    if os.path.isdir(path):
        raise error(f"cannot write {what} {path!r}: it is a directory; give a file name inside it.")
    return directory


@contextlib.contextmanager
def temporary_file(path: str, error: type[Exception], what: str, suffix: str = "") -> Iterator[str]:
    """A temporary file name beside `path`; removed on any error, left for the caller to rename on success."""
    directory = check_target(path, error, what)
    try:
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX + os.path.basename(path) + ".", suffix=suffix, dir=directory)
    except OSError as exc:
        raise error(f"cannot write {what} {path!r}: {exc.strerror or exc}.") from exc
    os.close(fd)
    try:
        yield tmp
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def commit(tmp: str, path: str) -> None:
    """Give `tmp` the ordinary file mode, flush it to disk, and rename it over `path`."""
    os.chmod(tmp, default_mode())
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_atomic(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object], error: type[Exception],
                 what: str = "file") -> None:
    """Write `path` atomically: `write(f)` fills a temporary binary file, which then replaces `path`.

    `error` is the rnngraph error raised (naming `what` and the path) when the file cannot be
    written: a missing folder, a directory in its place, a full disk, no permission.
    """
    path = os.fspath(path)
    with temporary_file(path, error, what) as tmp:
        try:
            with open(tmp, "wb") as f:
                write(f)
            commit(tmp, path)
        except OSError as exc:
            raise error(f"cannot write {what} {path!r}: {exc.strerror or exc}.") from exc
