"""Progress bars for long steps: silent unless the CLI turns them on.

The pipeline marks its long steps (preparing the area: reading OSM and
building the network; snapping; routing; isochrones; maps and charts; batch
jobs) with :func:`step` and :func:`track`. Both do nothing until
:func:`enable` is called with a `rich` console, which the CLI does only on an
interactive terminal and without ``-q``: a library call, a notebook, a test
or a CI log (not a TTY) prints nothing.

Examples
--------
>>> with step("routing") as advance:
...     advance(1)
>>> list(track([1, 2], "maps"))
[1, 2]
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

T = TypeVar("T")

_state: dict[str, Progress | None] = {"progress": None}


def enable(console: Console | None = None) -> None:
    """Show progress bars on `console` (default: standard error)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    disable()
    _state["progress"] = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        transient=False,
    )


def disable() -> None:
    """Stop showing progress (the default)."""
    progress = _state["progress"]
    if progress is not None and progress.live.is_started:
        progress.stop()
    _state["progress"] = None


def is_enabled() -> bool:
    """Return True when progress bars are shown."""
    return _state["progress"] is not None


def wanted(*, quiet: bool, stream: object = None) -> bool:
    """Return True when the CLI should show bars: not quiet and `stream` is a terminal.

    Examples
    --------
    >>> import io
    >>> wanted(quiet=False, stream=io.StringIO())
    False
    """
    return not quiet and _isatty(sys.stderr if stream is None else stream)


def _isatty(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    return callable(isatty) and bool(isatty())


@contextlib.contextmanager
def step(description: str, total: float | None = None) -> Iterator[Callable[[float], None]]:
    """Show one step: a spinner with elapsed time, or a bar when `total` is known.

    Yields a function that advances the bar by its argument (a no-op when
    progress is off). The step is marked complete when the block ends.
    """
    progress = _state["progress"]
    if progress is None:
        yield _noop
        return
    from rich.markup import escape

    started_here = not progress.live.is_started
    if started_here:
        progress.start()
    task = progress.add_task(description, total=total)

    def advance(n: float = 1.0) -> None:
        progress.advance(task, n)

    try:
        yield advance
    finally:
        elapsed = progress.tasks[progress.task_ids.index(task)].elapsed or 0.0
        progress.remove_task(task)  # a finished step leaves one line above the live bars
        progress.console.print(f"[green]✓[/green] {escape(description)} ({elapsed:.1f} s)")
        if started_here:
            progress.stop()


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate over `items`, advancing a bar per item when progress is on."""
    if total is None and isinstance(items, Sized):
        total = len(items)
    with step(description, total=total) as advance:
        for item in items:
            yield item
            advance(1)


def _noop(n: float = 1.0) -> None:
    return None
