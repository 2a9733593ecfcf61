"""The gunicorn entry point refuses settings that only work in a single process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flask_realtime.config import DEFAULTS
from flask_realtime.web.app import check_production_settings

SIM = "http://127.0.0.1:8099/v1"


def settings(**given: object) -> dict[str, object]:
    return {"WEBEX_BASE_URL": DEFAULTS["WEBEX_BASE_URL"], "LOGIN_REQUIRED": True, **given}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SECRET_KEY", "FLASK_REALTIME_SECRET_KEY", "FLASK_REALTIME_LOGIN_REQUIRED"):
        monkeypatch.delenv(name, raising=False)


def test_a_configured_integration_or_demo_with_a_simulator_is_served() -> None:
    check_production_settings(settings(WEBEX_CLIENT_ID="abc"))
    check_production_settings(settings(DEMO_MODE=True, WEBEX_BASE_URL=SIM))


def test_nobody_logging_in_needs_to_be_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RuntimeError, match="nobody would have to log in"):
        check_production_settings(settings(LOGIN_REQUIRED=False))
    monkeypatch.setenv("FLASK_REALTIME_LOGIN_REQUIRED", "false")
    check_production_settings(settings(LOGIN_REQUIRED=False))


def test_demo_mode_needs_the_simulators_url() -> None:
    with pytest.raises(RuntimeError, match="webex-sim"):
        check_production_settings(settings(DEMO_MODE=True))


def test_several_processes_need_one_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    redis = settings(REDIS_URL="redis://127.0.0.1:6379/0")
    with pytest.raises(RuntimeError, match="same SECRET_KEY"):
        check_production_settings(redis)
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    check_production_settings(redis)


def test_the_module_stops_with_the_sentence(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FLASK_REALTIME_") and k not in (
               "SECRET_KEY", "REDIS_URL", "CLIENT_ID", "CLIENT_SECRET", "REDIRECT_URI")}
    env.update(FLASK_REALTIME_INSTANCE_PATH=str(tmp_path), FLASK_REALTIME_WEBEX_ENV_FILE='""')
    done = subprocess.run([sys.executable, "-c", "import flask_realtime.web.wsgi"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "nobody would have to log in" in done.stderr
