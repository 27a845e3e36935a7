"""Bad input through the CLI: one ``error: <field>: <reason>`` line per problem and the documented
exit code (2 for usage and config errors), never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rich.text import Text
from typer.testing import CliRunner

from recsmith.cli.app import app

pytestmark = pytest.mark.usefixtures("audit_store")  # deploy & co. write the audit trail

runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def assert_usage_error(code: int, err: str, *needles: str) -> None:
    """Exit 2, no traceback, every stderr line an ``error:`` line, each needle present."""
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines and all(line.startswith("error: ") for line in lines), err
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.fixture(scope="module")
def model_dir(events_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("m") / "model"
    code, _, err = run("train", "--data", str(events_csv), "--model", "popular", "--out", str(out))
    assert code == 0, err
    return out


def test_unparseable_config_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[store\nurl=")
    assert_usage_error(*run("-c", str(bad), "version")[::2], "bad.toml: not valid TOML")


def test_bad_config_values_are_one_line_each(tmp_path: Path) -> None:
    cfg = tmp_path / "r.toml"
    cfg.write_text('[serving]\nport = "abc"\n\n[nosuchsection]\nx = 1\n')
    code, _, err = run("-c", str(cfg), "version")
    assert_usage_error(code, err, "error: serving.port: ", "error: nosuchsection: unknown section")
    assert len(err.strip().splitlines()) == 2


def test_bad_environment_value_names_the_setting(tmp_path: Path) -> None:
    cfg = tmp_path / "r.toml"
    cfg.write_text("[serving]\nport = 9000\n")
    code, _, err = run("-c", str(cfg), "version", env={"RECSMITH_SERVING__PORT": "abc"})
    assert_usage_error(code, err, "serving.port: ", "'abc'")


def test_a_misspelt_key_exits_2_before_touching_any_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's case: ``[store] uri`` fell back to the default SQLite store (under the
    working directory) and imported there with exit 0."""
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "r.toml"
    cfg.write_text(f'[store]\nuri = "sqlite:///{tmp_path / "wanted.sqlite"}"\n')
    events = tmp_path / "e.csv"
    events.write_text("user_id,item_id,event_type,timestamp\nu1,i1,view,1700000000\n")
    code, _, err = run("-c", str(cfg), "import", str(events))
    assert_usage_error(code, err, "store.uri: unknown key (did you mean url?)")
    assert set(tmp_path.iterdir()) == {cfg, events}  # no store written anywhere here


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_content_model_without_items_is_a_usage_error(command: str, events_csv: Path) -> None:
    args = ["--models", "popular,content"] if command == "evaluate" else ["--model", "content"]
    code, _, err = run(command, "--data", str(events_csv), *args)
    assert_usage_error(code, err, "--items: the content model needs item metadata")


