"""Progress of long work (ridge harvests, distributed fits): a bar on a terminal, a callback in code.

    fit_ridge(..., progress=None)                 # default: a tqdm bar when stderr is a terminal, else silent
    fit_ridge(..., progress=False)                # silent
    fit_ridge(..., progress=lambda done, total: ...)   # called with steps done so far and the total (or None)

The bar goes to stderr and only when stderr is a TTY, so pipes, CI logs and
`2> file` stay clean.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from rnngraph.errors import InputError

#: a callback ``(done_steps, total_steps)``; `total_steps` is None when it is not known in advance
ProgressCallback = Callable[[int, int | None], Any]
Progress = bool | None | ProgressCallback


class Reporter:
    """Counts steps and forwards them to a callback or a tqdm bar; `close()` ends the bar."""

    def __init__(self, progress: Progress, total: int | None, description: str) -> None:
        if not (progress is None or isinstance(progress, bool) or callable(progress)):
            raise InputError(f"invalid value for `progress`: expected True, False, None or a callable "
                             f"(done_steps, total_steps), received {progress!r}.")
        self.done = 0
        self.total = total
        self._callback: ProgressCallback | None = progress if callable(progress) else None
        self._bar: Any = None
        if progress is not False and self._callback is None and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=description, unit="step", unit_scale=True, leave=False,
                             file=sys.stderr)

    def advance(self, steps: int) -> None:
        self.done += steps
        if self._callback is not None:
            self._callback(self.done, self.total)
        elif self._bar is not None:
            self._bar.update(steps)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


__all__ = ["Progress", "ProgressCallback", "Reporter"]
