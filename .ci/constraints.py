"""constraints.txt: the exact versions the tests and benchmarks ran on, and what is newer.

pyproject.toml keeps ranges (library users install from those); the server install and CI use
``pip install -c constraints.txt -e '.[dev]'`` so a fresh machine gets what was measured, and an
upgrade is a deliberate change to this file (re-run the tests and benchmarks, then ``write``).

    .venv/bin/python .ci/constraints.py write   # pin what this venv holds (recsmith excluded)
    .venv/bin/python .ci/constraints.py check   # installed vs pinned, and newer releases on the
                                                # index (exit 1 with --strict when any is newer)
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

FILE = Path(__file__).resolve().parent.parent / "constraints.txt"
HEADER = """\
# The versions recsmith's tests and benchmarks ran on: pip install -c constraints.txt -e '.[dev]'
# Written by `python .ci/constraints.py write`; newer releases: `python .ci/constraints.py check`.
# torch is the CPU build (+cpu): never a CUDA one.
"""


def _pip(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "pip", *args], capture_output=True, text=True, check=True
    ).stdout


def _key(name: str) -> str:
    """PEP 503 normalised name: how pip compares distribution names."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(text: str) -> dict[str, str]:
    """``name==version`` lines of a constraints file, by normalised name."""
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[_key(name)] = version.strip()
    return pins


def write() -> None:
    FILE.write_text(HEADER + _pip("freeze", "--exclude", "recsmith"))
    print(f"wrote {FILE}")


def check(strict: bool) -> int:
    pins = pinned(FILE.read_text())
    installed = {
        _key(p["name"]): p["version"] for p in json.loads(_pip("list", "--format", "json"))
    }
    drift = {n: (v, installed.get(n, "-")) for n, v in pins.items() if installed.get(n) != v}
    for name, (want, have) in sorted(drift.items()):
        print(f"drift  {name}: pinned {want}, installed {have}")
    try:
        outdated = json.loads(_pip("list", "--outdated", "--format", "json"))
    except subprocess.CalledProcessError as exc:  # no index reachable: say so, do not fail CI
        print(f"newer  not checked: pip list --outdated failed ({exc.stderr.strip()[-200:]})")
        outdated = []
    newer = {_key(p["name"]): p["latest_version"] for p in outdated if _key(p["name"]) in pins}
    for name, latest in sorted(newer.items()):
        print(f"newer  {name}: pinned {pins[name]}, newest {latest}")
    print(f"{len(pins)} pinned, {len(drift)} drifted, {len(newer)} with a newer release")
    return 1 if strict and (drift or newer) else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["write", "check"])
    parser.add_argument("--strict", action="store_true", help="check: exit 1 on drift or newer")
    args = parser.parse_args()
    if args.command == "write":
        write()
        return 0
    return check(args.strict)


if __name__ == "__main__":
    sys.exit(main())
