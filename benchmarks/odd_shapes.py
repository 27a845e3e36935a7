"""Odd data shapes through the two commands issue #15's hidden checks run (robust29, odd29b).

Each case writes a small synthetic events file (and a users file, sometimes a catalogue), then
runs exactly ``recsmith train --data EVENTS --pipeline examples/pipeline.toml --out DIR`` and
``recsmith recommend --model-dir DIR --users USERS --k K --out RECS.csv`` as subprocesses, and
checks what a scorer that excludes seen items would need: no traceback, a CSV the ``csv`` module
parses, every asked-for user answered under the id as written, ``min(k, unseen items)`` rows each
(or stderr saying why fewer), no item the user had, no item id the data never held. Cases named
``evaluate_*`` run ``recsmith evaluate --data EVENTS --pipeline examples/pipeline.toml`` instead:
no traceback, and either a refusal (rc 2, printed) or every ndcg/recall/precision/hit rate of its
``--json`` in [0, 1].

Run: ``python benchmarks/odd_shapes.py [--only NAME ...] [--keep DIR]``; prints one line a case
and a table of failures. Never reads the shared data sets.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from calibration import calibration_line

ROOT = Path(__file__).resolve().parent.parent
PIPELINE = ROOT / "examples" / "pipeline.toml"
DAY = 86_400
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


@dataclass
class Event:
    """One row as the file will hold it (``value`` None: the column absent or the cell empty)."""

    user: str
    item: str
    ts: int
    value: float | None = None
    event_type: str | None = None
    session: str | None = None  # written under session_id; ``user`` "" writes no user_id


@dataclass
class Case:
    """A data shape: its events, the users asked for, k, and how the files are written."""

    name: str
    events: list[Event]
    asked: list[str]
    k: int = 10
    fmt: str = "csv"  # csv | jsonl | parquet | csv.gz | jsonl.gz
    columns: tuple[str, ...] = ("user_id", "item_id", "timestamp")
    time_style: str = (
        "iso"  # iso | iso_ms | iso_offset | iso_naive | epoch | epoch_ms | epoch_float
    )
    delimiter: str = ","
    eol: str = "\n"
    users_text: str | None = None  # the users file verbatim (default: one id a line)
    items_text: str | None = None  # a catalogue file (JSONL unless ``items_name`` says), if any
    items_name: str = "items.jsonl"
    data_arg: str | None = None  # --data as given, relative to the case's folder (a dir, a glob)
    command: str = "train"  # train: train + recommend | evaluate: ``evaluate --pipeline`` alone
    events_text: str | None = None  # the events file verbatim (``events`` then says what it holds)
    expect_train_error: str | None = None  # a clear refusal expected (text it must name)
    expect_recommend_error: str | None = None  # the same for ``recommend``
    quoted_users: bool = False  # the users file quotes ids, so their edge spaces are theirs
    notes: list[str] = field(default_factory=list)


def _grid(n_users: int, n_items: int, per_user: int, seed: int, prefix: str = "u") -> list[Event]:
    """Each user ``per_user`` distinct items, a day apart; items drawn with a popularity skew."""
    import random

    rng = random.Random(seed)
    items = [f"i{j}" for j in range(n_items)]
    weights = [1.0 / (j + 1) for j in range(n_items)]
    out: list[Event] = []
    for u in range(n_users):
        chosen: list[str] = []
        while len(chosen) < min(per_user, n_items):
            pick = rng.choices(items, weights)[0]
            if pick not in chosen:
                chosen.append(pick)
        for step, item in enumerate(chosen):
            out.append(Event(f"{prefix}{u}", item, T0 + (u % 7) * 3600 + step * DAY))
    return out


def _time_text(ts: int, style: str) -> str | int:
    if style == "epoch":
        return ts
    if style == "epoch_ms":
        return ts * 1000
    from datetime import UTC, datetime, timedelta, timezone

    moment = datetime.fromtimestamp(ts, UTC)
    if style == "iso_offset":
        return moment.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
    if style == "iso_naive":
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    if style == "iso_ms":
        return moment.strftime("%Y-%m-%dT%H:%M:%S.123+00:00")
    if style == "epoch_float":
        return f"{ts}.25"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_events(case: Case, path: Path) -> None:
    """The events file in the case's format and columns."""
    if case.events_text is not None:
        path.write_text(case.events_text, "utf-8")
        return
    rows = []
    for e in case.events:
        row: dict[str, object] = {"user_id": e.user, "item_id": e.item}
        row["timestamp"] = _time_text(e.ts, case.time_style)
        if "value" in case.columns:
            row["value"] = "" if e.value is None else e.value
        if "event_type" in case.columns:
            row["event_type"] = e.event_type or ""
        if "session_id" in case.columns:
            row["session_id"] = e.session or ""
        rows.append({c: row[c] for c in case.columns})
    if case.fmt == "parquet":
        import pandas as pd

        frame = pd.DataFrame(rows, columns=list(case.columns))
        if case.time_style == "iso":  # a real Parquet timestamp column, not text
            frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        frame.to_parquet(path, index=False)
        return
    if case.fmt.startswith("jsonl"):
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        _write_text(path, text, case.fmt)
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=list(case.columns), lineterminator=case.eol, delimiter=case.delimiter
    )
    writer.writeheader()
    writer.writerows(rows)
    _write_text(path, buffer.getvalue(), case.fmt)


