"""LambdaMART (LightGBM's lambdarank objective): learns to order a query's candidates by NDCG.

Saved as LightGBM's own text model format (not pickle), so a model directory stays safe to load. A
loaded ranker scores with the model compiled to C (``recsmith.trees``: the same scores, a fifth of
the CPU, a tenth with AVX-512) when a C compiler is there; otherwise, or with
``RECSMITH_COMPILED_TREES=0``, from LightGBM's own predict, and the log and readiness say so. The
compiler runs in a background thread (seconds to a minute for a big model, on a busy machine), so a
server starts, or swaps in a new release, without waiting for it: LightGBM scores until the library
is loaded (the very same scores), readiness saying ``ranker_compiling`` meanwhile; ``wait_compiled``
waits for it.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from recsmith.errors import MissingExtraError
from recsmith.trees.build import KernelUnavailable
from recsmith.trees.forest import CompiledForest
from recsmith.trees.lightgbm_text import UnsupportedModel

log = logging.getLogger(__name__)
#: ``uncompiled_reason`` while the compiled model is being built in the background
COMPILING = "compiling"


class RankerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    n_estimators: int = Field(100, ge=1)
    learning_rate: float = Field(0.05, gt=0)
    num_leaves: int = Field(31, ge=2)
    min_child_samples: int = Field(20, ge=1)
    #: L2 penalty on leaf values (LightGBM ``lambda_l2``): shrinks what few examples can claim
    reg_lambda: float = Field(0.0, ge=0)
    random_state: int = 42
    num_threads: int = Field(0, ge=0)


def _lightgbm() -> Any:
    try:
        import lightgbm
    except ImportError:
        raise MissingExtraError("lightgbm", "ranking") from None
    return lightgbm


class LambdaMARTRanker:
    """Scores candidate rows; ``fit`` takes rows grouped by query (``groups`` = rows per query)."""

    def __init__(self, config: RankerConfig | None = None) -> None:
        self.config = config or RankerConfig()
        self.booster: Any = None
        self.compiled: CompiledForest | None = None
        #: why scores come from LightGBM's predict rather than the compiled model (None: they
        #: do not; "off": RECSMITH_COMPILED_TREES=0; ``COMPILING``: not built yet)
        self.uncompiled_reason: str | None = None
        self._settled = threading.Event()  # set once a build finished, or none was started
        self._settled.set()

    def fit(
        self, features: np.ndarray, labels: np.ndarray, groups: np.ndarray, feature_names: list[str]
    ) -> Self:
        lgb = _lightgbm()
        cfg = self.config
        params = {
            "objective": "lambdarank",
            "metric": "ndcg",
            "ndcg_eval_at": [10],
            "lambdarank_truncation_level": 20,
            "learning_rate": cfg.learning_rate,
            "num_leaves": cfg.num_leaves,
            "min_child_samples": cfg.min_child_samples,
            "lambda_l2": cfg.reg_lambda,
            "seed": cfg.random_state,
            "deterministic": True,
            "num_threads": cfg.num_threads,
            "verbosity": -1,
        }
        dataset = lgb.Dataset(
            features, label=labels, group=groups, feature_name=feature_names, free_raw_data=True
        )
        self.booster = lgb.train(params, dataset, num_boost_round=cfg.n_estimators)
        return self

    def _compile(self) -> None:
        """Start building (or finding in the cache) the compiled model when the ranker is
        loaded, in a background thread, never on a request; not after ``fit``, whose few scoring
        calls (held-out NDCG, calibration) cost less than a build."""
        self.compiled, self.uncompiled_reason = None, None
        if os.environ.get("RECSMITH_COMPILED_TREES", "1") == "0":
            self.uncompiled_reason = "off"
            return
        self.uncompiled_reason = COMPILING
        self._settled = threading.Event()
        text = self.booster.model_to_string()
        threading.Thread(
            target=self._build, args=(text,), name="ranker-compile", daemon=True
        ).start()

    def _build(self, model_text: str) -> None:
        """The compiled model, swapped in once loaded; what cannot be compiled is scored by
        LightGBM, the reason logged and kept."""
        try:
            self.compiled = CompiledForest(model_text)  # before the reason: never neither
            self.uncompiled_reason = None
        except (KernelUnavailable, UnsupportedModel) as exc:
            self.uncompiled_reason = str(exc)
            log.warning("ranker: scoring with LightGBM's predict, not compiled (%s)", exc)
        finally:
            self._settled.set()

    def wait_compiled(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` s (None: as long as it takes) for the background build to end;
        True when the compiled model scores now (tests and benchmarks that measure it)."""
        return self._settled.wait(timeout) and self.compiled is not None

    @property
    def fitted(self) -> bool:
        return self.booster is not None

    def score(self, features: np.ndarray) -> np.ndarray:
        if self.booster is None:
            raise ValueError("ranker is not fitted")
        if len(features) == 0:
            return np.zeros(0, np.float32)
        compiled = self.compiled  # read once: a background build may set it meanwhile
        if compiled is not None:
            return compiled.predict(features).astype(np.float32)
        return np.asarray(self.booster.predict(features, num_threads=1), dtype=np.float32)

    def contributions(self, features: np.ndarray) -> np.ndarray:
        """float64 [n, n_features + 1]: each feature's SHAP value for each row (LightGBM's
        TreeSHAP, ``pred_contrib=True``), the last column the model's expected value; a row sums
        to its raw score. What ``?explain=true`` shows; never computed on the serving path."""
        if self.booster is None:
            raise ValueError("ranker is not fitted")
        width = self.booster.num_feature() + 1
        if len(features) == 0:
            return np.zeros((0, width))
        out = self.booster.predict(features, pred_contrib=True, num_threads=1)
        return np.asarray(out, dtype=np.float64).reshape(len(features), width)

    def importance(self) -> dict[str, float]:
        """Each feature's total gain over the booster's splits, largest first (ties by name):
        which features the ranker actually uses, for the manifest."""
        if self.booster is None:
            raise ValueError("ranker is not fitted")
        gain = self.booster.feature_importance(importance_type="gain")
        pairs = zip(self.booster.feature_name(), np.asarray(gain, np.float64).tolist(), strict=True)
        return {name: round(g, 4) for name, g in sorted(pairs, key=lambda p: (-p[1], p[0]))}

    def save(self, path: Path) -> None:
        if self.booster is not None:
            self.booster.save_model(str(path))

    @classmethod
    def load(cls, path: Path, config: RankerConfig) -> LambdaMARTRanker:
        ranker = cls(config)
        if path.is_file():
            ranker.booster = _lightgbm().Booster(model_file=str(path))
            ranker._compile()
        return ranker


def importance_summary(importance: dict[str, float], top: int = 5) -> str:
    """One line for ``recsmith train``: the ``top`` features by share of the ranker's gain."""
    total = sum(importance.values()) or 1.0
    best = list(importance.items())[:top]
    return "ranker features by gain: " + ", ".join(
        f"{name} {100 * gain / total:.0f}%" for name, gain in best
    )
