"""docker-compose.yml as Compose would run it (no Docker engine here): out of the box in
demo mode with the simulator as a service, real Webex with docker-compose.webex.yml.

The files are merged as ``docker compose -f docker-compose.yml -f
docker-compose.webex.yml`` does, variables are filled in as Compose fills them, and the
web containers' environment goes through the app's own config loader and production
check. tests/deploy/test_files.py checks what the nginx template and the image expect.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from flask_realtime import config as settings
from flask_realtime.web.app import check_production_settings
from tests.processes import free_port, wait_http

ROOT = Path(__file__).resolve().parents[2]
BASE, WEBEX = "docker-compose.yml", "docker-compose.webex.yml"
APPS = ("web1", "web2", "worker1", "worker2")
# What a deployment puts in .env; everything else is left to the files' defaults.
DOTENV = {"SECRET_KEY": "a-long-random-secret-for-the-test"}


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}``, in every string."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name, op, word = match.group(1), match.group(2), match.group(3) or ""
        if env.get(name):
            return env[name]
        if op == ":?":
            raise AssertionError(f"Compose refuses to start: {word}")
        return word if op == ":-" else ""

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)


def merge(base: Any, override: Any) -> Any:
    """Compose's merge of an override file: mappings key by key, anything else replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{k: merge(base[k], v) if k in base else v
                           for k, v in override.items()}}
    return override


def project(*files: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The services Compose would start: the files merged, variables filled in,
    services of a profile left out (none is enabled)."""
    merged: dict[str, Any] = {}
    for name in files:
        merged = merge(merged, yaml.safe_load((ROOT / name).read_text()))
    merged = interpolate(merged, {**DOTENV, **(env or {})})
    merged["disabled"] = {n for n, s in merged["services"].items() if s.get("profiles")}
    merged["services"] = {n: s for n, s in merged["services"].items()
                          if n not in merged["disabled"]}
    return merged


def command(service: dict[str, Any]) -> list[str]:
    return list(service["command"])


def option(args: list[str], name: str) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args) if arg == name]


def published(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    """``ports`` as (host address, host port, container port); "" is every address."""
    found = []
    for entry in service.get("ports", []):
        *address, host, container = str(entry).split(":")
        found.append((address[0] if address else "", int(host), int(container)))
    return found


def image_has_healthcheck() -> bool:
    return "HEALTHCHECK" in (ROOT / "Dockerfile").read_text()


def healthchecked(service: dict[str, Any]) -> bool:
    """Whether Compose can tell the service healthy: a healthcheck of its own, or the
    image's (the Dockerfile's, for a service built from it) not disabled."""
    check = service.get("healthcheck", {})
    if check.get("disable"):
        return False
    return bool(check.get("test")) or ("build" in service and image_has_healthcheck())


@pytest.mark.parametrize("files", [(BASE,), (BASE, WEBEX)], ids=["demo", "webex"])
def test_every_dependency_is_started_and_waited_for_by_its_health(
        files: tuple[str, ...]) -> None:
    services = project(*files)["services"]
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on without conditions"
        for target, how in depends.items():
            assert target in services, f"{name} depends on {target}, which is not started"
            assert how["condition"] == "service_healthy", (name, target)
            assert healthchecked(services[target]), f"{target} has no healthcheck"
    assert set(services["nginx"]["depends_on"]) == {"web1", "web2"}
    assert all(set(services[n]["depends_on"]) == {"redis"} for n in APPS)


def test_demo_mode_runs_the_simulator_as_a_service_and_real_webex_does_not() -> None:
    assert set(project(BASE)["services"]) == {"nginx", *APPS, "webex-sim", "redis"}
    webex = project(BASE, WEBEX)
    assert set(webex["services"]) == {"nginx", *APPS, "redis"}
    assert webex["disabled"] == {"webex-sim"}


def test_every_long_running_service_has_a_healthcheck_but_the_workers() -> None:
    services = project(BASE)["services"]
    for name, service in services.items():
        assert healthchecked(service) == (not name.startswith("worker")), name
        assert service["restart"] == "unless-stopped", name


def test_ports_published_are_nginx_and_the_simulator_for_this_machine_only() -> None:
    services = project(BASE)["services"]
    assert {n for n, s in services.items() if s.get("ports")} == {"nginx", "webex-sim"}
    assert published(services["nginx"]) == [("", 8080, int(services["nginx"]["environment"]
                                                           ["LISTEN"]))]
    sim = services["webex-sim"]
    [(address, host_port, container_port)] = published(sim)
    assert address == "127.0.0.1"  # demo logins for nobody but this machine
    assert host_port == container_port == int(option(command(sim), "--port")[0])
    assert option(command(sim), "--host") == ["0.0.0.0"]  # reachable from the network


def test_named_volumes_are_declared_and_hold_redis_data() -> None:
    merged = project(BASE)
    used = {v.split(":")[0] for s in merged["services"].values() for v in s.get("volumes", [])
            if not v.startswith(".")}
    assert used == set(merged["volumes"]) == {"redis_data"}
    assert "redis_data:/data" in merged["services"]["redis"]["volumes"]


def documented(name: str) -> bool:
    """An app setting docs/configuration.md names, as spelled or as config.py reads it
    (``FLASK_REALTIME_<KEY>`` for a key of DEFAULTS, the unprefixed few)."""
    docs = (ROOT / "docs" / "configuration.md").read_text()
    key = name.removeprefix(settings.PREFIX)
    known = (key in settings.DEFAULTS and name != key) or name in settings.UNPREFIXED or (
        name in settings.INTEGRATION_KEYS)
    return known and re.search(rf"\b({re.escape(name)}|{re.escape(key)})\b", docs) is not None


@pytest.mark.parametrize("files", [(BASE,), (BASE, WEBEX)], ids=["demo", "webex"])
def test_every_variable_the_app_containers_get_is_a_documented_setting(
        files: tuple[str, ...]) -> None:
    services = project(*files)["services"]
    for name in APPS:
        for variable in services[name]["environment"]:
            assert documented(variable), f"{name}: {variable} is not in docs/configuration.md"
    template = (ROOT / "deploy/nginx/flask-realtime.conf.template").read_text()
    assert set(services["nginx"]["environment"]) == set(re.findall(r"\$\{(\w+)\}", template))


def test_the_demo_wiring_matches_the_simulator() -> None:
    """The web containers' client id and secret are the simulator's, their base URL
    reaches it (its alias, its port), and the simulator sends codes to the redirect URI
    the web processes build from nginx's published address."""
    services = project(BASE, env={"DEMO_CLIENT_SECRET": "not-the-default"})["services"]
    sim = command(services["webex-sim"])
    sim_port = int(option(sim, "--port")[0])
    nginx_port = published(services["nginx"])[0][1]
    for name in APPS:
        env = services[name]["environment"]
        assert env["FLASK_REALTIME_DEMO_MODE"] == "true"
        assert option(sim, "--client-id") == [env["FLASK_REALTIME_WEBEX_CLIENT_ID"]]
        assert option(sim, "--client-secret") == [env["FLASK_REALTIME_WEBEX_CLIENT_SECRET"]]
        assert env["FLASK_REALTIME_WEBEX_CLIENT_SECRET"] == "not-the-default"
        base = urlsplit(env["FLASK_REALTIME_WEBEX_BASE_URL"])
        assert base.path == "/v1" and base.port == sim_port
        # One name for the browser (*.localhost is this machine) and the containers.
        assert base.hostname in services["webex-sim"]["networks"]["default"]["aliases"]
        assert base.hostname is not None and base.hostname.endswith(".localhost")
    assert set(option(sim, "--redirect-uri")) == {
        f"http://{host}:{nginx_port}/redirect" for host in ("localhost", "127.0.0.1")}


