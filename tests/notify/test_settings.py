"""The notification settings (docs/configuration.md): checked at start with one sentence,
and the bot's token read without the prefix as well."""

from __future__ import annotations

import pytest

from flask_realtime import config


def loaded(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, object]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings: dict[str, object] = {}
    config.load(settings, {"WEBEX_ENV_FILE": ""})
    return settings


def test_the_settings_take_what_they_should(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = loaded(monkeypatch, WEBEX_BOT_TOKEN="bot-abc",
                      FLASK_REALTIME_PUBLIC_URL="https://console.example.com/",
                      FLASK_REALTIME_NOTIFY_WEBHOOK_ALLOWED_NETWORKS="10.1.0.0/16, fd12::/64")
    assert settings["WEBEX_BOT_TOKEN"] == "bot-abc"
    assert settings["PUBLIC_URL"] == "https://console.example.com"
    assert settings["NOTIFY_WEBHOOK_ALLOWED_NETWORKS"] == ["10.1.0.0/16", "fd12::/64"]
    assert loaded(monkeypatch, FLASK_REALTIME_PUBLIC_URL="")["PUBLIC_URL"] is None


@pytest.mark.parametrize(("name", "value", "sentence"), [
    ("FLASK_REALTIME_PUBLIC_URL", "ftp://example.com",
     "FLASK_REALTIME_PUBLIC_URL is 'ftp://example.com', but it must be an http:// or "
     "https:// URL, or unset."),
    ("FLASK_REALTIME_NOTIFY_WEBHOOK_ALLOWED_NETWORKS", "10.0.0.0/8,the office",
     "FLASK_REALTIME_NOTIFY_WEBHOOK_ALLOWED_NETWORKS is '10.0.0.0/8,the office', but it "
     "must be a comma-separated list of networks such as 10.1.0.0/16 or ::1/128."),
    ("FLASK_REALTIME_NOTIFY_ATTEMPTS", "0",
     "FLASK_REALTIME_NOTIFY_ATTEMPTS is 0, but it must be a whole number of at least 1."),
])
def test_a_bad_value_stops_the_start_with_a_sentence(
        monkeypatch: pytest.MonkeyPatch, name: str, value: str, sentence: str) -> None:
    with pytest.raises(config.ConfigError) as refused:
        loaded(monkeypatch, **{name: value})
    assert str(refused.value) == sentence
