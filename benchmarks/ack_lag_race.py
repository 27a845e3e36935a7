"""How often a JetStream lag read straight after ``ack`` still counts the batch pending (§151).

Each round: a scratch stream on the test NATS server, 16 messages published, fetched by one
consumer, acknowledged, and the lag read at once. Prints the rounds and how many read
pending > 0. Run it under CPU load (busy loops) to see the race the flaky redelivery test hit:

    PYTHONPATH=src python benchmarks/ack_lag_race.py --rounds 300
"""

from __future__ import annotations

import argparse
import os
import time

from recsmith.testing.streams import ScratchStream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument(
        "--url", default=os.environ.get("RECSMITH_TEST_NATS_URL", "nats://127.0.0.1:4222")
    )
    args = parser.parse_args()
    stale: list[int] = []
    started = time.monotonic()
    for _ in range(args.rounds):
        stream = ScratchStream("nats", args.url, prefix="ack-lag")
        try:
            stream.publish([("event", b'{"n": %d}' % i) for i in range(16)])
            broker = stream.broker("c1", claim_idle_s=30)
            got = []
            while len(got) < 16:
                got += broker.fetch(16 - len(got), 0.5)
            broker.ack(got)
            if pending := broker.lag().pending:
                stale.append(pending)
            broker.close()
        finally:
            stream.delete()
    print(
        f"rounds={args.rounds} pending_after_ack={len(stale)} values={stale[:20]} "
        f"wall={time.monotonic() - started:.0f}s load={os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
