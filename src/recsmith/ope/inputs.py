"""Read and check the two OPE files: the logged rounds and the target policy's distribution.

Every problem is a :class:`ValidationError` naming the column (and the first offending row or
round), so a bad file is fixed in one look instead of producing a silently wrong estimate.
Ids (``round``, ``action``, ``position``) are read as strings, so ``007`` stays ``007`` and the
two files join on the same text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsmith.errors import ValidationError

#: How far a target's probabilities may sum above 1 per round/position (float round-off).
SUM_TOLERANCE = 1e-6

KEY_COLUMNS = ("round", "position", "action")
LOG_REQUIRED = ("round", "action", "reward", "propensity")
TARGET_REQUIRED = ("round", "action", "probability")


def read_table(path: Path, field: str) -> pd.DataFrame:
    """A CSV or Parquet file (by suffix) with the id columns as strings."""
    if not path.is_file():
        raise ValidationError(field, f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".pq", ".csv", ".txt"):
        raise ValidationError(field, f"{path.name}: expected a .csv or .parquet file")
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, dtype={key: str for key in KEY_COLUMNS})
    except (ValueError, OSError) as exc:  # pandas' and pyarrow's parse errors are ValueErrors
        raise ValidationError(field, f"cannot read {path.name}: {exc}") from None
    for key in KEY_COLUMNS:
        if key in frame.columns:
            if frame[key].isna().any():
                raise ValidationError(
                    f"{field}: {key}", f"empty at row {_first(frame[key].isna())}"
                )
            frame[key] = frame[key].astype(str)
    return frame


def check_log(log: pd.DataFrame) -> list[str]:
    """Check the log in place of use; return its context columns (``x_*``)."""
    _require(log, LOG_REQUIRED, "log")
    if log.empty:
        raise ValidationError("log", "has no rows")
    reward = _numeric(log, "reward", "log")
    if not np.isfinite(reward).all():
        raise ValidationError(
            "log: reward", f"missing or not finite at row {_first(~np.isfinite(reward))}"
        )
    propensity = _numeric(log, "propensity", "log")
    bad = ~np.isfinite(propensity) | (propensity <= 0) | (propensity > 1)
    if bad.any():
        row = _first(bad)
        raise ValidationError(
            "log: propensity",
            f"row {row} (round {log['round'].iloc[row]}): {log['propensity'].iloc[row]!r} — the "
            "logging policy's probability of the logged action must be in (0, 1]; a zero or "
            "missing propensity makes every importance weight estimator undefined",
        )
    keys = slot_keys(log)
    duplicated = log.duplicated(keys)
    if duplicated.any():
        row = _first(duplicated)
        raise ValidationError(
            "log: " + "/".join(keys),
            f"row {row}: {', '.join(str(log[k].iloc[row]) for k in keys)} logged twice (one row "
            "per round" + (" and position)" if "position" in keys else ")"),
        )
    contexts = [c for c in log.columns if c.startswith("x_")]
    for column in contexts:
        values = _numeric(log, column, "log")
        if not np.isfinite(values).all():
            raise ValidationError(
                f"log: {column}", f"missing or not finite at row {_first(~np.isfinite(values))}"
            )
    return contexts


def check_target(target: pd.DataFrame, log: pd.DataFrame) -> None:
    """Check the target distribution against the log's layout."""
    _require(target, TARGET_REQUIRED, "target")
    if ("position" in log.columns) != ("position" in target.columns):
        raise ValidationError(
            "target: position",
            "present in one file only: both the log and the target need it, or neither",
        )
    probability = _numeric(target, "probability", "target")
    bad = ~np.isfinite(probability) | (probability < 0) | (probability > 1)
    if bad.any():
        row = _first(bad)
        raise ValidationError(
            "target: probability",
            f"row {row}: {target['probability'].iloc[row]!r} is not a probability in [0, 1]",
        )
    keys = slot_keys(log)
    duplicated = target.duplicated([*keys, "action"])
    if duplicated.any():
        row = _first(duplicated)
        raise ValidationError(
            "target: action", f"row {row}: {target['action'].iloc[row]} listed twice for its round"
        )
    sums = target.groupby(keys, sort=False)["probability"].sum()
    over = sums > 1 + SUM_TOLERANCE
    if over.any():
        where = over.idxmax()
        raise ValidationError(
            "target: probability",
            f"sums to {sums[where]:.6g} > 1 for {'/'.join(keys)} {where}: a policy's "
            "probabilities per round"
            + (" and position" if "position" in keys else "")
            + " sum to at most 1",
        )


def slot_keys(frame: pd.DataFrame) -> list[str]:
    """The columns that identify one logged decision: the round, and its position if any."""
    return ["round", "position"] if "position" in frame.columns else ["round"]


def _require(frame: pd.DataFrame, columns: tuple[str, ...], field: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValidationError(
            f"{field}: {', '.join(missing)}",
            f"missing column{'s' if len(missing) > 1 else ''} "
            f"(the file has: {', '.join(map(str, frame.columns))})",
        )


def _numeric(frame: pd.DataFrame, column: str, field: str) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    text = frame[column].notna().to_numpy() & np.isnan(values)
    if text.any():
        row = _first(text)
        raise ValidationError(
            f"{field}: {column}", f"row {row}: {frame[column].iloc[row]!r} is not a number"
        )
    frame[column] = values
    return values


def _first(mask: np.ndarray | pd.Series) -> int:
    """The 0-based data row of the first True (the header is not counted)."""
    return int(np.flatnonzero(np.asarray(mask))[0])