def _write_text(path: Path, text: str, fmt: str) -> None:
    """UTF-8 text, gzip-compressed where the format ends ``.gz``."""
    if fmt.endswith(".gz"):
        import gzip

        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, "utf-8")


@dataclass
class Outcome:
    """What one case's two commands did, and every check that failed."""

    name: str
    problems: list[str]
    train_rc: int
    recommend_rc: int | None
    calibration: str = ""


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "recsmith", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
    )


def run_case(case: Case, work: Path) -> Outcome:
    """Both commands on one case, checked as the scorer would read their output."""
    work.mkdir(parents=True, exist_ok=True)
    events = work / "data" / f"events.{case.fmt}"
    events.parent.mkdir(exist_ok=True)
    write_events(case, events)
    data = str(work / case.data_arg) if case.data_arg is not None else str(events)
    users = work / "users.txt"
    users.write_text(
        case.users_text if case.users_text is not None else "".join(u + "\n" for u in case.asked),
        "utf-8",
    )
    train_args = ["train", "--data", data, "--pipeline", str(PIPELINE)]
    if case.items_text is not None:
        (work / case.items_name).write_text(case.items_text, "utf-8")
        train_args += ["--items", str(work / case.items_name)]
    if case.command == "evaluate":
        return run_evaluate(case, work, [*train_args, "--k", str(case.k)])
    model = work / "model"
    trained = _run([*train_args, "--out", str(model)], work)
    problems: list[str] = []
    calib = " ".join(trained.stderr.split())  # unwrapped: the console folds long lines
    calib = calib[calib.find("calibration (") :] if "calibration (" in calib else ""
    few = re.search(r"(\d+) validation users < (\d+)", calib)
    if few and "EVIDENCE WEAK" not in calib:
        problems.append(f"calibration: {few.group(0)} and no EVIDENCE WEAK")
    if "Traceback" in trained.stderr or "Traceback" in trained.stdout:
        problems.append("train: traceback: " + trained.stderr.strip().splitlines()[-1][:200])
    if case.expect_train_error is not None:
        case.notes.append("refused: " + " ".join(trained.stderr.split())[-160:])
        if trained.returncode == 0:
            problems.append(f"train: accepted, expected a refusal naming {case.expect_train_error}")
        elif case.expect_train_error not in trained.stderr:
            problems.append(
                f"train: refusal does not name {case.expect_train_error}: "
                f"{trained.stderr.strip()[-200:]}"
            )
        return Outcome(case.name, problems, trained.returncode, None, calib)
    if trained.returncode != 0:
        problems.append(f"train: rc {trained.returncode}: {trained.stderr.strip()[-300:]}")
        return Outcome(case.name, problems, trained.returncode, None, calib)
    recs = work / "recs.csv"
    answered = _run(
        [
            "recommend",
            "--model-dir",
            str(model),
            "--users",
            str(users),
            "--k",
            str(case.k),
            "--out",
            str(recs),
        ],
        work,
    )
    if "Traceback" in answered.stderr:
        problems.append("recommend: traceback: " + answered.stderr.strip().splitlines()[-1][:200])
    if case.expect_recommend_error is not None:
        if case.expect_recommend_error not in answered.stderr or answered.returncode == 0:
            problems.append(f"recommend: no refusal naming {case.expect_recommend_error}")
        return Outcome(case.name, problems, 0, answered.returncode, calib)
    if answered.returncode != 0:
        problems.append(f"recommend: rc {answered.returncode}: {answered.stderr.strip()[-300:]}")
        return Outcome(case.name, problems, 0, answered.returncode, calib)
    problems += check_recs(case, recs, answered.stderr)
    return Outcome(case.name, problems, 0, answered.returncode, calib)


