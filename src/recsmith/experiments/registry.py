"""Experiments stored beside the release registry, where every server already looks.

``experiments.json`` sits in the registry root next to ``current.json`` and is replaced the same
way (temporary file, fsync, ``os.replace``), so a reader sees the old list or the new one, never
half. Every change touches the registry's reload marker, and each server's reloader looks at it
every second (``serving.reloader``): a started or stopped experiment reaches every worker and
replica that follows the registry within a second, by the mechanism a deploy uses, with no second
one to run or monitor. Read-modify-write is serialised with an ``flock`` so two commands started
together cannot lose each other's change.

Names are never reused: the decision log keeps an experiment's name, and a second experiment
under it would pool its units with the first one's in every report.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from recsmith.errors import ValidationError
from recsmith.experiments.spec import Experiment
from recsmith.governance.releases import ModelRegistry

FILE = "experiments.json"


class ExperimentRegistry:
    """See module docstring. Safe to read while another process writes."""

    def __init__(self, root: Path) -> None:
        self.models = ModelRegistry(root)
        self.path = root / FILE
        self._lock_path = root / ".experiments.lock"

    def stamp(self) -> int:
        """The file's modification time in ns (0 when there is none): a cheap "did it change"."""
        try:
            return self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    def all(self) -> list[Experiment]:
        if not self.path.is_file():
            return []
        data = json.loads(self.path.read_text())
        return [Experiment.from_json(e) for e in data.get("experiments", [])]

    def running(self) -> list[Experiment]:
        return [e for e in self.all() if e.running]

    def get(self, name: str) -> Experiment:
        found = {e.name: e for e in self.all()}
        if name not in found:
            known = ", ".join(found) or "none"
            raise ValidationError("name", f"no experiment {name!r} (known: {known})")
        return found[name]

    def start(self, experiment: Experiment) -> Experiment:
        """Store ``experiment`` as running; refused when the name was used before or a running
        experiment already splits the same placement (no placement = every placement)."""

        def change(current: list[Experiment]) -> list[Experiment]:
            if any(e.name == experiment.name for e in current):
                raise ValidationError(
                    "name", f"experiment {experiment.name!r} exists (names are never reused)"
                )
            for other in (e for e in current if e.running):
                if None in (other.placement, experiment.placement) or (
                    other.placement == experiment.placement
                ):
                    mine = experiment.placement or "every placement"
                    theirs = other.placement or "every placement"
                    raise ValidationError(
                        "--placement",
                        f"experiment {other.name!r} is running on {theirs}; "
                        f"stop it before starting one on {mine}",
                    )
            started = replace(experiment, started_at=_now(), stopped_at=None)
            return [*current, started]

        self._update(change)
        return self.get(experiment.name)

    def stop(self, name: str) -> Experiment:
        """Mark ``name`` stopped: its units get the deployed release again from the next second."""
        self.get(name)

        def change(current: list[Experiment]) -> list[Experiment]:
            return [
                replace(e, stopped_at=_now()) if e.name == name and e.running else e
                for e in current
            ]

        self._update(change)
        return self.get(name)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _update(self, change: Callable[[list[Experiment]], list[Experiment]]) -> None:
        with self._locked():
            after = change(self.all())
            fd, tmp = tempfile.mkstemp(prefix=".experiments-", dir=self.path.parent)
            with os.fdopen(fd, "w") as handle:
                json.dump({"experiments": [e.to_json() for e in after]}, handle, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        self.models.request_reload()  # every server re-reads within a second

    def resolve(self, target: str) -> Path:
        """A variant's model directory: a published release of this registry, else a directory."""
        release = self.models.versions_dir / target
        if (release / "manifest.json").is_file():
            return release
        where = Path(target)
        if (where / "manifest.json").is_file():
            return where
        known = ", ".join(r.version for r in self.models.releases()) or "none"
        raise ValidationError(
            "--variant",
            f"{target!r} is neither a release (published: {known}) nor a model directory",
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
