"""Format ``movielens``: a GroupLens MovieLens directory, whichever release it is.

The release is told by the files present (each may also be ``<name>.gz``):

* ``u.data`` — ML-100K: tab-separated ratings; ``u.item`` (latin-1, ``|``-separated, 19 genre
  flags in the order of ``u.genre``) for the catalog;
* ``ratings.csv`` — ml-latest, ml-latest-small, ML-20M, ML-25M, ML-32M: CSV with a header;
  ``movies.csv`` (genres ``|``-separated), ``tags.csv`` (free-text tags), ``links.csv``;
* ``ratings.dat`` — ML-1M and ML-10M: ``::``-separated; ``movies.dat`` (latin-1 in ML-1M),
  ``tags.dat`` in ML-10M.

Every rating becomes a ``rating`` event with its star value and Unix-seconds timestamp; movies
become items with their title as text and genres as categories.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from recsmith.errors import ValidationError
from recsmith.events.importers._catalog import item_chunks, tags_by_item
from recsmith.events.importers._common import (
    ImportSource,
    ItemRecord,
    RawChunk,
    count_records,
    csv_chunks,
    find,
    read_lines,
    require_dir,
    stem,
)

#: ML-100K's genre order, used when ``u.genre`` is not next to ``u.item``.
GENRES_100K = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
_NO_GENRES = "(no genres listed)"
_EVENT_COLUMNS = ["user_id", "item_id", "value", "timestamp"]


def read_movielens(path: Path, chunk_rows: int = 100_000) -> ImportSource:
    """Ratings and movies of the MovieLens release found in directory ``path``."""
    require_dir(path)
    if (ratings := find(path, "u.data")) is not None:
        items = _items_100k(path, chunk_rows)
        events = _ratings(ratings, chunk_rows, sep="\t", header=None, names=_EVENT_COLUMNS)
        header = False
    elif (ratings := find(path, "ratings.csv")) is not None:
        items = _items_latest(path, chunk_rows)
        events = _ratings(ratings, chunk_rows, sep=",", header=0, names=_EVENT_COLUMNS)
        header = True
    elif (ratings := find(path, "ratings.dat")) is not None:
        items = _items_dat(path, chunk_rows)
        # "::" would need pandas' slow python engine; ":" with the empty fields between skipped is
        # the same split for these all-numeric rows.
        events = _ratings(
            ratings,
            chunk_rows,
            sep=":",
            header=None,
            usecols=[0, 2, 4, 6],
            names=["user_id", "_1", "item_id", "_2", "value", "_3", "timestamp"],
        )
        header = False
    else:
        raise ValidationError(
            "path",
            f"movielens: {path} has none of u.data, ratings.csv, "
            "ratings.dat (or their .gz) - is it a MovieLens directory?",
        )
    return ImportSource(
        "movielens",
        events=events,
        items=items,
        users=_users_100k(path, chunk_rows),
        total_events=count_records(ratings, header=header),
    )


def _ratings(path: Path, chunk_rows: int, **read_csv: object) -> Iterator[RawChunk[pd.DataFrame]]:
    for offset, frame in csv_chunks(path, chunk_rows, **read_csv):  # type: ignore[arg-type]
        frame = frame.loc[:, _EVENT_COLUMNS]
        frame["event_type"] = "rating"
        yield RawChunk(frame, offset, stem(path))


def _no_items() -> Iterator[RawChunk[list[ItemRecord]]]:
    return iter(())


# ---- ML-100K ----------------------------------------------------------------------------------


def _items_100k(path: Path, chunk_rows: int) -> Iterator[RawChunk[list[ItemRecord]]]:
    u_item = find(path, "u.item")
    if u_item is None:
        return _no_items()
    genre_file = find(path, "u.genre")
    genres = GENRES_100K
    if genre_file is not None:
        genres = tuple(line.split("|")[0] for line in read_lines(genre_file))

    def records() -> Iterator[ItemRecord]:
        for line in read_lines(u_item):
            fields = line.split("|")
            movie_id, title, released, _video, url = fields[:5]
            flags = fields[5:]
            props = {k: v for k, v in (("release_date", released), ("imdb_url", url)) if v}
            yield {
                "item_id": movie_id,
                "text": title,
                "categories": [g for g, flag in zip(genres, flags, strict=False) if flag == "1"],
                "properties": props,
            }

    return item_chunks(records(), stem(u_item), chunk_rows)


# ---- ml-latest / 20M / 25M ----------------------------------------------------------------------


def _genres(text: str) -> list[str]:
    return [] if text == _NO_GENRES else [g for g in text.split("|") if g]


def _items_latest(path: Path, chunk_rows: int) -> Iterator[RawChunk[list[ItemRecord]]]:
    movies = find(path, "movies.csv")
    if movies is None:
        return _no_items()
    tags_file = find(path, "tags.csv")
    links_file = find(path, "links.csv")

    def records() -> Iterator[ItemRecord]:
        tags: dict[str, list[str]] = {}
        if tags_file is not None:
            frame = pd.read_csv(
                tags_file, dtype=str, keep_default_na=False, usecols=["movieId", "tag"]
            )
            tags = tags_by_item(
                frame["movieId"].to_numpy(dtype=object), frame["tag"].to_numpy(dtype=object)
            )
        links: dict[str, dict[str, str]] = {}
        if links_file is not None:
            frame = pd.read_csv(links_file, dtype=str, keep_default_na=False)
            for movie_id, imdb, tmdb in frame[["movieId", "imdbId", "tmdbId"]].itertuples(
                index=False
            ):
                links[movie_id] = {k: v for k, v in (("imdb_id", imdb), ("tmdb_id", tmdb)) if v}
        frame = pd.read_csv(movies, dtype=str, keep_default_na=False)
        for movie_id, title, genres in frame[["movieId", "title", "genres"]].itertuples(
            index=False
        ):
            yield _movie(
                movie_id, title, _genres(genres), tags.get(movie_id, []), links.get(movie_id, {})
            )

    return item_chunks(records(), stem(movies), chunk_rows)


def _movie(
    movie_id: str, title: str, genres: list[str], tags: list[str], props: dict[str, str]
) -> ItemRecord:
    return {
        "item_id": movie_id,
        "text": title,
        "categories": genres,
        "tags": tags,
        "properties": props,
    }


# ---- ML-1M / ML-10M -----------------------------------------------------------------------------


def _movie_dat(line: str) -> tuple[str, str, list[str]]:
    """``MovieID::Title::Genres``, split from both ends because a title may contain colons."""
    movie_id, _, rest = line.partition("::")
    title, _, genres = rest.rpartition("::")
    return movie_id, title, _genres(genres)


def _items_dat(path: Path, chunk_rows: int) -> Iterator[RawChunk[list[ItemRecord]]]:
    movies = find(path, "movies.dat")
    if movies is None:
        return _no_items()
    tags_file = find(path, "tags.dat")

    def records() -> Iterator[ItemRecord]:
        tags: dict[str, list[str]] = {}
        if tags_file is not None:  # UserID::MovieID::Tag::Timestamp (ML-10M)
            rows = [r for r in (line.split("::") for line in read_lines(tags_file)) if len(r) >= 4]
            tags = tags_by_item([r[1] for r in rows], ["::".join(r[2:-1]) for r in rows])
        for line in read_lines(movies):
            movie_id, title, genres = _movie_dat(line)
            yield _movie(movie_id, title, genres, tags.get(movie_id, []), {})

    return item_chunks(records(), stem(movies), chunk_rows)


def _users_100k(path: Path, chunk_rows: int) -> Iterator[RawChunk[list[dict[str, object]]]]:
    """ml-100k's ``u.user`` (``id|age|gender|occupation|zip``) as profiles: age, gender and
    occupation (the zip code is left out: a near-unique, identifying value, no segment)."""
    u_user = find(path, "u.user")
    if u_user is None:
        return
    records: list[dict[str, object]] = []
    offset = 0
    for line in read_lines(u_user):
        user_id, age, gender, occupation = line.split("|")[:4]
        props = {
            "age": int(age) if age.isdigit() else age,
            "gender": gender,
            "occupation": occupation,
        }
        records.append({"user_id": user_id, "properties": props})
        if len(records) == chunk_rows:
            yield RawChunk(records, offset, stem(u_user))
            offset, records = offset + len(records), []
    if records:
        yield RawChunk(records, offset, stem(u_user))
