"""What a served read request costs the server outside the network, two checkouts in one process:
the before/after figure of the request path around the pipeline (BENCHMARKS §43, §52).

Between ``serve_load.py`` runs at a load average of 13–21 on 2 cores the plain baseline's own
CPU per request moved by a third (0.29 to 0.39 ms), and the server's by as much as the change
to measure. Here, as in ``answer_ab.py``, the other checkout's package is copied as
``recsmith_base``, and both build their app (``create_app``, lifespan and all) on the same model
and store; rounds of one ``--route`` (``ROUTES``: ``GET /v1/users/{id}/recommendations`` by
default, random known users or catalogue items, ``?k=10``, the key in a header,
``--concurrency`` requests in flight so the coalescer batches as under load) go to each app in
turn through its whole ASGI stack, the order flipped every round. Process CPU per request,
medians over the rounds, and for the routes answered on the loop the same for the event loop's
thread alone (the request path without the background writers, which store either side's lists
in either side's rounds; a ``def`` endpoint runs in the thread pool, outside it); the
response cache off, as ``serve_load.py`` serves. No socket: uvicorn's parsing and writing are
outside both. ``--same-answers N`` first asks both apps the same N requests at ``k`` 1, 10
and 100 and stops unless every JSON body matches but its ``recommendation_id`` (a change meant
to cost less, not to answer otherwise: BENCHMARKS §53) or differs only in which of exactly
tied items it lists (counted: BENCHMARKS §57); it also counts the bodies equal byte for byte
but the id (BENCHMARKS §81). ``--outside`` measures the request without the
pipeline's cost (``memoise_answers``: BENCHMARKS §81). For the routes on the loop a third figure,
``route``, is the thread CPU of the route's own app alone (``RouteSteps``: its handler, the key
check, the list's JSON; each of its steps timed while it runs, so neither the other requests that
run while it waits for the coalescer nor the pipeline call count; §124).

    cd benchmarks && ../.venv/bin/python route_ab.py /tmp/large --against /tmp/main/src \
        --route similar
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as each server worker runs
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from answer_ab import renamed_copy
from calibration import calibration_line

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
#: A list's own random id in a JSON body (``same_answers`` compares the bytes around it)
_LIST_ID = re.compile(rb'"recommendation_id":"[0-9a-f]{32}"')


#: What ``--route`` asks: method, path (``{user}``: a user id, ``{item}``: an item id), query and
#: body (``{item}`` again: the POST's request rule excludes one item, as a page's own rule would).
ROUTES = {
    "recommendations": ("GET", "/v1/users/{user}/recommendations", b"k=10", ""),
    "recommendations-rules": (
        "POST",
        "/v1/users/{user}/recommendations",
        b"k=10",
        '{"rules": [{"type": "exclude", "items": ["{item}"]}]}',
    ),
    "similar": ("GET", "/v1/items/{item}/similar", b"k=10", ""),
    "together": ("GET", "/v1/items/{item}/together", b"k=10", ""),
    "trending": ("GET", "/v1/trending", b"k=10", ""),
    "popular": ("GET", "/v1/popular", b"k=10", ""),
}
# routes whose endpoint is an ``async def``: the others run in the thread pool, outside the
# loop thread's figure, and a side that validates their answer on the loop pays more there
ON_THE_LOOP = {"recommendations", "recommendations-rules"}


async def ask(
    app: App,
    method: str,
    path: str,
    query: bytes,
    secret: bytes,
    body: bytes,
    answer: bytearray | None = None,
) -> int:
    """One request through ``app``'s ASGI stack; its status (its body into ``answer``)."""
    headers = [(b"host", b"bench"), (b"authorization", b"Bearer " + secret)]
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    status = [0]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]
        elif answer is not None:
            answer.extend(message.get("body", b""))

    await app(scope, receive, send)
    return status[0]


