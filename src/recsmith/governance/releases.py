"""Model releases on disk: published versions, a current pointer, deploy and rollback.

Layout under the registry root::

    versions/<version>/   a model or pipeline directory, copied in by ``publish`` (never edited)
    current.json          {"version": ..., "history": [older versions, newest first]}
    reload-requested      touched by ``POST /v1/admin/reload``: every server re-reads the pointer

``current.json`` is replaced atomically (write a temporary file, then ``os.replace``), so a server
watching it reads either the old pointer or the new one, never half of one. The server swaps its
loaded model when the pointer changes (see ``serving.reloader``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from recsmith.bundle import read_manifest
from recsmith.errors import RecsmithError, ValidationError

MAX_HISTORY = 50


@dataclass(frozen=True, slots=True)
class Release:
    version: str
    path: Path
    created_at: str
    kind: str  # "model" or "pipeline"
    current: bool


class ModelRegistry:
    """See module docstring. Every method is safe to call while a server reads the registry."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.versions_dir = root / "versions"
        self.pointer = root / "current.json"
        self.reload_marker = root / "reload-requested"

    def publish(self, artifact: Path) -> str:
        """Copy a trained model/pipeline directory in as a new version; returns the version."""
        if not (artifact / "manifest.json").is_file():
            raise ValidationError("--model-dir", f"{artifact} is not a model directory")
        version = read_manifest(artifact)["version"]
        target = self.versions_dir / version
        if target.exists():
            return version  # versions are immutable: publishing the same one twice is a no-op
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".publish-", dir=self.versions_dir))
        shutil.copytree(artifact, staging, dirs_exist_ok=True)
        staging.rename(target)  # atomic: a half-copied version is never visible
        return version

    def path(self, version: str) -> Path:
        where = self.versions_dir / version
        if not (where / "manifest.json").is_file():
            known = ", ".join(r.version for r in self.releases()) or "none"
            raise ValidationError("version", f"no release {version!r} (published: {known})")
        return where

    def _read(self) -> dict[str, object]:
        if not self.pointer.is_file():
            return {"version": None, "history": []}
        return dict(json.loads(self.pointer.read_text()))

    def current(self) -> str | None:
        version = self._read().get("version")
        return None if version is None else str(version)

    def deploy(self, version: str) -> None:
        """Point ``current`` at ``version`` (which must be published); the old one joins history."""
        self.path(version)
        state = self._read()
        history = [str(v) for v in state.get("history", [])]  # type: ignore[union-attr]
        previous = state.get("version")
        if previous is not None and previous != version:
            history.insert(0, str(previous))
        self._write({"version": version, "history": history[:MAX_HISTORY]})

    def request_reload(self) -> None:
        """Ask every server following this registry (every worker, every replica) to re-read
        the pointer now rather than at its next poll: the marker's modification time changes,
        and each server's reloader looks at it every 0.2 s (``Reloader.NUDGE_S``)."""
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".reload-{os.getpid()}"
        staging.write_text(f"{time.time_ns()}\n")
        os.replace(staging, self.reload_marker)

    def reload_requested(self) -> int:
        """The marker's modification time in ns (0 while none was requested)."""
        try:
            return self.reload_marker.stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    def history(self) -> list[str]:
        """The versions deployed before the current one, newest first."""
        return [str(v) for v in self._read().get("history", [])]  # type: ignore[union-attr]

    def previous(self) -> str | None:
        """The version ``rollback`` goes back to (None when nothing was deployed before)."""
        return next(iter(self.history()), None)

    def rollback(self) -> str:
        """Back to the version deployed before the current one; returns it."""
        state = self._read()
        history = [str(v) for v in state.get("history", [])]  # type: ignore[union-attr]
        if not history:
            # the registry's state, not the command line, is what is wrong: a failure (exit 3)
            raise RecsmithError("rollback: no earlier deployed version to roll back to")
        version = history.pop(0)
        self.path(version)
        self._write({"version": version, "history": history})
        return version

    def releases(self) -> list[Release]:
        current = self.current()
        out = []
        if self.versions_dir.is_dir():
            for where in sorted(self.versions_dir.iterdir()):
                manifest = where / "manifest.json"
                if where.name.startswith(".") or not manifest.is_file():
                    continue
                meta = json.loads(manifest.read_text())
                out.append(
                    Release(
                        where.name,
                        where,
                        str(meta.get("created_at", "")),
                        str(meta.get("kind", "model")),
                        where.name == current,
                    )
                )
        return sorted(out, key=lambda r: r.created_at)

    def _write(self, state: dict[str, object]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".current-", dir=self.root)
        with os.fdopen(fd, "w") as handle:
            json.dump(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.pointer)
