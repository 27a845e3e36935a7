"""Settings: one typed object, read from ``recsmith.toml`` and ``RECSMITH_SECTION__KEY`` variables.

Passed explicitly to whatever needs it (CLI callback, ``create_app(settings)``); nothing reads it
globally. Precedence, strongest first: explicit arguments, environment variables, the TOML file, the
defaults below.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from recsmith.access.exposure import Exposure
from recsmith.access.rate_limit import Rate, parse_rate
from recsmith.errors import ValidationError
from recsmith.ids import MAX_ID_LENGTH
from recsmith.validation_reasons import keys_beside, nearest, unknown_key

#: How an event type turns into an interaction weight: a fixed number, the event's own value
#: ("value", e.g. a star rating) or log(1 + value) ("log_value", e.g. play counts).
Weight = float | Literal["value", "log_value"]

DEFAULT_WEIGHTS: dict[str, Weight] = {
    "view": 1.0,
    "click": 1.0,
    "dwell": 1.0,
    "add_to_cart": 3.0,
    "purchase": 5.0,
    "rating": "value",
    "play": "log_value",
}


class Section(BaseModel):
    """One ``[section]`` of the file: a key it does not define is an error, because a misspelt
    one (``[store] uri``) would otherwise be dropped and its default used without a word."""

    model_config = ConfigDict(extra="forbid")


class StoreSettings(Section):
    """Where events, items and keys live: ``sqlite:///path`` (default) or ``postgresql://…``."""

    url: str = "sqlite:///recsmith-data/recsmith.sqlite"
    dead_letter_max_bytes: int = Field(
        4096, ge=64, description="JSON size of a refused record a dead letter keeps whole"
    )
    dead_letter_retention_days: float = Field(
        30.0, gt=0, description="dead letters older than this are deleted"
    )


#: A closed interval of accepted event values: ``(lowest, highest)``.
ValueRange = tuple[float, float]

#: Accepted ``value`` per event type. Why these bounds:
#: ``rating`` [-10, 10] holds every common scale (1-5 stars, half stars, 1-10, thumbs -1/+1) while
#: a rating of 45 (tenths sent as units) or 1e308 is a client bug, and a weight far beyond the rest
#: (the value *is* the weight) would swamp every other signal of that user, or overflow float32
#: (above ~3.4e38) into inf and NaN factors. ``play`` [0, 1e9]: a count (log(1 + plays) weighs
#: it); a billion plays in one event is no listener. The other built-in types' value, when sent,
#: is a count, seconds of dwell or a price: [0, 1e9], since a negative purchase or view is a
#: client bug (a refund is no purchase: a type of its own, e.g. ``refund``, keeps the default).
DEFAULT_VALUE_RANGES: dict[str, ValueRange] = {
    "view": (0.0, 1e9),
    "click": (0.0, 1e9),
    "dwell": (0.0, 1e9),
    "add_to_cart": (0.0, 1e9),
    "purchase": (0.0, 1e9),
    "rating": (-10.0, 10.0),
    "play": (0.0, 1e9),
}
#: Any other type (one a deployment adds to ``weights``): its value does not weigh (unless
#: ``weights`` says "value"), but is stored; +-1e9 holds an amount either way (a refund's
#: negative one) and refuses 1e308.
DEFAULT_VALUE_RANGE: ValueRange = (-1e9, 1e9)


