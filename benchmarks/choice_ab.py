"""What calibration ships on shape_sweep's samples, trained in process, for A/B runs of a change to
calibration's choice rule: run it once per library tree (``PYTHONPATH``) and compare the saved
per-user scores (BENCHMARKS §60).

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src:benchmarks .venv/bin/python benchmarks/choice_ab.py \\
        --shapes long --datasets ml-100k --seeds 5 --out /tmp/ab-new

For each sample: shape_sweep's sample and split, the default pipeline trained with calibration on
(``train_pipeline``; no peers, no CLI: only the choice differs between trees), the test NDCG@10
per user by shape_sweep's scorer (saved as ``SHAPE-DATASET-SEED.npy`` under ``--out``), and the
calibration's choice, reason and each tried configuration's validation means. ``--add-source``
trains the default with one more source (a candidate default, BENCHMARKS §63); ``--catalogue``
trains with a catalogue of the train part's items, as a shop that imported them does:

    … choice_ab.py --add-source '{"name": "rp3beta", "model": "rp3beta", "quota": 100}' --at 2
    … choice_ab.py --add-source '{"name": "rp3_recent", "model": "rp3beta", "use": "recent",
        "quota": 50}' --at 2 --replace        # in place of itemknn_recent

``--fused-weights`` trains with ``calibration.fused_weights = true`` (each personal source's
fused weight stepped, BENCHMARKS §163). ``--no-sitting-bar`` trains with
``calibration.sitting_bar = false`` (the other arm of the sitting rule's A/B, §155);
``--protocol last`` scores a shape's sample on each user's last item instead of
its own protocol (the review's leave-last-out reading of a temporal shape, §150's correction),
saved as ``SHAPElast-DATASET-SEED.npy``. ``--pooled-prefer`` trains with
``calibration.pooled_prefer = true`` (§160); ``--fused-forward`` with
``calibration.fused_forward = true`` (a fused order built forward from the base single
source, §169; with ``--paired``, where it grew, also trained with it off, saved as
``SHAPE-DATASET-SEED-off.npy``).
``--decayed-source 0.25`` trains with ``calibration.decayed_source = 0.25`` (the fused
order plus a decayed EASE, §171). ``--ease-past-top`` trains with ``calibration.ease_past_top =
true`` (EASE's low-pass / Mult-DAE weight stepped past its list's top where that is kept, §173).
``--ease-recency 1,3`` trains with ``calibration.ease_recency = [1.0, 3.0]`` (EASE's recency
weights tried, §182); the data set ``reviews`` (with ``--shapes reviews``) is the simulator's
reviews at ``ranker_at_size``'s middle size (6,000 users × 4,000 items, each user's last item
held out).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from calibration import calibration_line
from ranker_at_size import review_events
from shape_sweep import SHAPES, K, Split, events_of, ndcg_at_10, sample, split

from recsmith.config import EventSettings
from recsmith.events.schema import Item
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig, SourceConfig, default_pipeline_config


def with_source(
    config: PipelineConfig, source: SourceConfig, at: int, replace: bool = False
) -> PipelineConfig:
    """``config`` with ``source`` inserted at place ``at`` of its retrieval sources (or in
    place of the one there)."""
    sources = list(config.retrieval.sources)
    sources[at : at + replace] = [source]
    retrieval = config.retrieval.model_copy(update={"sources": sources})
    return PipelineConfig.model_validate(
        {**config.model_dump(), "retrieval": retrieval.model_dump()}
    )


def served(
    config: PipelineConfig, events: pd.DataFrame, items: list[Item] | None, s: Split
) -> tuple[np.ndarray, dict]:
    """``config`` trained on ``s``'s train part (``events``), its test NDCG@10 per user and the
    manifest's calibration report."""
    weights = dict(EventSettings().weights)
    pipeline = train_pipeline(config, events, weights, items=items)
    top, _, _ = pipeline.top_k(np.array(s.users, dtype=object), K)
    lists = {
        u: list(pipeline.bundle.items.to_external(row[row >= 0]))
        for u, row in zip(s.users, top.ids, strict=True)
    }
    return ndcg_at_10(lists, s), pipeline.bundle.manifest["calibration"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="long")
    parser.add_argument("--datasets", default="ml-100k")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--add-source", help="a source's settings as JSON, added to the default")
    parser.add_argument("--at", type=int, default=2, help="the added source's place in the list")
    parser.add_argument("--replace", action="store_true", help="replace the source at --at")
    parser.add_argument(
        "--catalogue",
        action="store_true",
        help="train with a catalogue listing the train part's items (bare), as a shop that "
        "imported its items does (BENCHMARKS §105)",
    )
    parser.add_argument(
        "--no-sitting-bar",
        action="store_true",
        help="calibration.sitting_bar = false: no time cut bars what falls below popularity",
    )
    parser.add_argument(
        "--fused-weights",
        action="store_true",
        help="calibration.fused_weights = true: each personal source's fused weight stepped",
    )
    parser.add_argument(
        "--fused-forward",
        action="store_true",
        help="calibration.fused_forward = true: a fused order built forward from the base "
        "single source competes (BENCHMARKS §169)",
    )
    parser.add_argument(
        "--paired",
        action="store_true",
        help="with --fused-forward: where the forward order grew, also train with it off and "
        "save SHAPE-DATASET-SEED-off.npy (elsewhere the run with it off is the same)",
    )
    parser.add_argument(
        "--pooled-prefer",
        action="store_true",
        help="calibration.pooled_prefer = true: the fused order may win on the protocols' users "
        "pooled (BENCHMARKS §160)",
    )
    parser.add_argument(
        "--decayed-source",
        type=float,
        default=0.0,
        help="calibration.decayed_source = this share: also try the fused order plus a decayed "
        "EASE (BENCHMARKS §171)",
    )
    parser.add_argument(
        "--ease-past-top",
        action="store_true",
        help="calibration.ease_past_top = true: where the grid keeps the top listed low-pass or "
        "Mult-DAE weight, it steps on up (BENCHMARKS §173)",
    )
    parser.add_argument(
        "--ease-recency",
        default="",
        help="calibration.ease_recency = these β (comma-separated): EASE's recency weights "
        "tried (BENCHMARKS §182)",
    )
    parser.add_argument(
        "--protocol",
        choices=["temporal", "last"],
        help="split and score every shape's sample by this protocol, not the shape's own",
    )
    args = parser.parse_args()
    config = default_pipeline_config()
    given = (
        ("sitting_bar", False, args.no_sitting_bar),
        ("fused_weights", True, args.fused_weights),
        ("pooled_prefer", True, args.pooled_prefer),
        ("fused_forward", True, args.fused_forward),
        ("decayed_source", args.decayed_source, args.decayed_source > 0),
        ("ease_past_top", True, args.ease_past_top),
        ("ease_recency", [float(b) for b in args.ease_recency.split(",") if b], args.ease_recency),
    )
    calibration = config.calibration.model_copy(update={k: v for k, v, on in given if on})
    config = config.model_copy(update={"calibration": calibration})
    if args.add_source:
        source = SourceConfig.model_validate_json(args.add_source)
        config = with_source(config, source, args.at, args.replace)
    args.out.mkdir(parents=True, exist_ok=True)
    print(calibration_line(), flush=True)
    for shape in args.shapes.split(","):
        for dataset in args.datasets.split(","):
            for seed in map(int, args.seeds.split(",")):
                if shape == "reviews":
                    drawn, own = review_events(seed, 6000, 4000), "last"
                else:
                    drawn = sample(events_of(dataset, seed), SHAPES[shape], seed)
                    own = SHAPES[shape].protocol
                protocol = args.protocol or own
                s = split(drawn, protocol)
                name = shape if protocol == own else f"{shape}{protocol}"
                events = s.train.assign(event_id=None, context=None)
                items = (
                    [Item(item_id=str(i)) for i in events.item_id.unique()]
                    if args.catalogue
                    else None
                )
                scores, cal = served(config, events, items, s)
                np.save(args.out / f"{name}-{dataset}-{seed}.npy", scores)
                tried = {t["name"]: [p["ndcg@10"] for p in t["protocols"]] for t in cal["tried"]}
                print(
                    f"{name}/{dataset}/{seed}: {len(s.users)} test users, test "
                    f"{scores.mean():.4f}, chose {cal['chosen']}: {cal['reason']}"
                )
                print(f"  tried {json.dumps(tried)}")
                print(f"  grid {json.dumps(cal.get('grid', {}))}")  # each value's validation means
                print(f"  fused_grid kept {json.dumps(cal.get('fused_grid', {}).get('kept'))}")
                print(f"  fused_drop {json.dumps(cal.get('fused_drop'))}")  # where it is on
                weights = cal.get("fused_weights", {})
                print(f"  fused_weights {json.dumps(weights.get('ndcg@10'))} kept", end=" ")
                print(json.dumps(weights.get("kept")))
                forward = cal.get("fused_forward", {})  # where it is on: what serves, why
                print(f"  fused_forward {json.dumps(forward.get('serving'))}", end=" ")
                print(json.dumps(forward.get("stopped") or forward.get("kept")))
                print(f"  ranker {json.dumps(cal.get('ranker'))}")
                print(f"  decayed_source {json.dumps(cal.get('decayed_source'))}")
                print(f"  protocols {json.dumps(cal['protocols'])}")
                # what each user's latest item measured, and what a time cut barred (§150)
                print(f"  sittings {json.dumps(cal.get('sittings'))}", end="")
                print(f" vetoed {json.dumps(cal.get('vetoed'))}", flush=True)
                if args.paired and len(cal.get("fused_forward", {}).get("serving", [])) > 1:
                    # grown: the choice may differ with it off; else the same run, to the bit
                    off = calibration.model_copy(update={"fused_forward": False})
                    off_scores, off_cal = served(
                        config.model_copy(update={"calibration": off}), events, items, s
                    )
                    np.save(args.out / f"{name}-{dataset}-{seed}-off.npy", off_scores)
                    print(f"  off: test {off_scores.mean():.4f}, chose {off_cal['chosen']}")


if __name__ == "__main__":
    main()