def run_evaluate(case: Case, work: Path, args: list[str]) -> Outcome:
    """``evaluate --data EVENTS --pipeline …`` (default models): it ends 0 with every metric of
    its JSON a number in [0, 1], or refuses (rc 2) naming why; never a traceback."""
    results = work / "results.json"
    ran = _run(["evaluate", *args[1:], "--json", str(results)], work)
    problems: list[str] = []
    if "Traceback" in ran.stderr or "Traceback" in ran.stdout:
        problems.append("evaluate: traceback: " + ran.stderr.strip().splitlines()[-1][:200])
    elif ran.returncode == 2:
        case.notes.append("refused: " + " ".join(ran.stderr.split())[-160:])
    elif ran.returncode != 0:
        problems.append(f"evaluate: rc {ran.returncode}: {ran.stderr.strip()[-300:]}")
    else:
        problems += _check_metrics(json.loads(results.read_text("utf-8")))
    return Outcome(case.name, problems, ran.returncode, None, "")


def _check_metrics(payload: object, where: str = "") -> list[str]:
    """Every ``ndcg``/``recall``/``precision``/``hit_rate`` number in the results is in [0, 1]."""
    problems: list[str] = []
    if isinstance(payload, dict):
        for key, value in payload.items():
            name = f"{where}.{key}"
            metric = str(key).split("@")[0] in {"ndcg", "recall", "precision", "hit_rate"}
            if metric and isinstance(value, (int, float)) and not 0 <= value <= 1:
                problems.append(f"evaluate: {name} = {value}")
            problems += _check_metrics(value, name)
    elif isinstance(payload, list):
        for n, value in enumerate(payload):
            problems += _check_metrics(value, f"{where}[{n}]")
    return problems


