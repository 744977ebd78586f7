"""Progress of multi-fit work (sensitivity analyses, simulation runners, the command line).

A bar from ``rich`` (already PyMC's progress library) on standard error, shown only when asked
for and when standard error is a terminal: quiet in logs, CI and pipes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["progress"]


@contextmanager
def progress(total: int, description: str, enabled: bool = True) -> Iterator[Callable[[], None]]:
    """Yield ``advance()``, to call once per finished unit of work.

    Parameters
    ----------
    total
        Units of work (fits, replicates).
    description
        What is being done, e.g. ``"sensitivity refits"``.
    enabled
        Show a bar at all; default True. Nothing is shown either when standard error is not a
        terminal.
    """
    from rich.console import Console

    console = Console(stderr=True)
    if not enabled or total <= 0 or not console.is_terminal:
        yield lambda: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(description, total=total)
        yield lambda: bar.advance(task)
