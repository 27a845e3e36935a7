"""SASRec as a candidate of calibration, where it may pay and where torch can train it in time.

SASRec reads the order of a user's events, which no other default source does; papers report it
well ahead on long review and purchase sequences (#15), and on ml-100k it beat EASE on each
user's latest item (BENCHMARKS §29). But it costs minutes of CPU where the other sources cost
seconds, needs the optional torch extra, and learns nothing from a history of one or two items.
So calibration tries it only where all of these hold (``skip_reason``):

- ``calibration.sequential`` is on and the file lists no SASRec source (a file that names one
  has chosen it already);
- torch imports: without the extra nothing changes;
- the events carry times (a sequence needs an order) and the median user's sequence, as SASRec
  reads it (positive events, back-to-back repeats of one item once), holds at least
  ``MIN_MEDIAN`` items: the median user then gives it ≥ 4 next-item pairs, the least from which
  self-attention over a user's own history has anything to attend to;
- its fits on every validation past, estimated from training steps timed on this machine
  (``SASRec.estimate_fit_seconds``, CPU seconds as the budget counts them), fit in what is left
  of ``budget_seconds``.

It competes last, as a richer choice than everything before it: SASRec alone, then the fused
order with SASRec at weight 1; each replaces the choice only as any choice does (``prefer``: it
lifts the current choice's weakest protocol beyond paired-bootstrap noise and its worst share is
not lower). The references every share is read against (each protocol's best single source) are
those of the configured sources, so the candidate changes nothing unless it wins, and the ranker
is never trained over its candidates (that would refit it per label window).
"""

from __future__ import annotations

import importlib.util

import numpy as np

from recsmith.features.interactions import Interactions
from recsmith.models.sasrec import SASRec, sequence_lengths
from recsmith.pipeline.config import PipelineConfig, SourceConfig
from recsmith.pipeline.training import has_time_order

NAME = "sasrec"
#: The median user's sequence length below which SASRec is not tried (module docstring).
MIN_MEDIAN = 5
#: The candidate's parameters: SASRec's defaults (BCE: gBCE scored lower on the validation
#: parts, BENCHMARKS §47) with one torch thread: on a shared two-core machine torch's two
#: threads ran a training step 7× slower than one (§47), and one is predictable.
PARAMS: dict[str, object] = {"loss": "bce", "num_threads": 1}
QUOTA = 100


def median_sequence(data: Interactions) -> float:
    """The median sequence length over users with any positive event (0 without any)."""
    lengths = sequence_lengths(data)
    lengths = lengths[lengths > 0]
    return float(np.median(lengths)) if len(lengths) else 0.0


def skip_reason(config: PipelineConfig, full: Interactions, pasts: int, left: float) -> str | None:
    """Why SASRec is not tried on ``full`` (``pasts`` validation pasts to fit it on, ``left``
    seconds of the budget), or None when it is (the rule in the module docstring)."""
    if not config.calibration.sequential:
        return "off (calibration.sequential = false)"
    if any(s.model == NAME or s.name == NAME for s in config.retrieval.sources):
        return "the file lists it"
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed (pip install 'recsmith[torch]')"
    if not has_time_order(full):
        return "the events carry no times"
    median = median_sequence(full)
    if median < MIN_MEDIAN:
        return f"the median sequence holds {median:g} items < {MIN_MEDIAN}"
    estimate = pasts * SASRec(**PARAMS).estimate_fit_seconds(full)
    if estimate > left:
        return f"~{estimate:.0f} s for {pasts} fits would pass the {left:.0f} s left of the budget"
    return None


def candidate(
    config: PipelineConfig, full: Interactions, pasts: int, left: float
) -> tuple[SourceConfig | None, str]:
    """The SASRec source calibration should try, or None, and a note for the manifest."""
    why = skip_reason(config, full, pasts, left)
    if why is not None:
        return None, f"not tried: {why}"
    spec = SourceConfig(name=NAME, model=NAME, quota=QUOTA, params=dict(PARAMS))
    return spec, f"tried alone and in the fused order ({PARAMS['loss']}; validation pasts: {pasts})"