class RouteSteps:
    """Thread CPU spent inside one route's own ASGI app (the app the fast lane hands ``Edge``:
    ``fast_lane.Shortcut.app_for``), counted step by step: each time its coroutine runs until it
    suspends (the coalescer's future) is timed alone, so the work of the requests that run while
    it waits, and the coalescer's flush (its own task: the pipeline call, the stored read), are
    not in it. ``install`` patches one checkout's ``Shortcut`` class (each side its own)."""

    def __init__(self, path_end: str) -> None:
        self.path_end, self.spent = path_end, 0.0

    def install(self, shortcut_class: Any) -> None:
        app_for, steps = shortcut_class.app_for, self

        def timed_app_for(lane: Any, found: Any, scope: dict[str, Any]) -> App:
            app = app_for(lane, found, scope)
            if not scope["path"].endswith(steps.path_end):
                return app
            return lambda scope, receive, send: steps.timed(app(scope, receive, send))

        shortcut_class.app_for = timed_app_for

    async def timed(self, coroutine: Any) -> None:
        await _Stepped(coroutine, self)


class _Stepped:
    """An awaitable driving ``coroutine`` step by step, adding each step's thread CPU to
    ``steps.spent`` (``RouteSteps``)."""

    def __init__(self, coroutine: Any, steps: RouteSteps) -> None:
        self.coroutine, self.steps = coroutine, steps

    def __await__(self) -> Any:
        coroutine, sent, thrown = self.coroutine, None, None
        while True:
            started = time.thread_time()
            try:
                yielded = coroutine.send(sent) if thrown is None else coroutine.throw(thrown)
            except StopIteration as done:
                self.steps.spent += time.thread_time() - started
                return done.value
            except BaseException:
                self.steps.spent += time.thread_time() - started
                raise
            self.steps.spent += time.thread_time() - started
            try:
                sent, thrown = (yield yielded), None
            except BaseException as exc:  # a cancellation, passed on
                sent, thrown = None, exc


async def round_of(
    app: App,
    route: str,
    asked: list[tuple[str, str]],
    secret: bytes,
    concurrency: int,
    steps: RouteSteps | None = None,
) -> tuple[float, float, float]:
    """Process and event-loop thread CPU seconds per request of ``route`` for ``asked`` (user,
    item) pairs, ``concurrency`` in flight, and the route's own app's (``steps``; 0 without).
    The process's includes both apps' background threads (each decision log's writer stores its
    lists every ``flush_interval_s``, whichever app's round is running then); the loop thread's
    is the request path alone, the coalesced pipeline calls included."""
    method, path, query, body = ROUTES[route]
    queue = iter(asked)
    statuses: list[int] = []

    async def client() -> None:
        for user, item in queue:
            url = path.replace("{user}", user).replace("{item}", item)
            sent = body.replace("{item}", item).encode()
            statuses.append(await ask(app, method, url, query, secret, sent))

    routed = steps.spent if steps is not None else 0.0
    started, looped = time.process_time(), time.thread_time()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    spent, loop_spent = time.process_time() - started, time.thread_time() - looped
    if set(statuses) != {200}:
        sys.exit(f"not every request answered 200: {sorted(set(statuses))}")
    route_spent = steps.spent - routed if steps is not None else 0.0
    return spent / len(asked), loop_spent / len(asked), route_spent / len(asked)


async def same_answers(
    apps: dict[str, Any], route: str, asked: list[tuple[str, str]], secret: bytes
) -> None:
    """Both apps asked the same ``route`` requests, ``k`` of 1, 10 and 100 for each (user,
    item): their whole JSON bodies must match but for each list's own ``recommendation_id``
    (a fresh uuid per answer), or differ only in which of exactly tied items they list
    (``tied_only``), counted and shown. Exits naming the first request that differs otherwise."""
    method, path, _, body = ROUTES[route]
    tied: list[str] = []
    same_bytes = 0
    for user, item in asked:
        url = path.replace("{user}", user).replace("{item}", item)
        sent = body.replace("{item}", item).encode()
        for k in (1, 10, 100):
            bodies, raw = [], []
            for app in apps.values():
                answer = bytearray()
                status = await ask(app, method, url, b"k=%d" % k, secret, sent, answer)
                bodies.append((status, {**json.loads(answer), "recommendation_id": None}))
                raw.append(_LIST_ID.sub(b"ID", answer))
            same_bytes += raw[0] == raw[1]
            if bodies[0] == bodies[1]:
                continue
            if bodies[0][0] == bodies[1][0] == 200 and tied_only(bodies[0][1], bodies[1][1]):
                tied.append(f"{url}?k={k}")
                continue
            sys.exit(f"{method} {url}?k={k} answers differently: {bodies}")
    print(
        f"same answers: {len(asked)} requests x k 1, 10, 100 of {route}; "
        f"{len(tied)} of {3 * len(asked)} differ only in exactly tied items"
        + (f" (first: {tied[0]})" if tied else "")
        + f"; {same_bytes} byte for byte the same but the list's id",
        flush=True,
    )


