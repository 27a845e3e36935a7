"""Cost of a rate-limited request's token: the process's own bucket vs the bucket shared through
Redis (``access/shared_rate_limit.py``, one Lua script per request).

For each, per ``admit(key, "read")`` call with a rate that never refuses (``1e9/s``): the wall
time (median and 99th percentile of single calls: the time the event loop is held, since the
shared bucket's round trip is a blocking redis-py call on the loop), this process's CPU time per
call (``time.process_time``, which leaves out the wait for Redis), and the Redis server's CPU
per call (``INFO cpu`` before and after; the Redis here is shared with other work, so an upper
bound). A plain ``PING`` per call, on redis-py without the script, is the floor of any round
trip. Rounds alternate between the three so machine load falls on all alike. A round in which a
Redis call passed the link's 50 ms timeout (the in-process fallback then answers for 5 s) is
dropped and counted: its figures would be the fallback's.

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
    fell_back = 0

    def through_redis(key_id: str, scope: str) -> float:
        """``shared.admit``, counting the calls the in-process fallback answered (a Redis call
        past the 50 ms timeout puts the link down for 5 s): a round with any is not counted."""
        nonlocal fell_back
        wait = shared.admit(key_id, scope)
        fell_back += shared.degraded
        return wait

    results: dict[str, dict[str, list[float]]] = {
        n: {"p50": [], "p99": [], "cpu": [], "server": []} for n in ("local", "redis", "ping")
    }

    def ping(key_id: str, scope: str) -> float:
        """The floor of any round trip: one PING on a plain client of the same Redis."""
        client.ping()
        return 0.0

    attempts, dropped = 0, 0
    while len(results["redis"]["p50"]) < ROUNDS and attempts < 3 * ROUNDS:
        attempts += 1
        for name, admit in (("local", local.admit), ("redis", through_redis), ("ping", ping)):
            before, fell_before = redis_cpu_s(client), fell_back
            wall, cpu = one_round(admit, key)
            server = (redis_cpu_s(client) - before) / CALLS * 1e6
            if fell_back != fell_before:
                dropped += 1
                time.sleep(shared.link.RETRY_S)  # until the link tries Redis again
                continue
            wall.sort()
            results[name]["p50"].append(wall[len(wall) // 2] / 1e3)
            results[name]["p99"].append(wall[int(len(wall) * 0.99)] / 1e3)
            results[name]["cpu"].append(cpu)
            results[name]["server"].append(server)
    client.delete(f"{PREFIX}{key}:read")
    print(f"Redis rounds dropped (a call timed out, the fallback answered): {dropped}")
    n = len(results["redis"]["p50"])
    if n == 0:
        raise SystemExit("no round without a fallback: Redis too slow on this machine now")
    print(f"{CALLS} calls x {n} rounds, interleaved; median of the rounds (min..max)")
    print("bucket | wall p50 µs | wall p99 µs | client CPU µs/call | Redis CPU µs/call")
    for name, got in results.items():
        cells = [
            f"{statistics.median(v):.2f} ({min(v):.2f}..{max(v):.2f})"
            for v in (got["p50"], got["p99"], got["cpu"], got["server"])
        ]
        print(f"{name} | " + " | ".join(cells))


main()
