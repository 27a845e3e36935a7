"""Memory of N server workers serving one large release: format 1 (``.npz``) vs format 2 (``.npy``
files, memory-mapped read-only; ``recsmith.array_files``).

Builds a synthetic iALS release of ``--users`` × ``--items`` (random float32 factors of
``--factors``, ``--seen`` training items per user in the exclusion matrix; no training: memory is
the question, not accuracy), saves it in format 2 and, rewritten by
``recsmith.testing.format1``, in format 1. For each format it starts
``recsmith serve --workers N`` on it, waits until every worker is ready (the time is reported:
loading is part of the cost), sends ``--requests`` recommendation requests for random known users
on fresh connections (``SO_REUSEPORT`` spreads them over the workers), and reads each worker's
``/proc/PID/smaps_rollup``:

- RSS: resident pages, shared ones counted in full in every worker;
- PSS: each resident page divided by the number of processes mapping it (sums to the real total);
- USS: pages only this process maps (Private_Clean + Private_Dirty);
- Anon: PSS of anonymous memory (the heap: copies no other process can share);
- File: PSS of mapped files (the release's arrays, shared by the workers that read them).

A mapped page that only one worker touched is Private_Clean in it (counted in its USS) although it
is page cache that any later reader shares and the kernel can drop at any time: Anon is the
figure that cannot be shared or dropped. The formats are measured one after the other in the same
run, ``--rounds`` times, interleaved.

    .venv/bin/python benchmarks/release_memory.py --users 1000000 --items 300000 --workers 4

``--similar N`` adds N similar-item requests, which map the unit item vectors a release carries
(``derived/``) or, from a release without them, derive each worker's own copy: that release is
measured too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
from calibration import calibration_line
from scipy import sparse

from recsmith.bundle import ModelBundle
from recsmith.ids import IdMap
from recsmith.models.als import ALSConfig, ImplicitALS
from recsmith.models.popularity import Popular, PopularConfig
from recsmith.store.sqlite import SQLiteStore
from recsmith.testing.format1 import DERIVED, downgrade_to_format1
from recsmith.testing.ports import free_port

FIELDS = ("Rss", "Pss", "Private_Clean", "Private_Dirty", "Pss_Anon", "Pss_File")


def build_release(users: int, items: int, factors: int, seen: int, out: Path) -> None:
    """A servable iALS release of random factors, written in format 2 to ``out``."""
    rng = np.random.default_rng(0)
    user_ids = IdMap(np.char.add("u", np.arange(users).astype(str)).astype(object))
    item_ids = IdMap(np.char.add("i", np.arange(items).astype(str)).astype(object))
    scale = np.float32(1 / np.sqrt(factors))
    model = ImplicitALS.from_arrays(
        ALSConfig(factors=factors),
        {
            "user_factors_": rng.standard_normal((users, factors), np.float32) * scale,
            "item_factors_": rng.standard_normal((items, factors), np.float32) * scale,
        },
    )
    # every user has ``seen`` distinct items, drawn with a popularity skew (Zipf-like)
    cols = np.sort(
        (items * rng.random((users, seen)) ** 2).astype(np.int32) % items, axis=1
    ).ravel()
    indptr = np.arange(0, users * seen + 1, seen, dtype=np.int64)
    matrix = sparse.csr_array(
        (np.ones(users * seen, np.float32), cols, indptr), shape=(users, items)
    )
    matrix.sum_duplicates()
    counts = np.bincount(matrix.indices, minlength=items).astype(np.float32)
    popular = Popular.from_arrays(PopularConfig(), {"item_scores_": counts})
    bundle = ModelBundle.assemble(
        model, user_ids, item_ids, matrix, popular, started=datetime.now(UTC)
    )
    bundle.save(out)


def rollup(pid: int) -> dict[str, float]:
    """``smaps_rollup`` fields of ``pid`` in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in FIELDS:
            values[name] = int(rest.split()[0]) / 1024
    return values


