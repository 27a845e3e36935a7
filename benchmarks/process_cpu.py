"""CPU seconds used by a process and everything it started (Linux ``/proc``): what a server spent
on a measured run, whatever else shared the machine.

Throughput on a shared 2-core machine swings with the neighbours' load; the server's own CPU time
per request does much less, so ``serve_load.py`` reports it beside requests/s, for recsmith and for
the plain-FastAPI baseline alike (issue #19's "cost per request").
"""

from __future__ import annotations

import os
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (which may hold spaces)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone, or no /proc (not Linux)
        return None
    return text.rsplit(")", 1)[1].split()


def tree_cpu_s(root: int) -> float | None:
    """User + system CPU seconds of ``root`` and its live descendants; None without ``/proc``."""
    if _stat(root) is None:
        return None
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))  # field 4: ppid
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        fields = _stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # fields 14, 15: utime, stime
        todo.extend(children.get(pid, []))
    return total / _TICK