class EventSettings(Section):
    """Which event types exist, what each one weighs in the interaction matrix, and which values
    each may carry."""

    weights: dict[str, Weight] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    value_range: dict[str, ValueRange] = Field(default_factory=lambda: dict(DEFAULT_VALUE_RANGES))
    default_value_range: ValueRange = DEFAULT_VALUE_RANGE
    max_id_length: int = Field(MAX_ID_LENGTH, ge=1)
    max_context_bytes: int = Field(4096, ge=2)
    max_future_seconds: float = Field(86_400.0, ge=0)
    #: A date-time text without a time zone (``2026-01-01T10:00:00``): "reject" refuses it,
    #: naming the fix; "utc" reads it as UTC. Rejected by default because the instant it means
    #: depends on where it was written, and read as UTC from a sender in UTC+9 every such event
    #: lands 9 hours off, silently skewing recency, decay, sessions and temporal splits, which no
    #: later step can detect. Unix times are UTC by definition and every shared dataset's importer
    #: writes Unix times or ``Z`` text, so none is affected; "utc" suits files known to be in UTC
    #: (e.g. Parquet timestamp columns without a zone, as pandas writes them).
    naive_timestamps: Literal["utc", "reject"] = "reject"
    untracked: Literal["reject", "drop"] = Field(
        "reject",
        description="events of a person who withdrew tracking consent or was erased "
        "(``recsmith.privacy``): 'reject' refuses each with its reason, 'drop' leaves them out "
        "silently; neither stores anything about them (a rejection's dead letter keeps no "
        "payload)",
    )

    def range_of(self, event_type: str) -> ValueRange:
        """The accepted values of ``event_type``: its own range, else the default one."""
        return self.value_range.get(event_type, self.default_value_range)

    @field_validator("weights")
    @classmethod
    def _finite_weights(cls, weights: dict[str, Weight]) -> dict[str, Weight]:
        for name, weight in weights.items():
            if not isinstance(weight, str) and not math.isfinite(weight):
                raise ValueError(f"events.weights.{name}: must be a finite number")
        if not weights:
            raise ValueError("events.weights: at least one event type is needed")
        return weights

    @field_validator("value_range")
    @classmethod
    def _ranges(cls, ranges: dict[str, ValueRange]) -> dict[str, ValueRange]:
        """The configured table laid over the built-in one: a type the file names gets the file's
        range, the others keep theirs. Replacing the whole table would let a config written
        before a built-in range existed (one listing only rating and play) silently unbound the
        rest, e.g. accept a negative purchase after an upgrade."""
        for name, bounds in ranges.items():
            _check_range(f"events.value_range.{name}", bounds)
        return {**DEFAULT_VALUE_RANGES, **ranges}

    @field_validator("default_value_range")
    @classmethod
    def _default_range(cls, bounds: ValueRange) -> ValueRange:
        return _check_range("events.default_value_range", bounds)


def _check_range(name: str, bounds: ValueRange) -> ValueRange:
    low, high = bounds
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{name}: both bounds must be finite numbers")
    if low > high:
        raise ValueError(f"{name}: the lower bound {low:g} is above the upper bound {high:g}")
    return bounds


class FeatureSettings(Section):
    """How events become the interaction matrix."""

    half_life_days: float | None = Field(None, gt=0)


