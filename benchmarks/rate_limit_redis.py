"""Cost of a rate-limited request's token: the process's own bucket vs the bucket shared through
Redis (``access/shared_rate_limit.py``, one Lua script per request).

For each, per ``admit(key, "read")`` call with a rate that never refuses (``1e9/s``): the wall
time (median and 99th percentile of single calls: the time the event loop is held, since the
shared bucket's round trip is a blocking redis-py call on the loop), this process's CPU time per
call (``time.process_time``, which leaves out the wait for Redis), and the Redis server's CPU
per call (``INFO cpu`` before and after; the Redis here is shared with other work, so an upper
bound). Rounds alternate between the two so machine load falls on both alike.

    PYTHONPATH=src python benchmarks/rate_limit_redis.py [redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable

import redis
from calibration import calibration_line

import recsmith.serving  # noqa: F401  first: access.shared_rate_limit and serving import each other
from recsmith.access.rate_limit import TokenBuckets, parse_rate
from recsmith.access.shared_rate_limit import PREFIX, SharedTokenBuckets

CALLS, ROUNDS = 5_000, 5
RATES = {"read": parse_rate("1000000000/s", "read")}


def one_round(admit: Callable[[str, str], float], key: str) -> tuple[list[int], float]:
    """Wall ns of each call, and this process's CPU µs per call."""
    wall = []
    cpu = time.process_time()
    for _ in range(CALLS):
        started = time.perf_counter_ns()
        admit(key, "read")
        wall.append(time.perf_counter_ns() - started)
    return wall, (time.process_time() - cpu) / CALLS * 1e6


def redis_cpu_s(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/0"
    print(calibration_line(), flush=True)
    client = redis.Redis.from_url(url)
    print(f"redis server {client.info('server')['redis_version']}, redis-py {redis.__version__}")
    key = f"bench-{os.getpid()}"
    local, shared = TokenBuckets(RATES), SharedTokenBuckets(url, RATES)
    shared.admit(key, "read")  # loads the script once (EVALSHA from then on)
    results: dict[str, dict[str, list[float]]] = {
        n: {"p50": [], "p99": [], "cpu": [], "server": []} for n in ("local", "redis")
    }
    for _ in range(ROUNDS):
        for name, admit in (("local", local.admit), ("redis", shared.admit)):
            before = redis_cpu_s(client)
            wall, cpu = one_round(admit, key)
            server = (redis_cpu_s(client) - before) / CALLS * 1e6
            wall.sort()
            results[name]["p50"].append(wall[len(wall) // 2] / 1e3)
            results[name]["p99"].append(wall[int(len(wall) * 0.99)] / 1e3)
            results[name]["cpu"].append(cpu)
            results[name]["server"].append(server)
    assert not shared.degraded, "Redis did not answer: the figures would be the fallback's"
    client.delete(f"{PREFIX}{key}:read")
    print(f"{CALLS} calls x {ROUNDS} rounds, interleaved; median of the rounds (min..max)")
    print("bucket | wall p50 µs | wall p99 µs | client CPU µs/call | Redis CPU µs/call")
    for name, got in results.items():
        cells = [
            f"{statistics.median(v):.2f} ({min(v):.2f}..{max(v):.2f})"
            for v in (got["p50"], got["p99"], got["cpu"], got["server"])
        ]
        print(f"{name} | " + " | ".join(cells))


main()
