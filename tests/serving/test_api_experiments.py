"""Experiments on a real server: units in different variants get lists from different bundles,
the same unit always gets the same variant (across two worker processes too), a stopped
experiment hands every unit back to the deployed release, and a placement limits the split."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from live_server import live_server
from typer.testing import CliRunner

from recsmith.bundle import ModelBundle
from recsmith.cli.app import app as cli
from recsmith.config import EventSettings, Settings
from recsmith.experiments.assignment import assign
from recsmith.experiments.registry import ExperimentRegistry
from recsmith.experiments.report import build_report, experiment_report
from recsmith.experiments.spec import Experiment, Variant
from recsmith.features.interactions import Interactions
from recsmith.governance.releases import ModelRegistry
from recsmith.models.registry import create
from recsmith.serving import create_api_key, create_app
from recsmith.store.sqlite import SQLiteStore
from recsmith.testing.recommender import checkerboard_events

#: Checkerboard users: enough for the small live A/B to conclude, even looked at as it goes.
N_USERS = 400
USERS = [f"u{i:03d}" for i in range(40)]


def wait_until(condition: Callable[[], bool], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {within_s} s"
        time.sleep(0.05)


@pytest.fixture
def registry(tmp_path: Path) -> tuple[ExperimentRegistry, dict[str, str]]:
    """A registry with "popular" deployed and "itemknn" published: two bundles whose lists for
    the same user differ."""
    data = Interactions.from_events(checkerboard_events(N_USERS), EventSettings().weights)
    models = ModelRegistry(tmp_path / "registry")
    versions = {}
    for name in ("popular", "itemknn"):
        ModelBundle.train(data, create(name)).save(tmp_path / name)
        versions[name] = models.publish(tmp_path / name)
    models.deploy(versions["popular"])
    return ExperimentRegistry(models.root), versions


def _settings(tmp_path: Path, root: Path, **serving: object) -> tuple[Settings, dict[str, str]]:
    store = SQLiteStore(tmp_path / "s.sqlite")
    _, secret = create_api_key(store, "t", ["read", "ingest"])
    store.close()
    settings = Settings(
        store={"url": f"sqlite:///{tmp_path / 's.sqlite'}"},
        serving={"registry": root, "reload_interval_s": 5.0, **serving},
    )
    return settings, {"Authorization": f"Bearer {secret}"}


def _experiment(name: str, versions: dict[str, str], placement: str | None = None) -> Experiment:
    variants = (
        Variant("control", versions["popular"], 50),
        Variant("treatment", versions["itemknn"], 50),
    )
    return Experiment(name, variants, salt=f"{name}:salt", placement=placement)


@pytest.fixture
def served(
    tmp_path: Path, registry: tuple[ExperimentRegistry, dict[str, str]]
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings, headers = _settings(tmp_path, registry[0].models.root)
    with TestClient(create_app(settings)) as client:
        yield client, headers


def _ask(client: TestClient, headers: dict[str, str], user: str, query: str = "") -> dict:
    r = client.get(f"/v1/users/{user}/recommendations?k=5{query}", headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_units_in_different_variants_get_different_bundles_until_stopped(
    served: tuple[TestClient, dict[str, str]],
    registry: tuple[ExperimentRegistry, dict[str, str]],
) -> None:
    client, headers = served
    reg, versions = registry
    assert _ask(client, headers, "u001")["experiment"] is None  # nothing running yet
    exp = reg.start(_experiment("ab1", versions))
    started = time.monotonic()
    wait_until(lambda: _ask(client, headers, "u001")["experiment"] == "ab1", 3, "picked up")
    assert time.monotonic() - started < 2.0  # "within a second", plus a poll's slack

    by_variant: dict[str, list[list[str]]] = {"control": [], "treatment": []}
    for user in USERS:
        first = _ask(client, headers, user)
        again = _ask(client, headers, user)
        assert first["variant"] == again["variant"] == assign(user, exp)  # sticky
        expected = versions["popular" if first["variant"] == "control" else "itemknn"]
        assert first["model_version"] == expected
        by_variant[first["variant"]].append([i["item_id"] for i in first["items"]])
    assert by_variant["control"] and by_variant["treatment"]
    # popular gives (nearly) every user the same head; itemknn personalises
    control_lists = {tuple(x) for x in by_variant["control"]}
    treatment_lists = {tuple(x) for x in by_variant["treatment"]}
    assert control_lists != treatment_lists

    reg.stop("ab1")
    wait_until(lambda: _ask(client, headers, "u001")["experiment"] is None, 3, "stop picked up")
    answers = [_ask(client, headers, u) for u in USERS]
    assert {a["model_version"] for a in answers} == {versions["popular"]}
    assert {a["variant"] for a in answers} == {None}


def test_an_experiment_with_a_placement_splits_only_that_placement(
    served: tuple[TestClient, dict[str, str]],
    registry: tuple[ExperimentRegistry, dict[str, str]],
) -> None:
    client, headers = served
    reg, versions = registry
    reg.start(_experiment("home1", versions, placement="home"))
    wait_until(
        lambda: _ask(client, headers, "u001", "&placement=home")["experiment"] == "home1",
        3,
        "picked up",
    )
    assert _ask(client, headers, "u001")["experiment"] is None
    assert _ask(client, headers, "u001", "&placement=cart")["experiment"] is None


@pytest.mark.slow
def test_two_workers_give_a_unit_the_same_variant(
    tmp_path: Path, registry: tuple[ExperimentRegistry, dict[str, str]]
) -> None:
    reg, versions = registry
    settings, headers = _settings(tmp_path, reg.models.root, workers=2)
    exp = reg.start(_experiment("ab2", versions))
    with live_server(settings, tmp_path) as server:
        url = f"{server.base}/v1/users/{{}}/recommendations?k=3"
        for user in USERS[:12]:
            # a new connection per request: SO_REUSEPORT spreads them over both workers
            got = {
                (r.json()["variant"], r.json()["model_version"])
                for r in (
                    httpx.get(url.format(user), headers=headers, timeout=10) for _ in range(8)
                )
            }
            variant = assign(user, exp)
            want = versions["popular" if variant == "control" else "itemknn"]
            assert got == {(variant, want)}, user


def test_a_deploy_during_an_experiment_does_not_change_what_its_variants_serve(
    served: tuple[TestClient, dict[str, str]],
    registry: tuple[ExperimentRegistry, dict[str, str]],
) -> None:
    client, headers = served
    reg, versions = registry
    exp = reg.start(_experiment("pinned", versions, placement="home"))
    home = "&placement=home"
    wait_until(lambda: _ask(client, headers, "u001", home)["experiment"] == "pinned", 3, "start")
    control = next(u for u in USERS if assign(u, exp) == "control")
    assert _ask(client, headers, control, home)["model_version"] == versions["popular"]
    reg.models.deploy(versions["itemknn"])
    reg.models.request_reload()
    wait_until(
        lambda: _ask(client, headers, control)["model_version"] == versions["itemknn"],
        5,
        "the deploy served outside the experiment",
    )
    # the control variant named the popular release: it keeps serving it
    assert _ask(client, headers, control, home)["model_version"] == versions["popular"]


def _outcomes(
    answers: list[dict], rng: np.random.Generator
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Checkerboard users click items of their own parity with p = 0.3, others with 0.03: the
    per-unit frame drawn from that truth, and each variant's expected CTR (the truth itself)."""
    rows, expected = [], {}
    for a in answers:
        group = int(a["user_id"][1:]) % 2
        p = np.array([0.3 if int(i["item_id"][1:]) % 2 == group else 0.03 for i in a["items"]])
        clicks = int((rng.random(len(p)) < p).sum())
        rows.append((a["user_id"], a["variant"], len(p), clicks, p.sum()))
    frame = pd.DataFrame(rows, columns=["unit", "variant", "impressions", "clicks", "p"])
    for name, part in frame.groupby("variant"):
        expected[str(name)] = float(part.p.sum() / part.impressions.sum())
    return frame.assign(purchases=0, revenue=0.0).drop(columns="p"), expected


