"""Fault injection: PostgreSQL goes away under a running server.

A real server (``recsmith.serving.run`` in a subprocess) serves a PostgreSQL store reached through
a TCP forwarder this script owns. Once the server is ready and a key is cached, the forwarder is
closed (connections reset, new ones refused) and one keep-alive client sends ``--requests``
recommendation reads and as many event writes, alternating. Printed: answers by status, how many
requests needed a new connection (the server closed the previous one), and the server's log
(lines, bytes, tracebacks).

    python benchmarks/store_outage.py --requests 300
    python benchmarks/store_outage.py --server-src /other/checkout/src  # serve another tree
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import psycopg
from calibration import calibration_line

from recsmith.bundle import ModelBundle
from recsmith.config import EventSettings
from recsmith.events.validate import validate_events
from recsmith.features.interactions import Interactions
from recsmith.models.registry import create
from recsmith.serving import create_api_key
from recsmith.store.postgres import PostgresStore
from recsmith.testing.tcp_forwarder import TcpForwarder

SERVER = (
    "import json, sys\n"
    "from recsmith.config import Settings\n"
    "from recsmith.serving import run\n"
    "run(Settings(**json.loads(open(sys.argv[1]).read())), log_level='warning')\n"
)


def _model(path: Path) -> None:
    rng = np.random.default_rng(7)
    records = [
        {
            "event_id": f"m-{u}-{i}",
            "user_id": f"u{u}",
            "item_id": f"i{i}",
            "event_type": "view",
            "timestamp": time.time() - 86_400 + u,
        }
        for u in range(40)
        for i in rng.choice(50, size=10, replace=False)
    ]
    frame, _ = validate_events(records, EventSettings())
    data = Interactions.from_events(frame, EventSettings().weights)
    ModelBundle.train(data, create("itemknn")).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--requests", type=int, default=300, help="reads (and as many writes)")
    parser.add_argument("--server-src", help="PYTHONPATH of the server (another checkout's src)")
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    target = urlsplit(args.postgres)
    schema = f"outage_{uuid.uuid4().hex[:12]}"
    with (
        tempfile.TemporaryDirectory() as tmp,
        TcpForwarder((target.hostname or "127.0.0.1", target.port or 5432)) as forwarder,
    ):
        root = Path(tmp)
        _model(root / "model")
        netloc = f"{target.username}@127.0.0.1:{forwarder.port}"
        url = target._replace(netloc=netloc, query=f"connect_timeout=2&schema={schema}").geturl()
        store = PostgresStore(url)
        _, secret = create_api_key(store, "outage", ["read", "ingest"])
        store.close()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        settings = {
            "store": {"url": url},
            "serving": {"model_dir": str(root / "model"), "port": port},
        }
        (root / "settings.json").write_text(json.dumps(settings))
        log = root / "server.log"
        with log.open("wb") as out:
            server = subprocess.Popen(
                [sys.executable, "-c", SERVER, str(root / "settings.json")],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **({"PYTHONPATH": args.server_src} if args.server_src else {})},
            )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(600):
                try:
                    if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            else:
                sys.exit(f"server not ready:\n{log.read_text()}")
            statuses: collections.Counter[str] = collections.Counter()
            connections = set()
            closed = 0
            headers = {"Authorization": f"Bearer {secret}"}
            with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
                http.get("/v1/users/u1/recommendations")  # the key is cached from here on
                log_before = log.stat().st_size
                forwarder.close()
                started = time.perf_counter()
                for _ in range(args.requests):
                    for method, path, body in (
                        ("GET", "/v1/users/u1/recommendations", None),
                        (
                            "POST",
                            "/v1/events",
                            [
                                {
                                    "user_id": "u1",
                                    "item_id": "i1",
                                    "event_type": "view",
                                    "timestamp": time.time(),
                                }
                            ],
                        ),
                    ):
                        try:
                            answer = http.request(method, path, json=body)
                        except httpx.HTTPError as exc:
                            statuses[f"{method} {type(exc).__name__}"] += 1
                            continue
                        kind = answer.headers.get("content-type", "?").split(";")[0]
                        statuses[f"{method} {answer.status_code} {kind}"] += 1
                        try:
                            stream = answer.extensions["network_stream"]
                            connections.add(stream.get_extra_info("client_addr"))
                        except OSError:  # the server closed the connection after answering
                            closed += 1
                took = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(15)
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        text = log.read_bytes()[log_before:].decode(errors="replace")
    print(f"{2 * args.requests} requests in {took:.1f} s with PostgreSQL unreachable")
    for key, count in sorted(statuses.items()):
        print(f"  {key}: {count}")
    print(f"  connections kept alive: {len(connections)}, closed by the server: {closed}")
    print(
        f"  server log: {len(text.splitlines())} lines, {len(text)} bytes, "
        f"{text.count('Traceback')} tracebacks"
    )


if __name__ == "__main__":
    main()
