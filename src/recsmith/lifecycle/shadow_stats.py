"""Shadow figures beyond one process: each server process following the registry writes its
tally to ``shadow-stats/<host>-<pid>.json`` in the model registry (``ShadowRunner``, every
``WRITE_S`` while it compares), and ``recsmith monitor`` reads them all back and merges them.

The registry is where shadow mode already lives (``shadow.json``: which release, what sample),
so every replica that can shadow can write there, and the CLI reads it without a server or an
API key. Only files about the release ``shadow.json`` names now, and written within ``FRESH_S``,
count: a process that stopped long ago, or a shadow of an earlier release, says nothing about
this one. Merging is exact: counts and overlap sums add, and the percentiles are taken over the
union of the latencies each process kept (its newest ``shadow.KEPT``).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

#: The registry's folder of per-process tallies.
FOLDER = "shadow-stats"
#: How often a comparing process rewrites its file.
WRITE_S = 5.0
#: Files older than this are left out (a process gone, or one that stopped comparing).
FRESH_S = 24 * 3600.0


def stats_path(root: Path) -> Path:
    """This process's file under registry ``root``."""
    return root / FOLDER / f"{socket.gethostname()}-{os.getpid()}.json"


def write_tally(root: Path, tally: dict[str, Any]) -> None:
    """Write ``tally`` (``ShadowRunner.tally_record``) atomically as this process's file."""
    path = stats_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}")
    staging.write_text(json.dumps({**tally, "written_at": datetime.now(UTC).isoformat()}))
    os.replace(staging, path)


def read_tallies(root: Path, release: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """The fresh files about ``release`` (unreadable ones skipped: a process may be writing)."""
    now = now or datetime.now(UTC)
    found = []
    for path in sorted((root / FOLDER).glob("*.json")):
        try:
            tally = json.loads(path.read_text())
            written = datetime.fromisoformat(tally["written_at"])
        except (OSError, ValueError, KeyError):
            continue
        if tally.get("release") == release and now - written <= timedelta(seconds=FRESH_S):
            found.append(tally)
    return found


def merged(release: str, sample: float | None, tallies: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One summary of ``release``'s shadow over every process's tally (``processes``: how many
    wrote one; overlaps and latencies None before the first comparison)."""
    rows = list(tallies)
    n = sum(int(t["compared"]) for t in rows)
    return {
        "release": release,
        "sample": sample,
        "processes": len(rows),
        "since": min((t["since"] for t in rows), default=None),
        "compared": n,
        "dropped": sum(int(t["dropped"]) for t in rows),
        "failed": sum(int(t["failed"]) for t in rows),
        # a tally written before store_failed was counted apart has none
        "store_failed": sum(int(t.get("store_failed", 0)) for t in rows),
        "jaccard": sum(float(t["jaccard_sum"]) for t in rows) / n if n else None,
        "rbo": sum(float(t["rbo_sum"]) for t in rows) / n if n else None,
        "shadow_latency_ms": percentiles([x for t in rows for x in t["shadow_ms"]]),
        "served_latency_ms": percentiles([x for t in rows for x in t["served_ms"]]),
    }


def percentiles(values: list[float]) -> dict[str, float] | None:
    """p50 and p99 (ms) of ``values``; None for none."""
    if not values:
        return None
    p50, p99 = np.percentile(np.asarray(values, dtype=np.float64), [50, 99])
    return {"p50": float(p50), "p99": float(p99)}


def registry_shadow(root: Path, now: datetime | None = None) -> dict[str, Any] | None:
    """The merged figures of the release ``shadow.json`` in registry ``root`` names (None when
    nothing is shadowed there)."""
    from recsmith.lifecycle.shadow import FILE  # the runner imports this module

    try:
        wanted = json.loads((root / FILE).read_text())
    except FileNotFoundError:  # set by [lifecycle] shadow_release only: the newest file's
        wanted = _newest(root)
    except (OSError, ValueError):
        return None
    release = wanted.get("release")
    if not release:
        return None
    return merged(str(release), wanted.get("sample"), read_tallies(root, str(release), now))


def _newest(root: Path) -> dict[str, Any]:
    """The release and sample of the most recently written tally ({} for none)."""
    newest: dict[str, Any] = {}
    for path in (root / FOLDER).glob("*.json"):
        try:
            tally = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if str(tally.get("written_at", "")) > str(newest.get("written_at", "")):
            newest = tally
    return {"release": newest.get("release"), "sample": newest.get("sample")}
