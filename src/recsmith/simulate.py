"""A synthetic shop with known ground truth: deterministic under a seed, fast, and learnable.

It is the embedded default data for ``recsmith quickstart``, the fixture for fast tests, and the
environment for A/B-test and bandit simulations, which need the *true* affinity of any (user, item)
pair, not just the logged events. Latent structure: each item belongs to one category and its factor
is the category centroid plus noise; a user's factor is a Dirichlet mixture of a few centroids plus
noise; items carry a Zipf popularity bias. Sessions draw items by softmax(affinity / temperature),
some of them staying inside one category, so co-occurrence looks like real browsing. Everything is
vectorised; only users are chunked, so memory stays bounded for 50k users x 100k items.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from recsmith.ids import IdMap

_CATEGORIES = (
    ("books", "novel"),
    ("electronics", "headphones"),
    ("kitchen", "pan"),
    ("garden", "planter"),
    ("toys", "puzzle"),
    ("sports", "racket"),
    ("beauty", "serum"),
    ("fashion", "jacket"),
    ("shoes", "sneakers"),
    ("music", "vinyl"),
    ("movies", "box set"),
    ("games", "board game"),
    ("home", "lamp"),
    ("office", "notebook"),
    ("pets", "pet bed"),
    ("baby", "stroller"),
    ("automotive", "car mat"),
    ("health", "vitamins"),
    ("grocery", "coffee"),
    ("outdoors", "tent"),
)
_ADJECTIVES = (
    "Classic",
    "Compact",
    "Deluxe",
    "Eco",
    "Essential",
    "Premium",
    "Smart",
    "Vintage",
    "Urban",
    "Pro",
    "Lite",
    "Everyday",
)
_SYLLABLES = ("no", "va", "ker", "lu", "mi", "tor", "sa", "bel", "ri", "zon", "ta", "quin", "do")
EVENT_TYPES = ("view", "add_to_cart", "purchase")


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """Knobs of the synthetic shop; the defaults give ~2k users, 1k items, ~60k events.

    ``popularity_exponent`` is the Zipf exponent of the popularity part of the choice distribution;
    ``taste_concentration`` is the Dirichlet alpha of a user's category mixture (0.1 over 20
    categories means ~2-3 liked categories; larger spreads tastes thin). Add-to-cart and purchase
    probabilities are logistic in the true affinity, so conversions are the strongest signal.
    ``chunk_cells`` bounds the users x items block held in memory at once. ``user_seed``, when
    set, draws users, sessions and choices from their own stream (the catalogue still comes from
    ``seed``): shards with one ``seed`` and different ``user_seed`` are parts of one shop with
    different customers, so a log too large to simulate at once is written shard by shard.
    """

    n_users: int = 2000
    n_items: int = 1000
    n_categories: int = 20
    n_factors: int = 16
    days: int = 60
    sessions_per_user: float = 5.0
    events_per_session: float = 6.0
    popularity_exponent: float = 1.0
    taste_concentration: float = 0.1
    taste_strength: float = 8.0
    item_noise: float = 0.5
    user_noise: float = 0.5
    temperature: float = 1.0
    focused_session_share: float = 0.5
    cart_intercept: float = -4.8
    cart_slope: float = 0.37
    purchase_intercept: float = -1.7
    purchase_slope: float = 0.2
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    seed: int = 0
    user_seed: int | None = None
    chunk_cells: int = 4_000_000

    def __post_init__(self) -> None:
        for name in ("n_users", "n_items", "n_categories", "n_factors", "days", "chunk_cells"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        for name in ("sessions_per_user", "events_per_session"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1 (every user/session has at least one)")
        if self.temperature <= 0 or self.taste_concentration <= 0:
            raise ValueError("temperature and taste_concentration must be > 0")
        if not 0 <= self.focused_session_share <= 1:
            raise ValueError("focused_session_share must be in [0, 1]")
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _iso(start: datetime, seconds: np.ndarray) -> np.ndarray:
    """ISO 8601 UTC strings (``2026-01-01T08:30:05Z``): what importers and JSON carry verbatim."""
    t0 = np.datetime64(start.astimezone(UTC).replace(tzinfo=None), "s")
    stamps = t0 + seconds.astype("timedelta64[s]")
    return np.datetime_as_string(stamps, unit="s", timezone="UTC").astype(object)


def _ids(prefix: str, n: int, min_width: int) -> np.ndarray:
    digits = np.char.zfill(np.arange(n).astype(str), max(min_width, len(str(n - 1))))
    return np.char.add(prefix, digits).astype(object)


@dataclass(frozen=True, eq=False)
class Simulation:
    """Logged events and catalog of a simulated shop, plus the ground truth that generated them.

    ``events`` has the importer columns (user_id, item_id, event_type, value=NaN, timestamp as ISO
    8601 UTC strings like ``2026-01-01T08:30:05Z``, session_id), sorted by time, so it goes straight
    into ``validate_events``. ``items`` are dicts accepted by ``validate_items``.
    """

    config: SimulationConfig
    events: pd.DataFrame
    items: list[dict[str, object]]
    user_map: IdMap
    item_map: IdMap
    category_names: tuple[str, ...]
    item_category: np.ndarray  # [n_items] int
    user_taste: np.ndarray  # [n_users, n_categories] Dirichlet weights
    user_factors: np.ndarray  # [n_users, n_factors]
    item_factors: np.ndarray  # [n_items, n_factors]
    item_bias: np.ndarray  # [n_items] popularity bias (log-Zipf, times temperature)

    def _index(
        self, user_ids: Sequence[str] | np.ndarray, item_ids: Sequence[str] | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        u, i = self.user_map.to_index(user_ids), self.item_map.to_index(item_ids)
        for name, idx, ids in (("user", u, user_ids), ("item", i, item_ids)):
            if (idx < 0).any():
                raise KeyError(f"unknown {name} id {np.asarray(ids, dtype=object)[idx < 0][0]!r}")
        return u, i

    def preference(
        self, user_ids: Sequence[str] | np.ndarray, item_ids: Sequence[str] | np.ndarray
    ) -> np.ndarray:
        """True affinity [len(user_ids), len(item_ids)]: user factors . item factors + item bias.

        Dense output: callers with many users should pass them in chunks.
        """
        u, i = self._index(user_ids, item_ids)
        return self.user_factors[u] @ self.item_factors[i].T + self.item_bias[i]

    def cart_probability(
        self, user_ids: Sequence[str] | np.ndarray, item_ids: Sequence[str] | np.ndarray
    ) -> np.ndarray:
        """P(add_to_cart | user views item), shape [users, items]."""
        c = self.config
        return _sigmoid(c.cart_intercept + c.cart_slope * self.preference(user_ids, item_ids))

    def purchase_probability(
        self, user_ids: Sequence[str] | np.ndarray, item_ids: Sequence[str] | np.ndarray
    ) -> np.ndarray:
        """P(purchase | user views item), shape [users, items]: the reward a bandit should learn."""
        c = self.config
        pref = self.preference(user_ids, item_ids)
        return _sigmoid(c.cart_intercept + c.cart_slope * pref) * _sigmoid(
            c.purchase_intercept + c.purchase_slope * pref
        )


def simulate(config: SimulationConfig | None = None, **overrides: object) -> Simulation:
    """Simulate the shop described by ``config`` (defaults, with keyword ``overrides`` applied).

    No random draw happens inside the chunk loop, so results depend on the seed only, never on
    ``chunk_cells``. Memory is O(chunk_cells + events); time is O(n_users x n_items).
    """
    cfg = dataclasses.replace(config or SimulationConfig(), **overrides)  # type: ignore[arg-type]
    rng = np.random.default_rng(cfg.seed)
    n_u, n_i, n_c, k = cfg.n_users, cfg.n_items, cfg.n_categories, cfg.n_factors
    temp = cfg.temperature

    # Latent structure: unit-norm centroids, items around them, users as taste mixtures of them.
    centroids = rng.standard_normal((n_c, k))
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    item_cat = rng.choice(n_c, size=n_i, p=rng.dirichlet(np.full(n_c, 5.0)))
    item_f = centroids[item_cat] + cfg.item_noise * rng.standard_normal((n_i, k)) / np.sqrt(k)
    # One stream for everything without a user seed (the results of every seed stay as they were).
    users_rng = rng if cfg.user_seed is None else np.random.default_rng((cfg.seed, cfg.user_seed))
    taste = users_rng.dirichlet(np.full(n_c, cfg.taste_concentration), size=n_u)
    user_f = cfg.taste_strength * (taste @ centroids)
    user_f += cfg.user_noise * users_rng.standard_normal((n_u, k)) / np.sqrt(k)
    log_pop = -cfg.popularity_exponent * np.log1p(rng.permutation(n_i))
    bias = temp * (log_pop - log_pop.mean())  # Zipf(exponent) once divided by the temperature

    # Session skeleton: users -> sessions -> views, all contiguous, so a user chunk is a slice.
    n_sess = 1 + users_rng.poisson(cfg.sessions_per_user - 1, n_u)
    sess_user = np.repeat(np.arange(n_u), n_sess)
    n_s = len(sess_user)
    n_views_s = 1 + users_rng.poisson(cfg.events_per_session - 1, n_s)
    view_sess = np.repeat(np.arange(n_s), n_views_s)
    n_v = len(view_sess)
    sess_first = np.concatenate(([0], np.cumsum(n_views_s)[:-1]))
    focused = users_rng.random(n_s) < cfg.focused_session_share
    u_pick, u_cart, u_buy = users_rng.random(n_v), users_rng.random(n_v), users_rng.random(n_v)
    view_user = sess_user[view_sess]

    # Items sorted by category, so "inside category c" is a contiguous range of each user's row.
    order = np.argsort(item_cat, kind="stable")
    cat_sorted, f_sorted, b_sorted = item_cat[order], item_f[order].T / temp, bias[order] / temp
    cat_lo = np.searchsorted(cat_sorted, np.arange(n_c), side="left")
    cat_hi = np.searchsorted(cat_sorted, np.arange(n_c), side="right")
    pos = np.empty(n_v, dtype=np.int64)
    aff = np.empty(n_v)
    is_first = np.zeros(n_v, dtype=bool)
    is_first[sess_first] = True
    chunk = max(1, cfg.chunk_cells // n_i)
    for a in range(0, n_u, chunk):
        b = min(n_u, a + chunk)
        va, vb = np.searchsorted(view_user, [a, b])
        w = user_f[a:b] @ f_sorted
        w += b_sorted
        w -= w.max(axis=1, keepdims=True)
        # One flat running sum over the whole block: row r owns (cum[r*n-1], cum[r*n+n-1]], so a
        # single searchsorted samples every user's softmax (inverse CDF) without normalising rows.
        cum = np.cumsum(np.exp(w, out=w).ravel())
        base = (view_user[va:vb] - a) * n_i
        lo, hi = np.zeros(vb - va, dtype=np.int64), np.full(vb - va, n_i, dtype=np.int64)
        for first_pass in (True, False):  # first views pick the category a focused session keeps
            sel = np.flatnonzero(is_first[va:vb] == first_pass)
            if not first_pass:
                sess = view_sess[va + sel]
                keep = focused[sess]
                cat = cat_sorted[pos[sess_first[sess]]]
                lo[sel] = np.where(keep, cat_lo[cat], 0)
                hi[sel] = np.where(keep, cat_hi[cat], n_i)
            s0, s1 = base[sel] + lo[sel], base[sel] + hi[sel]
            lower = np.where(s0 > 0, cum[np.maximum(s0 - 1, 0)], 0.0)
            target = lower + u_pick[va + sel] * (cum[s1 - 1] - lower)
            hit = np.clip(np.searchsorted(cum, target, side="right"), s0, s1 - 1)
            pos[va + sel] = hit - base[sel]
        item = order[pos[va:vb]]
        aff[va:vb] = np.einsum("ij,ij->i", user_f[view_user[va:vb]], item_f[item]) + bias[item]

    # Conversions, then expand each view into view [+ add_to_cart [+ purchase]] rows.
    cart = u_cart < _sigmoid(cfg.cart_intercept + cfg.cart_slope * aff)
    buy = cart & (u_buy < _sigmoid(cfg.purchase_intercept + cfg.purchase_slope * aff))
    per_view = 1 + cart.astype(np.int64) + buy
    row_view = np.repeat(np.arange(n_v), per_view)
    kind = np.arange(len(row_view)) - np.repeat(np.cumsum(per_view) - per_view, per_view)
    means = np.array([40.0, 20.0, 60.0])[kind]  # seconds before a view / add_to_cart / purchase
    gaps = np.ceil(users_rng.exponential(means) + np.array([5.0, 3.0, 10.0])[kind]).astype(np.int64)
    row_sess = view_sess[row_view]
    first_row = np.searchsorted(row_sess, np.arange(n_s))
    gaps[first_row] = 0
    elapsed = np.cumsum(gaps)
    offset = elapsed - elapsed[first_row][row_sess]
    duration = np.maximum.reduceat(offset, first_row)
    window = cfg.days * 86_400
    start = np.floor(users_rng.random(n_s) * np.maximum(window - 1 - duration, 0)).astype(np.int64)
    ts = start[row_sess] + offset
    by_time = np.argsort(ts, kind="stable")

    user_map, item_map = IdMap(_ids("u", n_u, 4)), IdMap(_ids("i", n_i, 5))
    rv = row_view[by_time]
    events = pd.DataFrame(
        {
            "user_id": user_map.external_ids[view_user[rv]],
            "item_id": item_map.external_ids[order[pos[rv]]],
            "event_type": np.array(EVENT_TYPES, dtype=object)[kind[by_time]],
            "value": np.full(len(rv), np.nan),
            "timestamp": _iso(cfg.start, ts[by_time]),
            "session_id": _ids("s", n_s, 6)[row_sess[by_time]],
        }
    )
    names = tuple(
        _CATEGORIES[c][0] if c < len(_CATEGORIES) else f"category-{c + 1}" for c in range(n_c)
    )
    items = _catalog(rng, cfg, item_map.external_ids, item_cat, names)
    return Simulation(
        config=cfg,
        events=events,
        items=items,
        user_map=user_map,
        item_map=item_map,
        category_names=names,
        item_category=item_cat,
        user_taste=taste,
        user_factors=user_f,
        item_factors=item_f,
        item_bias=bias,
    )


def _catalog(
    rng: np.random.Generator,
    cfg: SimulationConfig,
    item_ids: np.ndarray,
    item_cat: np.ndarray,
    names: tuple[str, ...],
) -> list[dict[str, object]]:
    """Catalog records whose text, tags and price carry the category, for content-based models."""
    n_c, n_i = cfg.n_categories, len(item_ids)
    syl = np.array(_SYLLABLES, dtype=object)
    brands = syl[rng.integers(0, len(syl), (n_c, 6))] + syl[rng.integers(0, len(syl), (n_c, 6))]
    brand = np.char.capitalize(brands[item_cat, rng.integers(0, 6, n_i)].astype(str)).astype(object)
    adj = np.array(_ADJECTIVES, dtype=object)[rng.integers(0, len(_ADJECTIVES), n_i)]
    nouns = np.array(
        [_CATEGORIES[c][1] if c < len(_CATEGORIES) else "item" for c in range(n_c)], dtype=object
    )
    titles = adj + " " + brand + " " + nouns[item_cat]
    base = rng.lognormal(3.0, 0.8, n_c)
    price = np.maximum(np.round(base[item_cat] * rng.lognormal(0.0, 0.4, n_i), 2), 0.99)
    band = np.where(
        price < base[item_cat] * 0.8,
        "budget",
        np.where(price > base[item_cat] * 1.25, "premium", "mid"),
    )
    created = _iso(cfg.start, -rng.integers(86_400, 365 * 86_400, n_i))
    return [
        {
            "item_id": iid,
            "categories": [names[c]],
            "tags": [names[c], a.lower(), bd],
            "text": title,
            "properties": {"price": float(p), "brand": br},
            "available": True,
            "created_at": ca,
        }
        for iid, c, a, bd, title, p, br, ca in zip(
            item_ids,
            item_cat.tolist(),
            adj,
            band.tolist(),
            titles,
            price.tolist(),
            brand,
            created,
            strict=True,
        )
    ]
