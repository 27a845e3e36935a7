"""Format ``items``: catalog files (CSV, JSONL, Parquet) as Items; extra columns are properties."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsmith.config import EventSettings
from recsmith.errors import ValidationError
from recsmith.events.importers import import_source, read_source
from recsmith.store.sqlite import SQLiteStore


def test_items_csv(tmp_path: Path, store: SQLiteStore, settings: EventSettings) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text(
        "item_id,categories,tags,text,available,created_at,price,brand,isbn\n"
        "0739079891,books|music,piano| jazz ,Piano book,true,2024-01-01T00:00:00Z,9.99,Acme,0739\n"
        "42,,,,no,,12,,\n"
        "43,toys,,,maybe,,1,,\n"
        ",toys,,,,,,,\n"
    )
    result = import_source(store, read_source("items", path), settings)
    assert result.items.accepted == 2
    assert result.as_counts()["items_rejected"] == 2
    assert [r.index for r in result.items.rejected] == [2, 3]

    book = store.get_item("0739079891")
    assert book is not None
    assert book.categories == ["books", "music"] and book.tags == ["piano", "jazz"]
    assert book.text == "Piano book" and book.available is True
    assert book.created_at == datetime(2024, 1, 1, tzinfo=UTC)
    # canonical numerals become numbers; codes with leading zeros stay text
    assert book.properties == {"price": 9.99, "brand": "Acme", "isbn": "0739"}
    other = store.get_item("42")
    assert other is not None and other.available is False and other.properties == {"price": 12}

    dead = store.dead_letters()
    assert {d.source for d in dead} == {"catalog.csv"}
    assert sorted(d.record_index for d in dead) == [2, 3]


def test_items_jsonl_with_bad_line(
    tmp_path: Path, store: SQLiteStore, settings: EventSettings
) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps(
                    {
                        "item_id": 7,
                        "categories": ["a"],
                        "properties": {"size": "M"},
                        "colour": "red",
                    }
                ),
                "{not json",
                json.dumps({"item_id": "007", "tags": "x|y", "available": 0}),
            ]
        )
    )
    result = import_source(store, read_source("items", path), settings)
    assert result.items.accepted == 2
    assert [r.index for r in result.items.rejected] == [1]
    seven = store.get_item("7")
    assert seven is not None and seven.properties == {"size": "M", "colour": "red"}
    zeros = store.get_item("007")
    assert zeros is not None and zeros.tags == ["x", "y"] and zeros.available is False


def test_items_parquet(tmp_path: Path, store: SQLiteStore, settings: EventSettings) -> None:
    path = tmp_path / "items.parquet"
    pq.write_table(
        pa.table(
            {
                "item_id": pa.array([1, 2], pa.int64()),
                "categories": pa.array([["x"], []], pa.list_(pa.string())),
                "price": pa.array([1.5, None]),
            }
        ),
        path,
    )
    result = import_source(store, read_source("items", path), settings)
    assert result.items.accepted == 2
    one = store.get_item("1")
    assert one is not None and one.categories == ["x"] and one.properties == {"price": 1.5}


def test_items_need_an_item_id_column(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("id,text\n1,a\n")
    with pytest.raises(ValidationError, match="item_id"):
        read_source("items", path)


def test_an_events_file_is_not_taken_for_a_catalogue(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("user_id,item_id,timestamp,value\n593,1,978300760,3\n")
    with pytest.raises(ValidationError, match=r"event columns \(user_id\).*--format events"):
        read_source("items", path)