class ServingSettings(Section):
    """The HTTP server."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535, description="TCP port, 1 to 65535")
    model_dir: Path | None = None
    registry: Path | None = Field(
        None, description="model registry root: serve its current release, follow deploys"
    )
    reload_interval_s: float = Field(2.0, gt=0, description="how often to check for a deploy")
    catalog_sync_interval_s: float = Field(
        1.0,
        gt=0,
        description="how often each server process reads catalogue writes made elsewhere (other "
        "workers, replicas, imports): the longest an item change or a new item waits to be served",
    )
    state_url: str | None = Field(
        None,
        description="redis://… for online state and the response cache, shared by replicas, "
        "and a copy of the bandit counts (the store stays their source of truth); "
        "unset = in-process",
    )
    cache_entries: int = Field(
        20_000, ge=0, description="recommendation lists kept in the in-process cache (0 = off)"
    )
    cache_ttl_s: float = Field(600.0, gt=0, description="how long a cached list is kept")
    recent_items: int = Field(10, ge=0, le=200, description="latest items fed to 'recent' sources")
    max_batch: int = Field(1000, ge=1)
    max_body_bytes: int = Field(
        8 * 1024 * 1024,
        ge=1024,
        description="largest request body, after gzip decompression (413 above it). 8 MiB holds "
        "max_batch (1000) events at every per-event limit (4 ids of 256 chars, a 4 KiB context: "
        "~5.3 KB each, 5.3 MB) with room for escapes; an ordinary event is ~0.2 KB",
    )
    workers: int = Field(1, ge=1, le=64, description="server processes (each loads the model)")
    balance_connections: bool = Field(
        True,
        description="with several workers on Linux, a worker holding two or more keep-alive "
        "connections more than another closes one after a response (Connection: close), so the "
        "client's reconnect evens out the kernel's split; off = connections stay where they land",
    )
    coalesce_max_wait_ms: float = Field(
        2.0,
        ge=0,
        le=10,
        description="under load, how long at most a recommendation's pipeline call waits for "
        "requests arriving next to join it (dynamic batching): held only while the measured "
        "arrival rate expects another within it and the calls' fixed cost makes it pay; an idle "
        "server answers at once; 0 = never wait (calls take what arrived together)",
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="text (for a terminal) or json: one object per line with the request id, "
        "for log shippers",
    )
    require_keys: bool = True
    allow_no_model: bool = Field(
        False,
        description="start without a model (to collect events before the first training); "
        "otherwise `serve` refuses to",
    )


#: The scopes an API key may hold (``store.base.SCOPES``). ``admin`` implies the others.
Scope = Literal["ingest", "read", "admin"]


class AuthSettings(Section):
    """API keys at request time: per-key rate limits and what is readable without a key
    (``recsmith.access``)."""

    rate_limits: dict[Scope, str] = Field(
        default_factory=dict,
        description='per scope, e.g. read = "100/s", ingest = "6000/min": each key gets a token '
        "bucket of that size per scope (429 with Retry-After past it), shared by every process "
        "through serving.state_url's Redis when set, else per server process; a scope not "
        "listed is not limited",
    )
    expose_metrics: Exposure = Field(
        "auto",
        description="/metrics: open, key (any valid API key) or off; auto = open when "
        "serving.host is a loopback address, key otherwise",
    )
    expose_docs: Exposure = Field(
        "auto", description="/docs, /redoc and /openapi.json: like expose_metrics"
    )

    @field_validator("rate_limits")
    @classmethod
    def _rates_parse(cls, value: dict[str, str]) -> dict[str, str]:
        for scope, text in value.items():
            parse_rate(text, scope)
        return value

    def rates(self) -> dict[str, Rate]:
        return {scope: parse_rate(text, scope) for scope, text in self.rate_limits.items()}


class DecisionSettings(Section):
    """The decision log (every list served, ``recsmith.decisions``) and how events are attributed
    to it."""

    enabled: bool = Field(True, description="record every list served (off: nothing recorded)")
    retain_days: float = Field(90.0, gt=0, description="decisions older than this are deleted")
    flush_interval_s: float = Field(
        0.5,
        gt=0,
        le=1.0,
        description="how often the writer stores buffered decisions: a kill -9 loses at most "
        "this long of them (at most 1 s)",
    )
    buffer_size: int = Field(
        50_000,
        ge=1,
        description="decisions held for the writer at most; beyond it the oldest are dropped "
        "(and counted): the newest are the ones clients are about to send events for",
    )
    attribution_window_h: float = Field(
        24.0,
        ge=0,
        description="an event on an item shown to the same user at most this many hours before "
        "is attributed to the latest such list (0 = only explicit recommendation_ids)",
    )
    clicks: list[str] = Field(default_factory=lambda: ["click"], description="click event types")
    carts: list[str] = Field(
        default_factory=lambda: ["add_to_cart"], description="add-to-cart event types"
    )
    purchases: list[str] = Field(
        default_factory=lambda: ["purchase"],
        description="purchase event types (their value is revenue)",
    )

    def kinds(self) -> dict[str, str]:
        """event type -> outcome kind (click, cart, purchase) for every mapped type."""
        out: dict[str, str] = {}
        pairs = (("click", self.clicks), ("cart", self.carts), ("purchase", self.purchases))
        for kind, types in pairs:
            out.update(dict.fromkeys(types, kind))
        return out


class MonitorSettings(Section):
    """Drift and freshness of the served release (``recsmith monitor``, ``/metrics`` gauges)."""

    min_events: int = Field(
        200,
        ge=1,
        description="a drift signal over fewer events in the window is reported as "
        "'insufficient', not judged",
    )
    window: str = Field("1d", description="the recent window the server's gauges look at")
    refresh_s: float = Field(
        300.0, ge=0, description="how often `serve` recomputes the gauges (0 = never)"
    )
    thresholds: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {
            "event_mix_js": (0.05, 0.1),
            "item_popularity_psi": (0.1, 0.25),
            "unknown_users": (0.3, 0.6),
            "unknown_items": (0.1, 0.3),
            "score_psi": (0.1, 0.25),
            "feature_psi": (0.1, 0.25),
            "model_age_h": (72.0, 168.0),
            "newest_event_age_h": (1.0, 6.0),
        },
        description="signal = [warn, alert]: the signal warns at or above the first value and "
        "alerts at or above the second",
    )
    feature_sample_every: int = Field(
        20, ge=0, description="the ranker's feature rows of one query in this many are sampled"
    )
    feature_rows_per_minute: int = Field(
        300, ge=1, description="feature rows a server process records per minute at most"
    )
    feature_retain_days: float = Field(
        7.0, gt=0, description="sampled feature rows older than this are deleted"
    )
    feature_rows_kept: int = Field(
        200_000, ge=1, description="sampled feature rows kept at most (the newest)"
    )

    @field_validator("window")
    @classmethod
    def _a_span_or_date(cls, value: str) -> str:
        from recsmith.decisions.timespec import parse_time

        parse_time(value, "monitor.window")  # raises with the field and the reason
        return value

    @field_validator("thresholds")
    @classmethod
    def _known_and_ordered(
        cls, value: dict[str, tuple[float, float]]
    ) -> dict[str, tuple[float, float]]:
        from recsmith.monitoring.signals import SIGNALS

        for name, (warn, alert) in value.items():
            if name not in SIGNALS:
                raise ValueError(f"unknown signal {name!r} (known: {', '.join(SIGNALS)})")
            if warn > alert:
                raise ValueError(f"{name}: warn {warn} is above alert {alert}")
        return value


class LifecycleSettings(Section):
    """What happens to a release after a deploy (``lifecycle.rollback``)."""

    auto_rollback: bool = Field(
        True,
        description="a server following a registry rolls a just-deployed release back when it "
        "breaches the thresholds below within watch_window_s",
    )
    watch_window_s: float = Field(600.0, gt=0, description="how long a new release is watched")
    min_requests: int = Field(
        200, ge=1, description="requests to the model routes needed before judging"
    )
    max_error_rate: float = Field(0.02, ge=0, le=1, description="5xx share that rolls back")
    max_p99_ms: float = Field(1000.0, gt=0, description="p99 latency (ms) that rolls back")
    retrain_every: str | None = Field(
        None,
        description="servers following a registry retrain it this often (24h, 7d; one run at a "
        "time across replicas); unset = never",
    )
    retrain_gates: list[str] = Field(
        default_factory=lambda: ["ndcg@10 >= 0.98 * current"],
        description="what a scheduled retrain must pass to deploy (recsmith retrain --gate)",
    )

    shadow_release: str | None = Field(
        None,
        description="a registry release that scores a sample of live requests beside the served "
        "one, unseen (overlap and latency recorded; PUT /v1/admin/shadow changes it)",
    )
    shadow_sample: float = Field(
        0.1, gt=0, le=1, description="the share of recommendation requests the shadow scores"
    )

    @field_validator("retrain_every")
    @classmethod
    def _a_span(cls, value: str | None) -> str | None:
        from recsmith.decisions.timespec import span_seconds

        if value is not None:
            span_seconds(value, "lifecycle.retrain_every")
        return value

    @field_validator("retrain_gates")
    @classmethod
    def _gates(cls, value: list[str]) -> list[str]:
        from recsmith.lifecycle.gate import parse_gate

        if not value:
            raise ValueError("at least one gate is needed")
        for text in value:
            parse_gate(text, "lifecycle.retrain_gates")
        return value


class CappingSettings(Section):
    """Frequency capping across placements (``recsmith.capping``); off by default. A request's
    ``page_view_id`` works without it: it needs only the decision log."""

    enabled: bool = Field(False, description="cap how often one person is shown one item")
    max_shows: int = Field(
        3, ge=1, description="an item shown this many times within window is capped"
    )
    window: str = Field("1d", description="the span shows are counted over (30m, 24h, 7d)")
    action: Literal["drop", "demote"] = Field(
        "drop",
        description="drop: left out of the list; demote: moved below every other item (an "
        "exploring pipeline drops)",
    )

    @field_validator("window")
    @classmethod
    def _a_span(cls, value: str) -> str:
        from recsmith.decisions.timespec import span_seconds

        span_seconds(value, "capping.window")
        return value


class PrivacySettings(Section):
    """Erasure, consent and retention (``recsmith.privacy``): how long personal data is kept and
    what happens to events of a person who withdrew consent to tracking."""

    retain_events_days: float | None = Field(
        None, gt=0, description="`recsmith purge` deletes events older than this (unset: kept)"
    )
    retain_decisions_days: float | None = Field(
        None,
        gt=0,
        description="`recsmith purge` deletes served lists older than this (unset: "
        "decisions.retain_days, which the server's decision writer also applies hourly)",
    )
    retain_dead_letters_days: float | None = Field(
        None,
        gt=0,
        description="`recsmith purge` deletes dead letters older than this (unset: kept)",
    )
    purge_interval_h: float | None = Field(
        None, gt=0, description="`serve` runs the purge every this many hours (unset: never)"
    )
    erase_settle_s: float = Field(
        2.5,
        ge=0,
        le=30,
        description="an erasure sweeps the store and online state a second time after this long, "
        "for what other server processes recorded before they learned of it (their decision "
        "writers flush within 1 s, their privacy view within serving.catalog_sync_interval_s)",
    )


class Settings(BaseSettings):
    """Everything configurable, by section (mirrors the TOML file and the modules)."""

    model_config = SettingsConfigDict(
        env_prefix="RECSMITH_", env_nested_delimiter="__", extra="forbid"
    )

    store: StoreSettings = Field(default_factory=StoreSettings)
    events: EventSettings = Field(default_factory=EventSettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    decisions: DecisionSettings = Field(default_factory=DecisionSettings)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    lifecycle: LifecycleSettings = Field(default_factory=LifecycleSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    capping: CappingSettings = Field(default_factory=CappingSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


ENV_PREFIX: str = Settings.model_config["env_prefix"]
ENV_DELIMITER: str = Settings.model_config["env_nested_delimiter"]


def _env_variable(section: str, key: str) -> str:
    return f"{ENV_PREFIX}{section.upper()}{ENV_DELIMITER}{key.upper()}"


def env_key_problems(environ: Mapping[str, str]) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """Problems with ``RECSMITH_*`` variables that pydantic-settings would silently ignore, and
    the variables that set a key inside a known section (``store.uri`` -> its name), so an
    unknown one is reported under the name the user typed.

    Ignored by pydantic-settings: a variable for a section that does not exist
    (``RECSMITH_SERVNG__PORT``) and one with a single underscore after its section
    (``RECSMITH_SERVING_PORT``). Other ``RECSMITH_*`` names (e.g. the test suite's
    ``RECSMITH_REQUIRE_POSTGRES``) are not settings and are left alone.
    """
    sections = list(Settings.model_fields)
    problems: list[tuple[str, str]] = []
    named: dict[str, str] = {}
    for name in environ:
        if not name.upper().startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section, nested, key = rest.partition(ENV_DELIMITER)
        if nested and section in sections:
            named[f"{section}.{key.split(ENV_DELIMITER)[0]}"] = name
        elif nested:
            near = nearest(section, sections)
            fix = _env_variable(near, key) if near else None
            hint = f"did you mean {fix}?" if fix else f"valid: {', '.join(sections)}"
            problems.append((name, f"unknown section {section} ({hint})"))
        elif section not in sections:
            head = next((s for s in sections if rest.startswith(f"{s}_")), None)
            if head is not None:
                fix = _env_variable(head, rest[len(head) + 1 :])
                problems.append((name, f"not a setting (did you mean {fix}? two underscores)"))
    return problems, named


class ConfigError(ValidationError):
    """Settings that cannot be used: one ``setting: reason`` line per problem.

    A ``ValidationError`` (so the CLI maps it to its usage exit code like any bad input) that keeps
    every problem pydantic found, because fixing a config file one error per run is tedious, and
    pydantic's own report (URLs, input types, a traceback) is not meant for the people who edit
    the file or the environment.
    """

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        super().__init__(problems[0][0], problems[0][1])
        self.problems = list(problems)
        self.args = ("\n".join(f"{field}: {reason}" for field, reason in self.problems),)

    def __str__(self) -> str:
        return str(self.args[0])

    @classmethod
    def from_pydantic(
        cls, exc: pydantic.ValidationError, env_names: Mapping[str, str] | None = None
    ) -> ConfigError:
        """Each pydantic error as ``section.key: reason``, named as the TOML file names it, or
        by its variable's name where ``env_names`` says one set it."""
        problems = []
        for err in exc.errors():
            field = ".".join(str(part) for part in err["loc"]) or "settings"
            if err["type"] == "extra_forbidden":
                variable = (env_names or {}).get(field)
                spell = None
                if variable is not None and len(err["loc"]) == 2:
                    field, section = variable, str(err["loc"][0])
                    spell = {
                        k: _env_variable(section, k) for k in keys_beside(Settings, err["loc"])
                    }
                reason = unknown_key(Settings, err["loc"], spell)
            elif err["type"] == "value_error" and "error" in err.get("ctx", {}):
                reason = str(err["ctx"]["error"])  # our validators' text, without "Value error, "
            else:
                reason = err["msg"]
                if isinstance(err["input"], str | int | float | bool):
                    reason += f" (got {err['input']!r})"
            if reason.startswith((f"{field}.", f"{field}:")):  # the validator named it already
                field, _, reason = reason.partition(": ")
            problems.append((field, reason))
        return cls(problems)