def test_a_small_live_ab_detects_the_better_bundle_and_covers_the_true_lift(
    served: tuple[TestClient, dict[str, str]],
    registry: tuple[ExperimentRegistry, dict[str, str]],
) -> None:
    client, headers = served
    reg, versions = registry
    exp = reg.start(_experiment("live-ab", versions))
    wait_until(lambda: _ask(client, headers, "u001")["experiment"] == "live-ab", 3, "start")
    users = sorted(set(checkerboard_events(N_USERS)["user_id"]))
    answers = [_ask(client, headers, u) for u in users]
    frame, truth = _outcomes(answers, np.random.default_rng(5))
    report = build_report(exp, frame)
    ctr = next(c for c in report.comparisons if c.metric == "ctr")
    assert report.verdicts[0].startswith("promote treatment"), report.verdicts
    assert ctr.ci[0] <= truth["treatment"] / truth["control"] - 1 <= ctr.ci[1]
    assert report.srm_p > 0.001


def _now() -> str:
    """Events come after the list they answer (an earlier one is not attributed to it)."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def test_the_report_reads_back_exactly_what_was_served_and_sent(
    tmp_path: Path,
    served: tuple[TestClient, dict[str, str]],
    registry: tuple[ExperimentRegistry, dict[str, str]],
) -> None:
    """Through the decision log and attribution: every unit one list of 5, one click on its
    first item, and a purchase of 10.0 for treatment units; the report's counts are those."""
    client, headers = served
    reg, versions = registry
    reg.start(_experiment("e2e", versions, placement="home"))
    reg.start(_experiment("other", versions, placement="cart"))  # its lists must not count
    home, cart = "&placement=home", "&placement=cart"
    for query, name in ((home, "e2e"), (cart, "other")):
        wait_until(
            lambda q=query, n=name: _ask(client, headers, "u001", q)["experiment"] == n, 3, name
        )
    users = USERS[:20]
    events, sent = [], {"control": [0, 0, 0.0], "treatment": [0, 0, 0.0]}
    for user in users:
        _ask(client, headers, user, cart)
        answer = _ask(client, headers, user, home)
        rid, first = answer["recommendation_id"], answer["items"][0]["item_id"]
        base = {"user_id": user, "item_id": first, "recommendation_id": rid, "position": 1}
        events.append({**base, "event_type": "click", "timestamp": _now()})
        tally = sent[answer["variant"]]
        tally[0] += 1
        if answer["variant"] == "treatment":
            events.append(
                {
                    **base,
                    "event_type": "purchase",
                    "value": 10.0,
                    "timestamp": _now(),
                }
            )
            tally[1] += 1
            tally[2] += 10.0
    # u001 answered the pick-up probe too: its extra list counts as impressions, not units
    r = client.post("/v1/events", json=events, headers=headers)
    assert r.status_code == 200 and not r.json()["rejected"], r.text

    store = SQLiteStore(tmp_path / "s.sqlite")
    try:

        def units_seen() -> int:
            frame = experiment_report(store, reg.get("e2e")).variants
            return sum(int(v["units"]) for v in frame.values())

        wait_until(lambda: units_seen() == len(users), 5, "every unit's decisions stored")
        report = experiment_report(store, reg.get("e2e"))
    finally:
        store.close()
    for variant, (units, buyers, revenue) in sent.items():
        row = report.variants[variant]
        assert row["units"] == units
        assert row["clicks"] == units  # one click per unit
        assert row["conversion"].value == pytest.approx(buyers / units)
        assert row["revenue_per_unit"].value == pytest.approx(revenue / units)
    # the command reads the same: its --json line's counts
    env = {"RECSMITH_STORE__URL": f"sqlite:///{tmp_path / 's.sqlite'}"}
    args = ["experiment", "report", "e2e", "--registry", str(reg.models.root), "--json"]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.stderr
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert {v: line["variants"][v]["units"] for v in sent} == {v: t[0] for v, t in sent.items()}
    assert {c["metric"] for c in line["comparisons"]} == {"ctr", "conversion", "revenue_per_unit"}


