"""The Webex integration's settings: env file, unprefixed variables, half configurations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flask_realtime.config import (
    DEFAULTS,
    ConfigError,
    check_for,
    given,
    load,
    read_env_file,
    source,
)
from flask_realtime.web.app import create_app

ROOT = Path(__file__).resolve().parents[2]
INTEGRATION_VARS = ("CLIENT_ID", "CLIENT_SECRET", "REDIRECT_URI", "SCOPE")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in INTEGRATION_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"FLASK_REALTIME_WEBEX_{name}", raising=False)
    monkeypatch.setenv("FLASK_REALTIME_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.chdir(tmp_path)


def build(**config: Any) -> Any:
    # The memory store: a test here builds several apps in one instance folder, and
    # only one at a time may hold its SQLite database.
    return create_app({"TESTING": True, "SECRET_KEY": "k", "STORE": "memory", **config}).config


def test_no_integration_means_no_login() -> None:
    config = build()
    assert config["LOGIN_REQUIRED"] is False and config["WEBEX_CLIENT_ID"] is None


def test_env_file_in_the_current_directory(tmp_path: Path) -> None:
    (tmp_path / "webexintegration.env").write_text(
        "# the seed's file\nCLIENT_ID=abc\nCLIENT_SECRET='s3cret'\n"
        "REDIRECT_URI=http://localhost:5000/redirect\nSCOPE=spark:all\n")
    config = build()
    assert (config["WEBEX_CLIENT_ID"], config["WEBEX_CLIENT_SECRET"]) == ("abc", "s3cret")
    assert config["WEBEX_REDIRECT_URI"] == "http://localhost:5000/redirect"
    assert config["WEBEX_SCOPE"] == "spark:all" and config["LOGIN_REQUIRED"] is True


def test_env_file_in_the_instance_folder(tmp_path: Path) -> None:
    (tmp_path / "instance").mkdir()
    (tmp_path / "instance" / "webexintegration.env").write_text(
        "CLIENT_ID=i\nCLIENT_SECRET=s\nREDIRECT_URI=https://console.example/redirect\n")
    config = build()
    assert config["WEBEX_CLIENT_ID"] == "i" and config["WEBEX_SCOPE"] == "spark:all spark:kms"


def test_unprefixed_variables_beat_the_file(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "webexintegration.env").write_text(
        "CLIENT_ID=from-file\nCLIENT_SECRET=s\nREDIRECT_URI=http://h/redirect\n")
    monkeypatch.setenv("CLIENT_ID", "from-env")
    assert build()["WEBEX_CLIENT_ID"] == "from-env"
    monkeypatch.setenv("FLASK_REALTIME_WEBEX_CLIENT_ID", "prefixed")
    assert build()["WEBEX_CLIENT_ID"] == "prefixed"


def test_half_configured_integration_stops_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIENT_ID", "abc")
    with pytest.raises(ValueError, match="CLIENT_SECRET and REDIRECT_URI are missing"):
        build()


def test_redirect_uri_must_reach_the_callback() -> None:
    with pytest.raises(ValueError, match="ending in /redirect"):
        build(WEBEX_CLIENT_ID="a", WEBEX_CLIENT_SECRET="b",
              WEBEX_REDIRECT_URI="http://localhost:5000/callback")


def test_explicit_env_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not a file"):
        build(WEBEX_ENV_FILE=str(tmp_path / "nope.env"))


def test_login_can_be_turned_off_for_the_core() -> None:
    config = build(WEBEX_CLIENT_ID="a", WEBEX_CLIENT_SECRET="b",
                   WEBEX_REDIRECT_URI="http://h/redirect", LOGIN_REQUIRED=False)
    assert config["LOGIN_REQUIRED"] is False


def test_the_committed_template_names_every_setting() -> None:
    values = read_env_file(ROOT / "webexintegration.env.template")
    assert set(values) == set(INTEGRATION_VARS)


# Every setting is checked at start: a bad value is one sentence naming the setting as
# the user spelled it and what it accepts (docs/configuration.md).

def bad_setting(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> str:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        load({})
    return str(refused.value)


def test_a_number_setting_refuses_text(monkeypatch: pytest.MonkeyPatch) -> None:
    message = bad_setting(monkeypatch, "FLASK_REALTIME_RETENTION_LINES", "abc")
    assert message.startswith("FLASK_REALTIME_RETENTION_LINES is 'abc'")
    assert "whole number" in message and "\n" not in message


def test_a_count_refuses_a_negative_number(monkeypatch: pytest.MonkeyPatch) -> None:
    message = bad_setting(monkeypatch, "FLASK_REALTIME_RUNS_PER_USER", "-1")
    assert "FLASK_REALTIME_RUNS_PER_USER is -1" in message and "at least 1" in message


def test_a_choice_lists_what_it_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    message = bad_setting(monkeypatch, "FLASK_REALTIME_STORE", "mongo")
    assert "FLASK_REALTIME_STORE is 'mongo'" in message and "'sqlite' or 'memory'" in message


def test_a_switch_refuses_maybe(monkeypatch: pytest.MonkeyPatch) -> None:
    message = bad_setting(monkeypatch, "FLASK_REALTIME_LOGIN_REQUIRED", "maybe")
    assert "FLASK_REALTIME_LOGIN_REQUIRED is 'maybe'" in message and "true or false" in message


@pytest.mark.parametrize(("typed", "meant"), [("off", False), ("no", False), ("0", False),
                                              ("yes", True), ("true", True)])
def test_a_switch_reads_the_usual_words(monkeypatch: pytest.MonkeyPatch, typed: str,
                                        meant: bool) -> None:
    monkeypatch.setenv("FLASK_REALTIME_LOGIN_REQUIRED", typed)
    assert build()["LOGIN_REQUIRED"] is meant


def test_values_are_converted_to_the_settings_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASK_REALTIME_STOP_GRACE_SECONDS", "3")
    monkeypatch.setenv("FLASK_REALTIME_WEBEX_CLIENT_ID", "12345")  # an id, not a number
    monkeypatch.setenv("FLASK_REALTIME_WEBEX_CLIENT_SECRET", "s")
    monkeypatch.setenv("FLASK_REALTIME_WEBEX_REDIRECT_URI", "http://h/redirect")
    config = build()
    assert config["STOP_GRACE_SECONDS"] == 3.0 and config["WEBEX_CLIENT_ID"] == "12345"


def test_a_test_config_value_is_checked_under_its_key() -> None:
    with pytest.raises(ConfigError, match=r"^RUNNER \(test config\) is 'celery'"):
        build(RUNNER="celery")


def test_each_value_records_where_it_came_from(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "webexintegration.env").write_text(
        "CLIENT_ID=i\nCLIENT_SECRET=s\nREDIRECT_URI=http://h/redirect\n")
    monkeypatch.setenv("FLASK_REALTIME_RETENTION_LINES", "500")
    config = build(RUNS_TOTAL=9)
    assert str(source(config, "RETENTION_LINES")) == "FLASK_REALTIME_RETENTION_LINES"
    assert str(source(config, "RUNS_TOTAL")) == "RUNS_TOTAL (test config)"
    assert str(source(config, "HISTORY_RUNS")) == "HISTORY_RUNS (default)"
    assert str(source(config, "WEBEX_CLIENT_ID")) == (
        f"CLIENT_ID in {tmp_path / 'webexintegration.env'}")
    assert given(config, "RETENTION_LINES") and not given(config, "HISTORY_RUNS")


def test_a_bad_value_in_the_env_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "webexintegration.env").write_text(
        "CLIENT_ID=i\nCLIENT_SECRET=s\nREDIRECT_URI=http://h/callback\n")
    with pytest.raises(ConfigError, match=r"REDIRECT_URI in .*webexintegration\.env is"):
        build()


def test_every_setting_says_what_it_accepts() -> None:
    for key in DEFAULTS:
        assert check_for(key).accepts, key