def app_config(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch,
               tmp_path: Path) -> dict[str, Any]:
    """The config a web container loads from ``environment`` and nothing else, checked
    as ``flask_realtime.web.wsgi`` checks it before serving."""
    for name in list(os.environ):
        if name.startswith(settings.PREFIX) or name in (
                *settings.UNPREFIXED, *settings.INTEGRATION_KEYS):
            monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.chdir(tmp_path)  # the image's /app holds no webexintegration.env
    config: dict[str, Any] = {}
    settings.load(config)
    check_production_settings(config)
    return config


def test_out_of_the_box_the_web_containers_start_in_demo_mode(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = project(BASE)["services"]["web1"]["environment"]
    config = app_config(env, monkeypatch, tmp_path)
    assert config["DEMO_MODE"] is True and config["LOGIN_REQUIRED"] is True
    assert config["WEBEX_BASE_URL"] == "http://webex-sim.localhost:8099/v1"
    assert config["WEBEX_CLIENT_ID"] == "demo-client"


def env_file(path: Path) -> dict[str, str]:
    return settings.read_env_file(path)


def test_with_the_override_the_integration_of_webexintegration_env_is_used(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    integration = tmp_path / "webexintegration.env"
    integration.write_text("CLIENT_ID=C0ffee-real-client\nCLIENT_SECRET=real-secret\n"
                           "REDIRECT_URI=https://console.example.com/redirect\n")
    web = project(BASE, WEBEX)["services"]["web1"]
    assert [f["path"] for f in web["env_file"]] == ["webexintegration.env"]
    assert web["env_file"][0]["required"] is True  # no silent fallback to nothing
    # Compose: the env_file's variables, then environment over them.
    container = {**env_file(integration), **web["environment"]}
    (tmp_path / "app").mkdir()
    config = app_config(container, monkeypatch, tmp_path / "app")
    assert config["DEMO_MODE"] is False and config["LOGIN_REQUIRED"] is True
    assert config["WEBEX_BASE_URL"] == settings.DEFAULTS["WEBEX_BASE_URL"]
    assert config["WEBEX_CLIENT_ID"] == "C0ffee-real-client"
    assert config["WEBEX_CLIENT_SECRET"] == "real-secret"
    assert config["WEBEX_REDIRECT_URI"] == "https://console.example.com/redirect"


def test_without_secret_key_compose_refuses_to_start() -> None:
    with pytest.raises(AssertionError, match="set SECRET_KEY"):
        project(BASE, env={"SECRET_KEY": ""})


def healthcheck_script(service: dict[str, Any], port: int) -> str:
    test = service["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"], test
    return str(test[3]).replace(":8099/", f":{port}/")


def test_the_simulators_healthcheck_passes_once_it_answers(tmp_path: Path) -> None:
    sim = project(BASE)["services"]["webex-sim"]
    port = free_port()
    script = healthcheck_script(sim, port)

    def check() -> int:
        return subprocess.run([sys.executable, "-c", script], capture_output=True,
                              timeout=30).returncode

    assert check() != 0  # nothing listens yet
    args = command(sim)[1:]
    args[args.index("--port") + 1] = str(port)
    args[args.index("--host") + 1] = "127.0.0.1"
    log = tmp_path / "sim.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "flask_realtime.cli", *args],
                                stdout=out, stderr=out)
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/people/me", proc=proc, log=log)
        assert check() == 0
    finally:
        proc.kill()
        proc.wait(15)
