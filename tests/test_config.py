"""Settings: defaults, the TOML file, environment overrides, and clear errors."""

from pathlib import Path

import pytest

from recsmith.config import ConfigError, load_settings, with_overrides
from recsmith.errors import ValidationError

ROOT = Path(__file__).resolve().parents[1]


def test_example_config_loads_and_matches_defaults() -> None:
    example = load_settings(ROOT / "recsmith.example.toml")
    assert example.events.weights == load_settings(None).events.weights
    assert example.events.value_range == load_settings(None).events.value_range
    assert example.events.default_value_range == load_settings(None).events.default_value_range
    assert example.events.naive_timestamps == load_settings(None).events.naive_timestamps
    assert example.serving.model_dir == Path("recsmith-data/model")
    assert example.decisions == load_settings(None).decisions
    assert example.monitor == load_settings(None).monitor
    assert example.lifecycle == load_settings(None).lifecycle


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "r.toml"
    cfg.write_text('[store]\nurl = "sqlite:///a.sqlite"\n[serving]\nport = 9000\n')
    monkeypatch.setenv("RECSMITH_SERVING__PORT", "9100")
    settings = load_settings(cfg)
    assert settings.store.url == "sqlite:///a.sqlite"
    assert settings.serving.port == 9100


def test_bad_values_name_the_field(tmp_path: Path) -> None:
    cfg = tmp_path / "r.toml"
    cfg.write_text('[events.weights]\nview = "lots"\n')
    with pytest.raises(ConfigError, match="weights"):
        load_settings(cfg)


def test_every_problem_is_one_line_naming_its_setting(tmp_path: Path) -> None:
    cfg = tmp_path / "r.toml"
    cfg.write_text('[serving]\nport = "abc"\n\n[nosuchsection]\nx = 1\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(cfg)
    assert isinstance(caught.value, ValidationError)  # the CLI's usage-error kind
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("serving.port: ") and "'abc'" in lines[0]
    assert lines[1].startswith("nosuchsection: unknown section")


def test_validator_messages_are_not_doubled(tmp_path: Path) -> None:
    cfg = tmp_path / "r.toml"
    cfg.write_text("[events.weights]\nview = nan\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(cfg)
    assert str(caught.value) == "events.weights.view: must be a finite number"


def test_unparseable_toml_names_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[store\nurl=")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML: .*line 1"):
        load_settings(cfg)


def test_environment_errors_name_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./recsmith.toml
    monkeypatch.setenv("RECSMITH_SERVING__PORT", "abc")
    with pytest.raises(ConfigError, match=r"^serving\.port: "):
        load_settings(None)
    monkeypatch.delenv("RECSMITH_SERVING__PORT")
    monkeypatch.setenv("RECSMITH_SERVING", "{not json")
    with pytest.raises(ConfigError, match=r"^serving: RECSMITH_SERVING is not valid JSON$"):
        load_settings(None)


@pytest.mark.parametrize("port", [0, -1, 65536, 99999])
def test_port_out_of_range_in_file_names_serving_port(tmp_path: Path, port: int) -> None:
    cfg = tmp_path / "r.toml"
    cfg.write_text(f"[serving]\nport = {port}\n")
    with pytest.raises(ConfigError, match=r"^serving\.port: "):
        load_settings(cfg)


def test_overrides_are_validated_like_the_file() -> None:
    """Command-line values go through the same limits (model_copy would skip them)."""
    settings = load_settings(ROOT / "recsmith.example.toml")
    assert with_overrides(settings, serving={"port": 65535}).serving.port == 65535
    for port in (99999, -1):
        with pytest.raises(ConfigError, match=r"^serving\.port: "):
            with_overrides(settings, serving={"port": port})


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        (
            "[events.value_range]\nrating = [5, 1]\n",
            "events.value_range.rating: the lower bound 5 is above the upper bound 1",
        ),
        (
            "[events.value_range]\nrating = [0, inf]\n",
            "events.value_range.rating: both bounds must be finite numbers",
        ),
        (
            "[events]\ndefault_value_range = [nan, 1]\n",
            "events.default_value_range: both bounds must be finite numbers",
        ),
    ],
)
def test_a_bad_value_range_names_its_key(tmp_path: Path, toml: str, problem: str) -> None:
    cfg = tmp_path / "r.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_settings(cfg)
    assert str(caught.value) == problem


