"""Where each single source's hits come from, on calibration's latest-item folds and on test, for
``last``-protocol samples of shape_sweep (BENCHMARKS §105: why validation preferred EASE to
``transitions`` on diginetica ``short`` while test preferred ``transitions``).

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src:benchmarks .venv/bin/python \\
        benchmarks/validation_hits.py --datasets diginetica-sample --seeds 0,1,2

For each sample: shape_sweep's sample and split; calibration's three latest-item folds carved from
the train part (``latest_item_folds``) and the test split itself, in the train part's item
numbering (a test item the train part never saw has no column: nothing can propose it, as when
served) — each scored by calibration's own scorer (``_Scorer``: every source alone, the serving
path's merge, popularity beneath). Each served slot is a proposal the source scored above 0, one
it scored 0 or less (a tie: no evidence for it, its place set by the item's index), or popularity
filling beneath; the hits are counted by kind, and ``unknown`` counts the slots whose item the
split's past never saw (it can only be there on a validation fold). Then, pooled over the samples
(each user once per protocol, the folds pooled as calibration pools them: ``ByUser``), each
source's NDCG@10 and ``--a`` − ``--b`` with a 95 % paired bootstrap interval over users. No
timings: every figure is exact for the tree on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
from calibration import calibration_line
from shape_sweep import RESAMPLES, SHAPES, K, Split, events_of, sample, split

from recsmith.config import EventSettings
from recsmith.evaluation.metrics import ndcg_at_k
from recsmith.evaluation.significance import bootstrap_ci
from recsmith.features.interactions import Interactions
from recsmith.pipeline.calibration import ByUser, _Scorer, alone, with_popularity
from recsmith.pipeline.config import default_pipeline_config
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.validation import Validation, latest_item_folds
from recsmith.retrieval.merge import append_below
from recsmith.sparse_rows import csr_from_pairs

SOURCES = ("ease", "ials", "itemknn_recent", "transitions", "popularity")
KINDS = ("scored", "tie", "fill", "unknown")


def held_out_as_validation(train: Interactions, s: Split) -> Validation:
    """The test users and their held-out items in ``train``'s numbering; an item ``train`` never
    saw gets one extra column no list can hold."""
    users = train.users.to_index(np.array(s.users, dtype=object))
    pairs = [(r, item) for r, user in enumerate(s.users) for item in sorted(s.truth[user])]
    rows = np.array([r for r, _ in pairs], np.int64)
    items = train.items.to_index(np.array([i for _, i in pairs], dtype=object))
    cols = np.where(items >= 0, items, train.n_items).astype(np.int64)
    truth = csr_from_pairs(len(users), train.n_items + 1, rows, cols)
    return Validation(train, users.astype(np.int32), truth, "test", None)


def slots(scorer: _Scorer, val: Validation, name: str, config: object) -> tuple[np.ndarray, dict]:
    """``name`` alone: per-user NDCG@10, and its served slots and hits by kind."""
    spec = next(s for s in config.retrieval.sources if s.name == name)  # type: ignore[attr-defined]
    proposed = scorer._proposals(spec)
    served = append_below(scorer.candidates(alone(config, name)), scorer.fallback, "popular").top(K)
    rank = np.arange(len(served)) - served.bounds()[served.query]
    ids = np.full((len(scorer.queries), K), -1, np.int32)
    ids[served.query, rank] = served.items
    n_items = val.past.n_items
    score = dict(
        zip(
            proposed.query.astype(np.int64) * n_items + proposed.items, proposed.scores, strict=True
        )
    )
    got = np.array(
        [score.get(k, np.nan) for k in served.query.astype(np.int64) * n_items + served.items]
    )
    kind = np.where(np.isnan(got), "fill", np.where(got > 0, "scored", "tie"))
    hit = np.asarray(val.truth[served.query, served.items]).ravel() > 0
    seen_items = np.zeros(n_items, bool)
    seen_items[val.past.event_items] = True
    unknown = ~seen_items[served.items]
    counts = {k: [int((kind == k).sum()), int((hit & (kind == k)).sum())] for k in KINDS[:3]}
    counts["unknown"] = [int(unknown.sum()), int((hit & unknown).sum())]
    return ndcg_at_k(ids, val.truth, K), counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="short")
    parser.add_argument("--datasets", default="diginetica-sample")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--a", default="ease")
    parser.add_argument("--b", default="transitions")
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    config = with_popularity(default_pipeline_config())
    weights = dict(EventSettings().weights)
    scores: dict[str, dict[str, list[np.ndarray]]] = defaultdict(lambda: defaultdict(list))
    counts: dict[tuple[str, str], np.ndarray] = defaultdict(lambda: np.zeros((4, 2), int))
    for dataset in args.datasets.split(","):
        for seed in map(int, args.seeds.split(",")):
            s = split(sample(events_of(dataset, seed), SHAPES[args.shape], seed), "last")
            train = Interactions.from_events(s.train.assign(event_id=None, context=None), weights)
            attrs = ItemAttributes.from_items([], train.items, 8)
            folds = latest_item_folds(train, 5000, config.ranking.random_state, 3)
            named = [(f"fold {n}", v) for n, v in enumerate(folds)] + [("test", None)]
            fold_rows: dict[str, list[np.ndarray]] = defaultdict(list)
            for label, val in named:
                val = val if val is not None else held_out_as_validation(train, s)
                scorer = _Scorer(config, val, attrs, train)
                for name in SOURCES:
                    ndcg, got = slots(scorer, val, name, config)
                    counts[(label, name)] += np.array([got[k] for k in KINDS])
                    scores[label][name].append(ndcg)
                    if label != "test":
                        fold_rows[name].append(ndcg)
            pool = ByUser([v.users for v in folds])
            for name in SOURCES:
                scores["folds pooled"][name].append(pool(fold_rows[name]))
            print(f"{args.shape}/{dataset}/{seed}: {len(s.users)} test users", flush=True)
    print(
        "\n| protocol | source | NDCG@10 | slots: scored / tie / fill / unknown item | hits: "
        "scored / tie / fill / unknown item |\n|---|---|---:|---|---|"
    )
    for (label, name), c in counts.items():
        mean = np.concatenate(scores[label][name]).mean()
        print(
            f"| {label} | {name} | {mean:.4f} | {' / '.join(map(str, c[:, 0]))} | "
            f"{' / '.join(map(str, c[:, 1]))} |"
        )
    print(f"\n| protocol | users | {args.a} | {args.b} | {args.a} − {args.b} [95 % paired] |")
    print("|---|---:|---:|---:|---|")
    for label in ("fold 0", "fold 1", "fold 2", "folds pooled", "test"):
        a, b = (np.concatenate(scores[label][n]) for n in (args.a, args.b))
        low, high = bootstrap_ci(a - b, n_resamples=RESAMPLES, seed=0)
        print(
            f"| {label} | {len(a)} | {a.mean():.4f} | {b.mean():.4f} | "
            f"{(a - b).mean():+.4f} [{low:+.4f}, {high:+.4f}] |"
        )


if __name__ == "__main__":
    main()