TOO_MANY = ",".join(f"i{n}" for n in range(501))


def test_a_failing_variant_is_counted_and_fails_its_error_guardrail(
    tmp_path: Path,
    served: tuple[TestClient, dict[str, str]],
    registry: tuple[ExperimentRegistry, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The treatment's bundle raises while answering: its requests are 500s, each counted as a
    request and an error of treatment; control's lists are answered, counted and timed; a 4xx
    from bad input counts for neither. The report reads the counts and fails treatment."""
    client, headers = served
    reg, versions = registry
    exp = reg.start(_experiment("broken", versions))
    wait_until(lambda: _ask(client, headers, "u001")["experiment"] == "broken", 3, "start")
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    (live,) = runtime.experiments.running
    treatment = live.bundles["treatment"]
    assert treatment is not None  # itemknn: a bundle of its own, not the deployed release

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the treatment model is broken")

    monkeypatch.setattr(treatment, "answer", broken)
    runtime.decisions.flush()  # the pick-up probes' counts out of the way: a clean count below
    store = SQLiteStore(tmp_path / "s.sqlite")
    try:
        both = ["control", "treatment"]
        before = store.request_counts("broken").set_index("variant").reindex(both, fill_value=0)
        seen: dict[str, list[int]] = {"control": [0, 0], "treatment": [0, 0]}
        timed: dict[str, float] = {}  # recommendation_id -> the client's wall time (ms)
        for user in [f"x{i:03d}" for i in range(60)]:
            started = time.perf_counter()
            r = client.get(f"/v1/users/{user}/recommendations?k=5", headers=headers)
            wall_ms = (time.perf_counter() - started) * 1000
            variant = assign(user, exp)
            seen[variant][0] += 1
            if r.status_code == 200:
                assert variant == "control"
                timed[r.json()["recommendation_id"]] = wall_ms
            else:
                assert r.status_code == 500 and variant == "treatment", r.text
                seen[variant][1] += 1
            # bad input (over 500 ids to exclude) is the client's error: counted for neither
            bad = client.get(
                f"/v1/users/{user}/recommendations?exclude={TOO_MANY}", headers=headers
            )
            assert bad.status_code == 422, bad.text
        assert seen["control"][0] > 10 and seen["treatment"][1] > 10
        runtime.decisions.flush()
        after = store.request_counts("broken").set_index("variant")
        for variant, (requests, errors) in seen.items():
            got_requests = after.loc[variant, "requests"] - before.loc[variant, "requests"]
            got_errors = after.loc[variant, "errors"] - before.loc[variant, "errors"]
            assert (got_requests, got_errors) == (requests, errors), variant
        # control's decisions carry their latency: positive, within what the client waited
        for rid, wall_ms in timed.items():
            d = store.get_decision(rid)
            assert d is not None and d.latency_ms is not None and 0 < d.latency_ms <= wall_ms
        report = experiment_report(store, reg.get("broken"))
    finally:
        store.close()
    guard = next(g for g in report.guardrails if g.name == "error_rate")
    assert guard.status == "fail", guard.detail
    latency = next(g for g in report.guardrails if g.name == "p99_latency")
    assert latency.status == "pending"  # treatment made no decision to time