def load_settings(path: Path | None = None, **overrides: object) -> Settings:
    """Read settings from ``path`` (or ``./recsmith.toml`` when it exists), then the environment.

    Every way these can be wrong (unparseable TOML, a bad or unknown value, malformed JSON in a
    ``RECSMITH_*`` variable) raises ``ConfigError``, so callers have one exception to report.
    """
    if path is None and Path("recsmith.toml").is_file():
        path = Path("recsmith.toml")
    if path is not None and not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")

    class _FromFile(Settings):
        model_config = SettingsConfigDict(**{**Settings.model_config, "toml_file": path})

    env_problems, env_names = env_key_problems(os.environ)
    try:
        loaded = _FromFile(**overrides)  # type: ignore[arg-type]
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([(str(path), f"not valid TOML: {exc}")]) from None
    except UnicodeDecodeError:
        raise ConfigError([(str(path), "not UTF-8 text")]) from None
    except pydantic.ValidationError as exc:
        found = ConfigError.from_pydantic(exc, env_names).problems
        raise ConfigError([*env_problems, *found]) from None
    except SettingsError as exc:  # a RECSMITH_SECTION variable that is not valid JSON
        found = re.search(r'field "([^"]+)"', str(exc))
        section = found.group(1) if found else "settings"
        variable = f"{Settings.model_config['env_prefix']}{section.upper()}"
        raise ConfigError([(section, f"{variable} is not valid JSON")]) from None
    if env_problems:
        raise ConfigError(env_problems)
    return Settings.model_validate({**loaded.model_dump()})


def with_overrides(
    settings: Settings, flags: Mapping[str, str] | None = None, **sections: Mapping[str, Any]
) -> Settings:
    """``settings`` with some keys of some sections replaced (command-line options), validated.

    ``model_copy(update=...)`` would skip validation, so ``serve --port 99999`` would get past the
    same limits a config file is held to; this re-validates and names the setting when it fails,
    or the option the user typed where ``flags`` maps the setting to it (``serving.port`` →
    ``--port``: the file may not even set it).
    """
    data = settings.model_dump()
    for section, values in sections.items():
        data[section] = {**data[section], **values}
    try:
        return Settings.model_validate(data)
    except pydantic.ValidationError as exc:
        error = ConfigError.from_pydantic(exc)
        if flags:
            error = ConfigError([(flags.get(f, f), reason) for f, reason in error.problems])
        raise error from None