def check_recs(case: Case, recs: Path, stderr_text: str) -> list[str]:
    """Each check the scorer's reading implies, against the case's own events."""
    problems: list[str] = []
    text = recs.read_text("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows or rows[0][:5] != ["user_id", "item_id", "rank", "score", "sources"]:
        return [f"recs: header {rows[:1]}"]
    seen: dict[str, set[str]] = {}
    for e in case.events:  # an anonymous visitor's events are its session's
        seen.setdefault(e.user or e.session or "", set()).add(e.item)
    items = {e.item for e in case.events}
    lists: dict[str, list[str]] = {}
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != 5:
            problems.append(f"recs line {number}: {len(row)} fields")
            continue
        lists.setdefault(row[0], []).append(row[1])
        if row[1] not in items:
            problems.append(f"recs: item {row[1]!r} not in the data")
        if row[1] in seen.get(row[0], ()):
            problems.append(f"recs: user {row[0]!r} got seen item {row[1]!r}")
    # the users file drops the spaces around an id (README), so " u0 " asks for "u0"
    asked = list(dict.fromkeys(u if case.quoted_users else u.strip() for u in case.asked))
    missing = [u for u in asked if u not in lists]
    extra = [u for u in lists if u not in asked]
    if extra:
        problems.append(f"recs: users not asked for {extra[:3]}")
    explained = "fewer than" in stderr_text.replace("\n", " ")
    for user in asked:
        unseen = len(items - seen.get(user, set()))
        want = min(case.k, unseen)
        got = len(lists.get(user, []))
        if user in missing and want > 0:
            problems.append(f"recs: user {user!r} missing (wanted {want})")
        elif got < want:
            problems.append(
                f"recs: user {user!r} got {got} < {want}"
                + ("" if explained else " and stderr says nothing")
            )
        if len(set(lists.get(user, []))) != got:
            problems.append(f"recs: user {user!r} has a repeated item")
    return problems


# --- the battery ---------------------------------------------------------------------------


def _cases() -> list[Case]:
    base = _grid(60, 40, 6, seed=1)
    asked = ["u0", "u1", "u5", "u59"]
    cases = [
        Case("tiny_10x5", _grid(10, 5, 3, seed=2), ["u0", "u3", "u9"]),
        Case("baseline_60x40", base, asked),
        Case(
            "one_event_per_user",
            [Event(f"u{u}", f"i{u % 13}", T0 + u * 60) for u in range(80)],
            ["u0", "u1", "u79"],
        ),
        Case(
            "same_timestamp",
            [Event(e.user, e.item, T0) for e in base],
            asked,
        ),
        Case(
            "empty_optional_columns",
            base,
            asked,
            columns=("user_id", "item_id", "timestamp", "event_type", "value", "session_id"),
        ),
        Case(
            "ratings_1_to_5",
            [
                Event(e.user, e.item, e.ts, float(1 + (hash(e.user + e.item) % 5)), "rating")
                for e in base
            ],
            asked,
            columns=("user_id", "item_id", "timestamp", "event_type", "value"),
        ),
        Case(
            "ratings_with_0_and_negative",
            [Event(e.user, e.item, e.ts, float(n % 7 - 2), "rating") for n, e in enumerate(base)],
            asked,
            columns=("user_id", "item_id", "timestamp", "event_type", "value"),
        ),
        Case(
            "value_only_negative_and_zero",
            [Event(e.user, e.item, e.ts, float(-(n % 3))) for n, e in enumerate(base)],
            asked,
            columns=("user_id", "item_id", "timestamp", "value"),
        ),
        Case("duplicate_events", base + base + base[:100], asked),
        Case(
            "unknown_users_asked",
            base,
            ["u0", "nobody", "U0", "u0 ", "u60", "u1"],
        ),
        Case(
            "items_only_in_catalogue",
            base,
            asked,
            items_text="".join(
                json.dumps({"item_id": f"i{j}", "categories": ["c"]}) + "\n" for j in range(80)
            ),
        ),
        Case(
            "more_items_than_events",
            [Event(f"u{u}", f"i{(u * 7) % 500}", T0 + u * 60) for u in range(30)]
            + [Event(f"u{u}", f"i{(u * 11 + 3) % 500}", T0 + u * 60 + DAY) for u in range(30)],
            ["u0", "u29"],
        ),
        Case(
            "leading_zeros",
            [
                Event(u, i, T0 + n * 3600)
                for n, (u, i) in enumerate(
                    [(u, i) for u in ("007", "7", "07", "0") for i in ("001", "1", "01", "10")][:-2]
                    + [(e.user, e.item) for e in base]
                )
            ],
            ["007", "7", "07", "0", "u0"],
        ),
    ]
    weird_users = ["a,b", 'say "hi"', " spaced ", "ünï©ødé", "用户", "x" * 200, "tab\tin", "1e3"]
    weird_items = ["it,em", 'q"uote', " lead", "trail ", "é", "商品", "y" * 250, "NaN", "null"]
    weird = [
        Event(u, weird_items[(n + j) % len(weird_items)], T0 + n * 600 + j * DAY)
        for n, u in enumerate(weird_users)
        for j in range(3)
    ] + base
    cases += [
        Case(
            "weird_ids_csv",
            weird,
            [u for u in weird_users if not u.startswith(" ") and "\t" not in u and '"' not in u]
            + ["u0"],
        ),
        Case(
            "weird_ids_quoted_users_file",
            weird,
            weird_users,
            users_text="".join(
                '"' + u.replace('"', '""') + '"\n'
                if ('"' in u or "," in u or u != u.strip())
                else u + "\n"
                for u in weird_users
            ),
            quoted_users=True,
            notes=["users file: CSV-quoted lines for ids with commas, quotes, edge spaces"],
        ),
        Case("weird_ids_jsonl", weird, ["a,b", "用户", "x" * 200, "u0"], fmt="jsonl"),
        Case(
            "numeric_looking_ids",
            [
                Event(u, i, T0 + n * 3600)
                for n, (u, i) in enumerate(
                    [
                        ("1.0", "2.50"),
                        ("1", "2.5"),
                        ("1e2", "0x1F"),
                        ("-0", "inf"),
                        ("True", "None"),
                        ("NA", "1_000"),
                        ("+5", "5"),
                        ("1.0", "1e5"),
                    ]
                )
            ]
            + base,
            ["1.0", "1", "1e2", "-0", "True", "NA", "+5", "u0"],
        ),
        Case(
            "users_file_blank_lines_and_header",
            base,
            asked,
            users_text="user_id\n\nu0\n  \nu1\n\nu5\nu59\n\n",
        ),
        Case(
            "users_file_crlf_bom",
            base,
            asked,
            users_text="\ufeffu0\r\nu1\r\n\r\nu5\r\nu59\r\n",
        ),
        Case("k_larger_than_catalogue", _grid(10, 5, 2, seed=3), ["u0", "u1", "zz"], k=50),
        Case("jsonl_events", base, asked, fmt="jsonl"),
        Case("epoch_seconds", base, asked, time_style="epoch"),
        Case("epoch_milliseconds", base, asked, time_style="epoch_ms"),
        Case("iso_with_offset", base, asked, time_style="iso_offset"),
        Case("jsonl_epoch_numbers", base, asked, fmt="jsonl", time_style="epoch"),
        Case(
            "jsonl_numeric_ids",
            [Event(e.user[1:], e.item[1:], e.ts) for e in base],
            ["0", "1", "59"],
            fmt="jsonl",
            notes=["ids written as JSON strings of digits"],
        ),
        Case(
            "single_item",
            [Event(f"u{u}", "only", T0 + u * 60) for u in range(30)],
            ["u0", "zz"],
        ),
        Case(
            "single_user",
            [Event("solo", f"i{j}", T0 + j * 60) for j in range(30)],
            ["solo", "zz"],
        ),
        Case(
            "every_user_had_every_item",
            [Event(f"u{u}", f"i{j}", T0 + u * 60 + j) for u in range(20) for j in range(4)],
            ["u0", "zz"],
        ),
        Case(
            "iso_without_time_zone",
            base,
            asked,
            time_style="iso_naive",
            expect_train_error="timestamp",
            notes=["README: ISO text without a zone is refused unless events.naive_timestamps"],
        ),
        Case("epoch_seconds_fractional", base, asked, time_style="epoch_float"),
        Case("iso_fractional_seconds", base, asked, time_style="iso_ms"),
        Case(
            "movielens_ratings_csv_header",
            base,
            asked,
            events_text="userId,movieId,rating,timestamp\n"
            + "".join(f"{e.user},{e.item},4.0,{e.ts}\n" for e in base),
            expect_train_error="columns",
            notes=["ml-latest's ratings.csv as --data: README says import --format movielens"],
        ),
        Case("semicolon_delimited", base, asked, delimiter=";"),
        Case("tab_delimited", base, asked, delimiter="\t"),
        Case("crlf_line_ends", base, asked, eol="\r\n"),
        Case("users_file_empty", base, [], users_text="", expect_recommend_error="--users"),
        Case(
            "users_file_header_only",
            base,
            [],
            users_text="user_id\n",
            expect_recommend_error="--users",
        ),
        Case("k_is_1", base, asked, k=1),
        Case(
            "jsonl_json_number_ids",
            [
                Event(str(u), str(100 + (u * 3 + j) % 17), T0 + u * 60 + j * DAY)
                for u in range(40)
                for j in range(4)
            ],
            ["0", "1", "39"],
            fmt="jsonl",
            events_text="".join(
                f'{{"user_id": {u}, "item_id": {100 + (u * 3 + j) % 17}, '
                f'"timestamp": {T0 + u * 60 + j * DAY}}}\n'
                for u in range(40)
                for j in range(4)
            ),
            notes=["ids as JSON numbers: read as their decimal text"],
        ),
    ]
    return cases + _more_cases(base, asked, cases)


#: robust29's shapes that ``evaluate --pipeline`` also runs on (odd29b)
EVALUATED = (
    "tiny_10x5",
    "one_event_per_user",
    "same_timestamp",
    "ratings_with_0_and_negative",
    "value_only_negative_and_zero",
    "single_item",
    "single_user",
    "every_user_had_every_item",
    "weird_ids_csv",
    "k_larger_than_catalogue",
)


def _more_cases(base: list[Event], asked: list[str], earlier: list[Case]) -> list[Case]:
    """odd29b's shapes: compressed and columnar files, anonymous sessions, odd catalogues, a
    directory or glob as --data, skewed data, isolated users, and ``evaluate`` on odd shapes."""
    from dataclasses import replace

    anonymous = [
        Event("", f"i{(s * 5 + j) % 40}", T0 + s * 600 + j * 60, session=f"s{s}")
        for s in range(30)
        for j in range(3)
    ]
    heavy = [Event("whale", f"i{n % 40}", T0 + n * 60) for n in range(450)]
    light = [Event(f"u{u}", f"i{(u * 3) % 40}", T0 + u * 600) for u in range(1, 51)]
    hot = [Event(f"u{u}", "hot", T0 + u * 60) for u in range(60)] + base
    isolated = base + [
        Event(f"iso{n}", f"own{n}_{j}", T0 + n * 600 + j * DAY) for n in range(5) for j in range(3)
    ]
    odd_items = [
        {"item_id": "i0"},
        {"item_id": "i1", "categories": None, "tags": None, "properties": None},
        {"item_id": "i2", "properties": {"brand": {"name": "acme"}, "sizes": [1, 2]}},
        {"item_id": "i3", "categories": "shoes", "properties": {"price": "12.50"}},
        {"item_id": "i4", "properties": {"price": "abc", "stock": None, "rating": "4"}},
        {"item_id": "i5", "categories": [7, None], "available": "yes"},
        {"item_id": 6, "properties": {"price": 3}},
        {"item_id": "i7", "colour": "red"},
        {"item_id": "i7", "categories": ["dup"]},
        {"item_id": None},
        {"properties": {"price": 1}},
        {"item_id": "only_here", "categories": ["c"]},
    ]
    odd_items += [{"item_id": f"i{j}", "categories": [f"c{j % 3}"]} for j in range(8, 40)]
    cases = [
        Case("parquet_events", base, asked, fmt="parquet"),
        Case(
            "parquet_epoch_and_values",
            [Event(e.user, e.item, e.ts, float(1 + n % 5)) for n, e in enumerate(base)],
            asked,
            fmt="parquet",
            time_style="epoch",
            columns=("user_id", "item_id", "timestamp", "value"),
        ),
        Case("csv_gz_events", base, asked, fmt="csv.gz"),
        Case("jsonl_gz_events", base, asked, fmt="jsonl.gz"),
        Case(
            "anonymous_sessions_and_users",
            base + anonymous,
            asked,
            columns=("user_id", "item_id", "timestamp", "session_id"),
        ),
        Case(
            "anonymous_sessions_only",
            anonymous,
            ["s0", "s1", "s29"],
            columns=("user_id", "item_id", "timestamp", "session_id"),
            notes=["no user_id anywhere: asked for session ids"],
        ),
        Case(
            "items_odd_properties_jsonl",
            base,
            asked,
            items_text="".join(json.dumps(r) + "\n" for r in odd_items),
        ),
        Case(
            "items_odd_properties_csv",
            base,
            asked,
            items_text="item_id,categories,price,brand\n"
            + 'i0,,,\ni1,shoes,12.50,acme\ni2,"a,b",abc,\ni3,," 7 ",\n,x,1,y\n'
            + "".join(f"i{j},c{j % 3},{j}.0,b{j % 4}\n" for j in range(4, 40)),
            items_name="items.csv",
        ),
        Case("data_is_a_directory", base, asked, data_arg="data", expect_train_error="--data"),
        Case(
            "data_is_a_glob", base, asked, data_arg="data/events*.csv", expect_train_error="--data"
        ),
        Case("one_user_90pct_of_events", heavy + light, ["whale", "u1", "u50"]),
        Case("one_item_in_every_history", hot, asked),
        Case("users_only_on_own_items", isolated, ["iso0", "iso4", "u0"]),
    ]
    cases += [
        replace(case, name="evaluate_" + case.name, command="evaluate", notes=[])
        for case in [*earlier, *cases]
        if case.name in EVALUATED
        or case.name
        in {
            "parquet_events",
            "csv_gz_events",
            "anonymous_sessions_and_users",
            "items_odd_properties_jsonl",
            "one_user_90pct_of_events",
            "users_only_on_own_items",
        }
    ]
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--keep", type=Path, default=None)
    args = parser.parse_args()
    print(calibration_line())
    cases = [c for c in _cases() if args.only is None or c.name in args.only]
    root = args.keep or Path(tempfile.mkdtemp(prefix="odd-shapes-"))
    failed = 0
    for case in cases:
        outcome = run_case(case, root / case.name)
        status = "ok" if not outcome.problems else "FAIL"
        failed += bool(outcome.problems)
        print(
            f"{case.name:32s} {status:4s} train_rc={outcome.train_rc} "
            f"recommend_rc={outcome.recommend_rc} | {outcome.calibration[:110]}"
        )
        for problem in outcome.problems:
            print(f"    - {problem}")
        for note in case.notes:
            if note.startswith("refused"):
                print(f"    ({note})")
    print(f"{len(cases) - failed} of {len(cases)} cases clean; files under {root}")


if __name__ == "__main__":
    main()