def test_value_ranges_from_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "r.toml"
    cfg.write_text(
        "[events]\ndefault_value_range = [0, 60]\n[events.value_range]\nrating = [1, 5]\n"
    )
    events = load_settings(cfg).events
    assert events.range_of("rating") == (1.0, 5.0)
    assert events.range_of("play") == (0.0, 1e9)  # built in, kept: the table is laid over it
    assert events.range_of("like") == (0.0, 60.0)  # no range of its own


def test_a_range_table_listing_only_rating_and_play_keeps_the_other_built_in_ranges(
    tmp_path: Path,
) -> None:
    """The ``[events.value_range]`` block of the example before purchase & co. had ranges: an
    upgraded deployment that copied it must still refuse a negative purchase."""
    cfg = tmp_path / "r.toml"
    cfg.write_text("[events.value_range]\nrating = [-10.0, 10.0]\nplay = [0.0, 1e9]\n")
    events = load_settings(cfg).events
    assert {t: events.range_of(t) for t in ("purchase", "view", "rating")} == {
        "purchase": (0.0, 1e9),
        "view": (0.0, 1e9),
        "rating": (-10.0, 10.0),
    }
    cfg.write_text("[events.value_range]\npurchase = [-500, 500]\n")
    assert load_settings(cfg).events.range_of("purchase") == (-500.0, 500.0)  # the file's wins


def test_naive_timestamps_takes_one_of_two_words(tmp_path: Path) -> None:
    cfg = tmp_path / "r.toml"
    cfg.write_text('[events]\nnaive_timestamps = "utc"\n')
    assert load_settings(cfg).events.naive_timestamps == "utc"
    cfg.write_text('[events]\nnaive_timestamps = "local"\n')
    with pytest.raises(ConfigError, match=r"events\.naive_timestamps"):
        load_settings(cfg)


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        ('[store]\nuri = "postgresql://db/x"\n', "store.uri: unknown key (did you mean url?)"),
        ("[serving]\nprot = 8000\n", "serving.prot: unknown key (did you mean port?)"),
        (
            "[features]\nhalflife_days = 3\n",
            "features.halflife_days: unknown key (did you mean half_life_days?)",
        ),
        ("[features]\nzzz = 1\n", "features.zzz: unknown key (valid: half_life_days)"),
        ("[srving]\nport = 1\n", "srving: unknown section (did you mean serving?)"),
    ],
)
def test_a_misspelt_key_in_any_section_is_an_error_naming_the_nearest(
    tmp_path: Path, toml: str, problem: str
) -> None:
    cfg = tmp_path / "r.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_settings(cfg)
    assert str(caught.value) == problem


def test_keys_of_open_tables_are_not_misspellings(tmp_path: Path) -> None:
    """``[events.weights]`` and ``[events.value_range]`` name event types, which are free."""
    cfg = tmp_path / "r.toml"
    cfg.write_text("[events.weights]\nlike = 2.0\n[events.value_range]\nstars = [0, 5]\n")
    settings = load_settings(cfg)
    assert settings.events.weights == {"like": 2.0}
    assert settings.events.value_range["stars"] == (0.0, 5.0)


@pytest.mark.parametrize(
    ("variable", "problem"),
    [
        (
            "RECSMITH_STORE__URI",
            "RECSMITH_STORE__URI: unknown key (did you mean RECSMITH_STORE__URL?)",
        ),
        (
            "RECSMITH_SERVING_PORT",
            "RECSMITH_SERVING_PORT: not a setting "
            "(did you mean RECSMITH_SERVING__PORT? two underscores)",
        ),
        (
            "RECSMITH_SERVNG__PORT",
            "RECSMITH_SERVNG__PORT: unknown section servng (did you mean RECSMITH_SERVING__PORT?)",
        ),
    ],
)
def test_a_misspelt_environment_variable_is_named_as_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, problem: str
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./recsmith.toml
    monkeypatch.setenv(variable, "8001")
    with pytest.raises(ConfigError) as caught:
        load_settings(None)
    assert str(caught.value) == problem


def test_other_recsmith_variables_are_not_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test suite's own switches share the prefix; they are not settings to check."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECSMITH_REQUIRE_POSTGRES", "1")
    monkeypatch.setenv("RECSMITH_SERVE_SETTINGS_JSON", "{}")
    monkeypatch.setenv("RECSMITH_SERVING__PORT", "8123")
    assert load_settings(None).serving.port == 8123
