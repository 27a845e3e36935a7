"""One line per stage of long work on stderr, with its elapsed time, drawn by rich.

Pipeline training and evaluation run for minutes on a real data set; without a sign of life a
newcomer cannot tell slow from stuck. The lines go to stderr and only to a terminal: under
``-q``, or when stderr is piped or captured, nothing is drawn, so logs and scripts stay clean.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.markup import escape
from rich.progress import Progress, ProgressColumn, SpinnerColumn, Task, TextColumn
from rich.text import Text

from recsmith.cli._common import CliState, stderr
from recsmith.stages import StageHook, no_stages


class _Seconds(ProgressColumn):
    """Elapsed seconds, frozen once the stage is done (rich's own column shows H:MM:SS, which
    reads 0:00:00 for most stages)."""

    def render(self, task: Task) -> Text:
        seconds = task.finished_time if task.finished else task.elapsed
        return Text(f"{seconds or 0.0:.1f}s", style="progress.elapsed")


@contextmanager
def stage_progress(cli: CliState) -> Iterator[StageHook]:
    """A ``StageHook`` drawing each stage on stderr while it runs and leaving it with its time;
    ``no_stages`` under ``-q`` or when stderr is not a terminal (``CliState.show_progress``)."""
    if not cli.show_progress:
        yield no_stages
        return
    columns = (SpinnerColumn(finished_text="[green]✓[/]"), TextColumn("{task.description}"))
    with Progress(*columns, _Seconds(), console=stderr) as progress:

        @contextmanager
        def stage(name: str) -> Iterator[None]:
            task = progress.add_task(escape(name), total=1)
            try:
                yield
            except BaseException:
                progress.update(task, description=f"{escape(name)} [red](failed)[/]")
                progress.stop_task(task)
                raise
            progress.update(task, completed=1)

        yield stage
