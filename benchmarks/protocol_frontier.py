"""Why one calibration cannot serve both bar protocols on ml-100k: every candidate order the
calibration weighs, scored under both of its validation protocols and on the inner test part.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/protocol_frontier.py \
        --datasets ml-100k --protocols temporal:0.8,leave-last-out

For each dataset and bar protocol the protocol is applied twice (``bar_check.parts``, the
``validation`` part: the outer test part is never read). On the inner train part, as calibration
sees it, each order is scored under the time-cut validation ``time_cut_split`` carves (or
each user's latest item, where too few users return) and under each user's latest item;
then fitted on the whole inner train part and scored on the inner test part. Orders are every
source alone (popularity added), the configured fusion, the fusion with trending at a larger
weight, and pairs. Each cell is NDCG@10 over all users / users whose latest event lies in the
latest 10 % of events ("fresh") / the rest ("stale"), to test whether recency of the user
separates what each protocol rewards. Uses calibration's own scorer (``_Scorer``): the same merge
and popularity fill as serving.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
from bar_check import parts
from calibration import calibration_line

from recsmith.config import EventSettings
from recsmith.evaluation.runner import ground_truth
from recsmith.features.interactions import Interactions
from recsmith.pipeline import calibration as cal
from recsmith.pipeline.config import PipelineConfig, default_pipeline_config
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.validation import Validation, latest_item_split, time_cut_split

PERSONAL = ("ease", "ials", "itemknn_recent")


def weighted(config: PipelineConfig, weights: dict[str, float]) -> PipelineConfig:
    sources = [
        s.model_copy(update={"weight": weights.get(s.name, cal.FILLER_WEIGHT)})
        for s in config.retrieval.sources
    ]
    retrieval = config.retrieval.model_copy(update={"sources": sources})
    return config.model_copy(update={"retrieval": retrieval})


def orders(base: PipelineConfig) -> dict[str, PipelineConfig]:
    wide = cal.with_popularity(base)
    out = {s.name: cal.alone(wide, s.name) for s in wide.retrieval.sources if s.kind == "model"}
    out["fused (as configured)"] = base
    for w in (0.3, 1.0, 2.0, 4.0):
        out[f"fused, trending at {w:g}"] = weighted(
            wide, {**dict.fromkeys(PERSONAL, 1.0), "trending": w}
        )
    for a, b in [("trending", "ease"), ("trending", "ials"), ("trending", "itemknn_recent"),
                 ("ease", "ials"), ("ease", "itemknn_recent")]:  # fmt: skip
        out[f"{a} + {b}"] = weighted(wide, {a: 1.0, b: 1.0})
    return out


def cell(per_user: np.ndarray, fresh: np.ndarray) -> str:
    parts_ = [per_user, per_user[fresh], per_user[~fresh]]
    return " / ".join(f"{p.mean():.4f}" if len(p) else "-" for p in parts_)


def run(name: str, protocol: str) -> None:
    split, items = parts(name, protocol, "validation")
    full = Interactions.from_events(split.train, dict(EventSettings().weights))
    attrs = ItemAttributes.from_items(items, full.items)
    truth = ground_truth(full, split.test, EventSettings().weights)
    matrix = truth.matrix[:, : full.n_items].tocsr()  # an item unseen in training: no order has it
    keep = np.diff(matrix.indptr) > 0
    users = full.users.to_index(truth.user_ids).astype(np.int32)[keep]
    base = default_pipeline_config()
    cc = base.calibration
    vals = {
        "time cut": time_cut_split(full, cc.min_users, cc.share, cc.max_users, 0)
        or latest_item_split(full, cc.max_users, 0),
        "latest item": latest_item_split(full, cc.max_users, 0),
        "inner test": Validation(full, users, matrix[keep], "inner test", None),
    }
    print(f"\n#### {name}, `{protocol}` (validation part)")
    print(", ".join(f"{k}: {v.protocol}, {len(v.users)} users" for k, v in vals.items()))
    scores: dict[str, list[str]] = {}
    for val in vals.values():
        last = np.full(val.past.n_users, -1, np.int64)
        np.maximum.at(last, val.past.event_users, val.past.event_ts)
        fresh = last[val.users] >= np.quantile(val.past.event_ts, 0.9)
        scorer = cal._Scorer(cal.with_popularity(base), val, attrs, full)
        for label, config in orders(base).items():
            per_user = scorer.ndcg(scorer.candidates(config))
            scores.setdefault(label, []).append(cell(per_user, fresh))
    print("| order | " + " | ".join(f"{k}: all / fresh / stale" for k in vals) + " |")
    print("|---|" + "---:|" * len(vals))
    for label, cells in scores.items():
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


def each_dataset_and_protocol(run: Callable[[str, str], None], doc: str) -> None:
    """The command line this script and ``rising_frontier.py`` share: ``run`` on each of
    ``--datasets`` × ``--protocols``, after the calibration line."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--datasets", default="ml-100k")
    parser.add_argument("--protocols", default="temporal:0.8,leave-last-out")
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    for name in args.datasets.split(","):
        for protocol in args.protocols.split(","):
            run(name, protocol)


def main() -> None:
    each_dataset_and_protocol(run, __doc__ or "")


if __name__ == "__main__":
    main()