def workers_of(pid: int) -> list[int]:
    """The spawned worker processes under the server ``pid`` (not multiprocessing's helpers)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    found = []
    for child in map(int, children):
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            found.append(child)
    return found


def drive(base: str, paths: list[str], threads: int = 4) -> float:
    """GETs of ``paths``, each on a new connection; returns req/s."""
    picks = np.asarray(paths, dtype=object)
    errors: list[str] = []

    def client(part: np.ndarray) -> None:
        for path in part:
            r = httpx.get(f"{base}{path}", timeout=60)
            if r.status_code != 200:
                errors.append(r.text[:200])

    started = time.perf_counter()
    pool = [threading.Thread(target=client, args=(p,)) for p in np.array_split(picks, threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, first: {errors[0]}")
    return len(picks) / (time.perf_counter() - started)


def asked(users: int, items: int, requests: int, similar: int) -> list[str]:
    """``requests`` recommendation GETs for random known users, then ``similar`` GETs of
    random items' similar lists (their unit item vectors: each worker's own copy when the
    release does not carry them, BENCHMARKS §57)."""
    rng = np.random.default_rng(1)
    return [f"/v1/users/u{u}/recommendations?k=10" for u in rng.integers(0, users, requests)] + [
        f"/v1/items/i{i}/similar?k=10" for i in rng.integers(0, items, similar)
    ]


def measure(release: Path, store: str, workers: int, paths: list[str]) -> dict:
    port = free_port()
    env = {**os.environ, "RECSMITH_SERVING__REQUIRE_KEYS": "false"}
    command = [sys.executable, "-m", "recsmith", "-q", "serve", "--model-dir", str(release)]
    command += ["--store", store, "--port", str(port), "--workers", str(workers)]
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        while len(workers_of(proc.pid)) < workers or not _ready(base):
            if proc.poll() is not None:
                raise SystemExit(f"server exited: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)
        # every worker must have loaded: each answers /health/ready only after its load
        for _ in range(10 * workers):
            httpx.get(f"{base}/health/ready", timeout=60)
        ready_s = time.perf_counter() - started
        rate = drive(base, paths)
        time.sleep(1)
        pids = workers_of(proc.pid)
        per = [rollup(pid) for pid in pids]
        parent = rollup(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return {"ready_s": ready_s, "req_s": rate, "workers": per, "parent": parent}


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health/ready", timeout=2).is_success
    except httpx.HTTPError:
        return False


def _size_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def report(name: str, result: dict) -> None:
    per = result["workers"]
    for w in per:
        w["USS"] = w["Private_Clean"] + w["Private_Dirty"]
    print(f"{name}: ready in {result['ready_s']:.1f} s, {result['req_s']:.0f} req/s while measured")
    columns = ("Rss", "Pss", "USS", "Pss_Anon", "Pss_File")
    print("  worker   RSS MiB   PSS MiB   USS MiB  Anon MiB  File MiB")
    for i, w in enumerate(per):
        print(f"  {i:>6}" + "".join(f" {w[c]:>9.0f}" for c in columns))
    total = {c: sum(w[c] for w in per) for c in columns}
    print(
        f"  {'total':>6}"
        + "".join(f" {total[c]:>9.0f}" for c in columns)
        + f"   (supervisor: PSS {result['parent']['Pss']:.0f} MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=300_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--seen", type=int, default=20, help="training items per user")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument(
        "--similar",
        type=int,
        default=0,
        help="similar-item requests after them; with any, format 2 is also measured without "
        "the derived arrays (a release written before they were: BENCHMARKS §57)",
    )
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the releases here")
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    print(f"load average: {os.getloadavg()}", flush=True)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="release-memory-"))
    f2, f1 = work / "format2", work / "format1"
    if not f2.is_dir():
        started = time.perf_counter()
        build_release(args.users, args.items, args.factors, args.seen, f2)
        print(f"built in {time.perf_counter() - started:.0f} s", flush=True)
    if not f1.is_dir():
        shutil.copytree(f2, f1)
        downgrade_to_format1(f1)
    variants = [("format 1 (.npz)", f1), ("format 2 (.npy, mapped)", f2)]
    if args.similar:
        underived = work / "format2-underived"
        if not underived.is_dir():
            shutil.copytree(f2, underived)
            for directory in sorted(underived.rglob(DERIVED)):
                shutil.rmtree(directory)
        variants.insert(1, ("format 2 without derived/ (before §57)", underived))
    print(
        f"release: {args.users:,} users x {args.items:,} items, {args.factors} factors, "
        f"{args.seen} seen items per user; on disk format 1 {_size_mib(f1):.0f} MiB, "
        f"format 2 {_size_mib(f2):.0f} MiB",
        flush=True,
    )
    store = f"sqlite:///{work / 'store.sqlite'}"
    SQLiteStore(work / "store.sqlite").close()
    paths = asked(args.users, args.items, args.requests, args.similar)
    for _ in range(args.rounds):
        for name, release in variants:
            report(name, measure(release, store, args.workers, paths))
            print(f"load average: {os.getloadavg()}", flush=True)
    if args.workdir is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
