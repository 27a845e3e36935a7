"""``recsmith rules validate | set | show`` on a real store and a real pipeline release: checked
against the release and the store's catalogue, versioned, audited as the CLI user, and the JSON
``show`` prints is a file ``set`` takes back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.config import EventSettings
from recsmith.events.schema import Item
from recsmith.events.validate import validate_events
from recsmith.pipeline.artifact import save_pipeline, train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.store.open import open_store

runner = CliRunner()


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ranker-less ItemKNN pipeline over 20 items (i0..i19), each user viewing five."""
    records = [
        {
            "event_id": f"e{u}-{j}",
            "user_id": f"u{u}",
            "item_id": f"i{(u + 3 * j) % 20}",
            "event_type": "view",
            "timestamp": 1_700_000_000 + 60 * (u * 5 + j),
        }
        for u in range(30)
        for j in range(5)
    ]
    frame, _ = validate_events(records, EventSettings())
    config = PipelineConfig.model_validate(
        {
            "retrieval": {"sources": [{"name": "knn", "model": "itemknn"}]},
            "ranking": {"enabled": False},
        }
    )
    items = [Item(item_id=f"i{n}", categories=[f"c{n % 2}"]) for n in range(20)]
    pipeline = train_pipeline(config, frame, dict(EventSettings().weights), items=items)
    out = tmp_path_factory.mktemp("release") / "pipe"
    save_pipeline(pipeline, out)
    return out


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_validate_set_show_and_back_to_the_pipeline_rules(release: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    common = ["--store", url]
    good = tmp_path / "rules.toml"
    good.write_text(
        '[[rerank.rules]]\ntype = "pin"\nitem = "i7"\nposition = 1\n'
        "start = 2026-12-05T00:00:00+01:00\n\n"
        '[[placements.cart.rerank.rules]]\ntype = "filter"\nproperty = "category"\n'
        'in = ["c1"]\n'
    )
    code, _, err = invoke("rules", "validate", str(good), "--model", str(release), *common)
    assert code == 0 and "valid" in err, err
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[rerank.rules]]\ntype = "exclude"\nitems = []\n\n'
        '[[rerank.rules]]\ntype = "pin"\nitem = "i99"\nposition = 2\n'
    )
    code, _, err = invoke("rules", "set", str(bad), "--model", str(release), *common)
    assert code == 2 and "rerank.rules[1].item" in err and "i99" in err, err
    # the store's catalogue counts: the release has c0 and c1, the store marks every c1 item gone
    store = open_store(url)
    store.upsert_items(
        [Item(item_id=f"i{n}", categories=["c1"], available=False) for n in range(1, 20, 2)]
    )
    store.close()
    code, _, err = invoke("rules", "validate", str(good), "--model", str(release), *common)
    assert code == 2 and "placements.cart.rerank.rules[0]" in err and "no available" in err, err
    store = open_store(url)
    store.upsert_items([Item(item_id="i1", categories=["c1"])])  # one c1 item back in stock
    store.close()
    code, out, _ = invoke("rules", "set", str(good), "--model", str(release), *common)
    assert code == 0 and json.loads(out)["version"] == 1
    code, out, _ = invoke("rules", "show", *common)
    shown = tmp_path / "shown.json"
    shown.write_text(out)
    code, out, _ = invoke("rules", "set", str(shown), "--model", str(release), *common)
    assert code == 0
    again = json.loads(out)
    assert again["version"] == 2
    assert again["rules"]["rerank"]["rules"][0]["start"] == "2026-12-05T00:00:00+01:00"
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    code, out, err = invoke("rules", "set", str(empty), "--model", str(release), *common)
    assert code == 0 and json.loads(out)["rules"] == {} and "pipeline's rules" in err
    code, out, _ = invoke("rules", "show", "--history", "--json", *common)
    assert [(v["version"], v["pipeline_rules"]) for v in json.loads(out)] == [
        (3, True),
        (2, False),
        (1, False),
    ]
    code, out, _ = invoke("rules", "show", "--version", "1", "--json", *common)
    first = json.loads(out)
    assert first["version"] == 1 and first["rules"] == again["rules"]
    assert first["set_by"].startswith("cli:")
    code, _, err = invoke("rules", "show", "--version", "9", *common)
    assert code == 2 and "no rules version 9" in err
    store = open_store(url)
    audit = store.scan_audit(action="rules.set")
    store.close()
    assert [(a.key_name or "").startswith("cli:") for a in audit] == [True] * 3


def test_without_a_release_only_the_syntax_is_checked_and_said_so(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rerank.rules]]\ntype = "pin"\nitem = "anything"\nposition = 1\n')
    code, _, err = invoke("rules", "validate", str(rules), "--store", url)
    assert code == 0 and "syntax was checked, not its items" in err
    rules.write_text('[[rerank.rules]]\ntype = "pin"\nitem = "x"\nposition = 0\n')
    code, _, err = invoke("rules", "validate", str(rules), "--store", url)
    assert code == 2 and "rerank.rules[0].position" in err


def test_a_rule_matching_no_item_is_a_warning_naming_it_and_is_still_set(
    release: Path, tmp_path: Path
) -> None:
    common = ["--store", f"sqlite:///{tmp_path / 'store.sqlite'}", "--model", str(release)]
    typo = tmp_path / "typo.toml"
    typo.write_text(
        '[[rerank.rules]]\ntype = "boost"\nproperty = "category"\nequals = "C1"\nfactor = 2.0\n\n'
        '[[placements.cart.rerank.rules]]\ntype = "bury"\nproperty = "category"\n'
        'in = ["c0", "c2"]\nfactor = 0.5\n'
    )
    for command in ("validate", "set"):
        code, _, err = invoke("rules", command, str(typo), *common)
        assert code == 0, err
        assert "warning: rerank.rules[0].equals: this boost on 'category' matches no item" in err
        assert (
            "warning: placements.cart.rerank.rules[0].in[1]: no item of the catalogue has " in err
        )
        assert err.count("warning:") == 2
    code, _, err = invoke("--quiet", "rules", "validate", str(typo), *common)
    assert code == 0 and err.count("warning:") == 2  # a likely typo is said even when quiet