def tied_only(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether two answers differ only in which items of exactly equal score they list and in
    their order: every field but the lists equal, the same scores at the same places, and at
    every score but the lowest listed the same items (at the lowest, a list cut by ``k``
    through a run of ties may take any of them)."""
    if {**before, "items": None} != {**after, "items": None}:
        return False
    lists = [before["items"], after["items"]]
    unnamed = [[{**i, "item_id": None} for i in items] for items in lists]
    if unnamed[0] != unnamed[1]:  # scores, reasons, sources place by place
        return False
    last = lists[0][-1]["score"] if lists[0] else None
    return all(
        {i["item_id"] for i in lists[0] if i["score"] == score}
        == {i["item_id"] for i in lists[1] if i["score"] == score}
        for score in {i["score"] for i in lists[0]} - {last}
    )


def memoise_answers(bundle: Any) -> None:
    """``bundle.answer`` remembering each call's answer by its users and ``k`` (``--outside``):
    asked again, the pipeline costs a dictionary look-up, and what a round measures is the
    request outside ``Pipeline.answer``.

    The key is the users and ``k`` only: every other option (the store's items, ``exclude``,
    ``recent``, rules, context, ...) is left out of it, so a later call that differs from the
    first only in those gets the first call's answer. ``--outside`` asks one fixed draw, one user
    a call, the same requests each pass and no events written, so for the GET routes a call's
    options should repeat (by argument; not compared); with ``--route recommendations-rules``
    a user drawn twice with two items gets the first item's rule's answer both times. It is no
    general cache, and its answers are not checked (``--same-answers`` runs before it).

    With ``--outside-concurrency`` above 1 a call's key is the group the coalescer formed: the
    same requests in the same order group the same way each pass (no I/O between them on an
    embedded store), and the calls that still miss are counted (``misses``) and printed."""
    answer, memo = bundle.answer, {}

    def remembered(user_ids: Any, k: int, **options: Any) -> Any:
        key = (tuple(user_ids), k)
        if key not in memo:
            remembered.misses += 1  # type: ignore[attr-defined]
            memo[key] = answer(user_ids, k, **options)
        return memo[key]

    remembered.misses = 0  # type: ignore[attr-defined]
    bundle.answer = remembered


async def measure(
    args: argparse.Namespace, apps: dict[str, Any], steps: dict[str, RouteSteps]
) -> dict[str, list[tuple[float, float, float]]]:
    users = (args.shop / "users.txt").read_text().split()
    secret = (args.shop / "secret").read_text().strip().encode()
    rng = np.random.default_rng(0)
    against, this = apps["against"], apps["this"]

    def draw(n: int) -> list[tuple[str, str]]:
        return list(zip(rng.choice(users, n), rng.choice(items, n), strict=True))

    async with against.router.lifespan_context(against), this.router.lifespan_context(this):
        items = this.state.runtime.bundle.items.external_ids
        for app in apps.values():  # warm-up: the ranker compiled, caches filled
            ranker = getattr(app.state.runtime.bundle, "ranker", None)
            await asyncio.to_thread(getattr(ranker, "wait_compiled", lambda: None))
            await round_of(app, args.route, draw(200), secret, args.concurrency)
        if args.same_answers:
            await same_answers(apps, args.route, draw(args.same_answers), secret)
        if args.outside:  # one fixed draw, asked one at a time: every pipeline call memoised
            fixed = draw(args.requests)
            draw, args.concurrency = (lambda n: fixed), args.outside_concurrency
            for app in apps.values():
                memoise_answers(app.state.runtime.bundle)
                await round_of(app, args.route, fixed, secret, args.concurrency)
        gc.collect()
        gc.freeze()
        print(f"warm; measuring {args.rounds} rounds", flush=True)  # a profiler may attach now
        cpu: dict[str, list[tuple[float, float, float]]] = {name: [] for name in apps}
        for r in range(args.rounds):
            asked = draw(args.requests)
            for name in list(apps)[:: 1 if r % 2 == 0 else -1]:
                cpu[name].append(
                    await round_of(
                        apps[name], args.route, asked, secret, args.concurrency, steps.get(name)
                    )
                )
        if args.outside:
            missed = {n: app.state.runtime.bundle.answer.misses for n, app in apps.items()}
            print(f"pipeline calls not memoised (first pass included): {missed}", flush=True)
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shop", type=Path, help="a serve_load.py --workdir: model, store, users")
    parser.add_argument("--against", type=Path, required=True, help="the other checkout's src")
    parser.add_argument("--route", choices=ROUTES, default="recommendations")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--requests", type=int, default=300, help="per round and side")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--same-answers",
        type=int,
        default=0,
        metavar="N",
        help="first check N requests (k 1, 10, 100 each) answer the same on both sides",
    )
    parser.add_argument(
        "--outside",
        action="store_true",
        help="measure the request outside Pipeline.answer: one fixed draw of --requests, asked "
        "one at a time (batches of one), each app's answers memoised after a first pass",
    )
    parser.add_argument(
        "--outside-concurrency",
        type=int,
        default=1,
        metavar="N",
        help="with --outside, N requests in flight (coalesced groups, memoised by group)",
    )
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    os.environ["RECSMITH_STORE__URL"] = f"sqlite:///{args.shop / 'store.sqlite'}"
    os.environ["RECSMITH_SERVING__MODEL_DIR"] = str(args.shop / "model")
    os.environ["RECSMITH_SERVING__CACHE_ENTRIES"] = "0"
    with tempfile.TemporaryDirectory() as tmp:
        renamed_copy(args.against, Path(tmp))
        sys.path.insert(0, tmp)
        from recsmith_base.config import Settings as BaseSettings  # type: ignore
        from recsmith_base.serving import fast_lane as base_lane  # type: ignore
        from recsmith_base.serving.app import create_app as base_app  # type: ignore

        from recsmith.config import Settings
        from recsmith.serving import fast_lane
        from recsmith.serving.app import create_app

        apps = {"against": base_app(BaseSettings()), "this": create_app(Settings())}
        steps: dict[str, RouteSteps] = {}
        if args.route in ON_THE_LOOP:  # the route's own steps, each side's own lane class
            path_end = ROUTES[args.route][1].rsplit("/", 1)[1]
            for name, lane in (("against", base_lane), ("this", fast_lane)):
                steps[name] = RouteSteps(path_end)
                steps[name].install(lane.Shortcut)
        cpu = asyncio.run(measure(args, apps, steps))
    measured = (("process", 0), ("event-loop thread", 1), ("route's own app", 2))
    for what, at in measured if args.route in ON_THE_LOOP else measured[:1]:
        if at == 2 and not all(c[2] for v in cpu.values() for c in v):
            print("route's own app: not timed (a request went past the fast lane)")
            continue
        spent = {n: [round_cpu[at] * 1e3 for round_cpu in v] for n, v in cpu.items()}
        before, after = (statistics.median(spent[n]) for n in ("against", "this"))
        print(
            f"{args.route}: {what} CPU ms per request, median of {args.rounds} rounds x "
            f"{args.requests} requests (concurrency {args.concurrency}): against {before:.3f}  "
            f"this {after:.3f}  difference {before - after:+.3f}  ratio {after / before:.3f}"
        )
        spread = {n: f"{min(v):.3f}-{max(v):.3f}" for n, v in spent.items()}
        print("  range over rounds:", spread)
        # each round asks both sides the same requests back to back: its own ratio is less
        # exposed to the machine's load drifting between rounds than the ratio of the medians
        paired = sorted(t / a for t, a in zip(spent["this"], spent["against"], strict=True))
        quartiles = statistics.quantiles(paired, n=4)
        print(
            f"  ratio round by round: median {statistics.median(paired):.3f}, "
            f"quartiles {quartiles[0]:.3f}-{quartiles[2]:.3f}"
        )


if __name__ == "__main__":
    main()