def test_users_file_that_is_not_utf8(model_dir: Path, tmp_path: Path) -> None:
    users = tmp_path / "users.txt"
    users.write_bytes(b"\xff\xfe")
    code, _, err = run("recommend", "--model-dir", str(model_dir), "--users", str(users))
    assert_usage_error(code, err, "--users: ", "not UTF-8")


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"\xff\xfe", "not UTF-8"), (b"", "is empty"), (b'session_id,item_id\n"s1,i1\n', "CSV")],
)
def test_unreadable_sessions_file(
    model_dir: Path, tmp_path: Path, content: bytes, reason: str
) -> None:
    sessions = tmp_path / "sessions.csv"
    sessions.write_bytes(content)
    code, _, err = run("recommend", "--model-dir", str(model_dir), "--sessions", str(sessions))
    assert_usage_error(code, err, "--sessions: ", reason)


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    """``recsmith serve`` in its own process: without its checks it would start serving (and a
    bad port would listen somewhere), so the timeout is what fails then."""
    return subprocess.run(
        [sys.executable, "-m", "recsmith", "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "RECSMITH_SERVING__REQUIRE_KEYS": "false"},
    )


def test_serve_checks_the_store_url_up_front(model_dir: Path) -> None:
    done = _serve("--model-dir", str(model_dir), "--store", "bogus://x")
    assert_usage_error(done.returncode, done.stderr, "error: --store: unsupported scheme")


@pytest.mark.parametrize(
    "command",
    [
        ["import", "events.csv"],
        ["evaluate", "--models", "popular"],
        ["train", "--model", "popular", "--out", "m"],
        ["users", "export", "u1"],
        ["deadletters", "list"],
        ["keys", "list"],
        ["backup", "--out", "b.sqlite"],
        ["purge"],
        ["kpis"],
    ],
)
@pytest.mark.parametrize("url", ["bogus://x", "events.sqlite", ""])
def test_a_bad_store_option_is_named_as_typed(
    command: list[str], url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The URL came from ``--store``, so the error names ``--store`` (it said ``store.url``, a
    setting the user never touched), and nothing is created on the way."""
    monkeypatch.chdir(tmp_path)
    code, _, err = run(*command, "--store", url)
    assert_usage_error(code, err, f"error: --store: unsupported scheme in {url!r}")
    assert "store.url" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["file", "environment"])
def test_a_bad_configured_store_url_is_named_as_the_setting_where_it_is_used(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From the config file or ``RECSMITH_STORE__URL``, the URL is refused as the setting by a
    command that would open it; a command that opens no store, or is given ``--store``, runs
    (the URL was checked when the settings were read, which stopped ``version`` too)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECSMITH_STORE__URL")  # the audit store's, which outranks the file
    cfg = tmp_path / "r.toml"
    cfg.write_text('[store]\nurl = "mysql://db"\n' if where == "file" else "")
    if where == "environment":
        monkeypatch.setenv("RECSMITH_STORE__URL", "mysql://db")
    for command in (["deadletters", "list"], ["keys", "list"], ["train", "--out", "m"]):
        code, _, err = run("-c", str(cfg), *command)
        assert_usage_error(code, err, "error: store.url: unsupported scheme in 'mysql://db'")
        assert len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == [cfg]
    good = f"sqlite:///{tmp_path / 'ok.db'}"
    for command in (["version"], ["train", "--help"], ["keys", "list", "--store", good]):
        code, out, err = run("-c", str(cfg), *command)
        assert (code, err) == (0, ""), command
        assert out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.db", "r.toml"]


def test_backup_names_the_setting_or_the_option_that_gave_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RECSMITH_STORE__URL")  # the audit store's, which outranks the file
    out = str(tmp_path / "b")
    cfg = tmp_path / "r.toml"
    for url, says in [
        ("postgresql://db/x", "a PostgreSQL store is backed up with"),
        (f"sqlite:///{tmp_path / 'none.sqlite'}", "no SQLite store at"),
    ]:
        cfg.write_text(f'[store]\nurl = "{url}"\n')
        assert_usage_error(*run("-c", str(cfg), "backup", "--out", out)[::2], f"store.url: {says}")
        code, _, err = run("backup", "--out", out, "--store", url)
        assert_usage_error(code, err, f"error: --store: {says}")


@pytest.mark.parametrize("port", ["99999", "-1", "0"])
def test_serve_rejects_a_port_out_of_range(model_dir: Path, port: str) -> None:
    """Named as typed (``--port``): ``serving.port`` pointed at a config file that may not
    even set it."""
    done = _serve("--model-dir", str(model_dir), "--port", port)
    assert_usage_error(done.returncode, done.stderr, "error: --port: ")
    assert "serving.port" not in done.stderr


def test_quickstart_names_a_bad_port_as_typed(tmp_path: Path) -> None:
    code, _, err = run("quickstart", "--dir", str(tmp_path / "q"), "--port", "99999")
    assert_usage_error(code, err, "error: --port: ")
    assert not (tmp_path / "q").exists()  # refused before anything is written


def test_deploy_without_version_or_model_dir_says_one_is_needed(tmp_path: Path) -> None:
    code, _, err = run("deploy", "--registry", str(tmp_path / "releases"))
    assert_usage_error(code, err, "give a VERSION to deploy or a --model-dir to publish")
    assert "not both" not in err


@pytest.mark.parametrize("command", ["releases", "rollback"])
def test_missing_registry_is_an_error(command: str, tmp_path: Path) -> None:
    code, _, err = run(command, "--registry", str(tmp_path / "nonexist"))
    assert_usage_error(code, err, "--registry: no such registry directory")


def test_deploy_creates_the_registry_and_releases_lists_it(model_dir: Path, tmp_path: Path) -> None:
    registry = tmp_path / "releases"
    code, out, err = run(
        "deploy", "--model-dir", str(model_dir), "--registry", str(registry), "--json"
    )
    assert code == 0, err
    version = json.loads(out.strip().splitlines()[-1])["version"]
    code, out, err = run("releases", "--registry", str(registry))
    assert code == 0, err
    assert version in out


def _commands(group: object, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    found: list[tuple[tuple[str, ...], object]] = [(path, group)]
    for name, sub in getattr(group, "commands", {}).items():
        found += _commands(sub, (*path, name))
    return found


def test_no_help_text_loses_square_brackets_to_rich_markup() -> None:
    """Typer renders help as rich markup, where ``[report]`` is a style tag that vanishes."""
    import typer

    lost = []
    for path, command in _commands(typer.main.get_command(app)):
        texts = [getattr(command, "help", None) or ""]
        texts += [getattr(p, "help", None) or "" for p in getattr(command, "params", [])]
        for text in texts:
            if Text.from_markup(text).plain != text.replace("\\[", "["):
                lost.append((" ".join(path), text))
    assert not lost


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        ("train", "TOML file with a [models.MODEL] table"),
        ("tune", "TOML params file to write ([models.MODEL])"),
        ("evaluate", "needs recsmith[report]."),
        ("evaluate", "random[:F] or user-holdout[:F]"),
    ],
)
def test_help_shows_the_brackets(command: str, shown: str) -> None:
    code, out, _ = run(command, "--help", env={"COLUMNS": "300", "TERMINAL_WIDTH": "300"})
    assert code == 0
    flat = " ".join(out.replace("│", " ").split())
    assert shown in flat


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("garbage", "manifest.json is not valid JSON"),
        ("[1, 2]", "manifest.json is not a recsmith manifest"),
        ('{"kind": "pipeline"}', "unsupported model format None"),
    ],
)
def test_a_corrupt_manifest_is_named_not_a_traceback(
    model_dir: Path, tmp_path: Path, content: str, says: str
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / "manifest.json").write_text(content)
    users = tmp_path / "users.txt"
    users.write_text("u1\n")
    for args in (
        ("recommend", "--model-dir", str(broken), "--users", str(users)),
        ("deploy", "--model-dir", str(broken), "--registry", str(tmp_path / "registry")),
    ):
        assert_usage_error(*run(*args)[::2], "--model-dir: ", says)
    served = _serve("--model-dir", str(broken), "--store", f"sqlite:///{tmp_path / 's.sqlite'}")
    assert_usage_error(served.returncode, served.stderr, says)


@pytest.mark.parametrize(
    "command", [["kpis"], ["decisions", "export", "--out", "d.csv"]], ids=["kpis", "decisions"]
)
@pytest.mark.parametrize(
    ("since", "until"),
    [("2026-12-05", "2026-12-01"), ("2026-12-05", "2026-12-05"), ("7d", "7d"), ("1h", "2h")],
)
def test_an_end_not_after_the_start_is_named(
    command: list[str], since: str, until: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A window ending where or before it starts holds nothing: ``kpis`` printed an empty table
    as if nothing had been served. Nothing is opened on the way (no store file appears). Equal
    spans count back from one "now": two reads of the clock made ``7d``..``7d`` a window of a
    few microseconds, accepted and empty."""
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "s.sqlite"
    window = ["--since", since, "--until", until, "--store", f"sqlite:///{store}"]
    code, _, err = run(*command, *window)
    assert_usage_error(code, err, "error: --until: must be after --since")
    assert not store.exists()
