"""The parts of a trained release that drift is judged against, read without loading its models.

Loading a 100k-item pipeline takes seconds and hundreds of MB; the monitor needs only the id maps,
how many users interacted with each item (``seen/``: the popularity the models learnt), and the
manifest's training profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from recsmith.array_files import read_arrays
from recsmith.bundle import read_ids, read_manifest
from recsmith.ids import IdMap
from recsmith.models.base import sparse_from_arrays
from recsmith.monitoring.features import KEY as FEATURES_KEY
from recsmith.monitoring.profile import KEY
from recsmith.monitoring.scores import KEY as SCORES_KEY


@dataclass(frozen=True)
class ReleaseView:
    version: str
    created_at: datetime
    users: IdMap
    items: IdMap
    #: distinct training users per item, aligned with ``items``
    item_users: np.ndarray
    #: ``monitoring.profile.data_profile`` of the training events; None for a release trained
    #: before profiles were recorded
    profile: dict[str, Any] | None
    #: ``monitoring.scores.score_profile`` of its lists at training; None for a single model or
    #: a release trained before score profiles were recorded
    scores: dict[str, Any] | None = None
    #: ``monitoring.features.feature_profile`` of its ranker's rows at training; None without
    #: a ranker or for a release trained before feature profiles were recorded
    features: dict[str, Any] | None = None

    @classmethod
    def read(cls, path: Path) -> ReleaseView:
        manifest = read_manifest(path)
        users, items = read_ids(path)
        seen = sparse_from_arrays("seen_", read_arrays(path / "seen", path / "seen.npz"))
        item_users = np.bincount(seen.indices, minlength=len(items))[: len(items)]
        return cls(
            version=str(manifest["version"]),
            created_at=datetime.fromisoformat(str(manifest["created_at"])),
            users=users,
            items=items,
            item_users=item_users.astype(np.int64),
            profile=manifest.get(KEY),
            scores=manifest.get(SCORES_KEY),
            features=manifest.get(FEATURES_KEY),
        )
