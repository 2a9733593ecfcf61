"""The deployment files hold together (no Docker engine runs here to try them).

They parse, every command they run exists, and what the nginx config expects (ports,
paths, upstreams) is what the Compose files and the image provide.
"""

from __future__ import annotations

import importlib
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from scripts.stack import executable, render_nginx

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = (ROOT / "deploy" / "nginx" / "flask-realtime.conf.template").read_text()


def compose(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / name).read_text())  # type: ignore[no-any-return]


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def image_command() -> list[str]:
    match = re.search(r"^CMD (\[.*?\])\s*$", dockerfile().replace("\\\n", ""), re.M | re.S)
    assert match, "the Dockerfile has a CMD in exec form"
    return yaml.safe_load(match.group(1))  # type: ignore[no-any-return]


def service_command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", image_command())
    return shlex.split(command) if isinstance(command, str) else list(command)


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose-dev.yml"])
def test_every_service_runs_a_real_entry_point(name: str) -> None:
    for service_name, service in compose(name)["services"].items():
        if "image" in service and "build" not in service:
            continue  # nginx, redis: their images' own commands
        command = service_command(service)
        if command[0] == "gunicorn":
            target = command[-1]
            module, _, attribute = target.partition(":")
            assert module == "flask_realtime.web.wsgi" and attribute == "app", target
            assert importlib.util.find_spec(module) is not None
        else:
            assert command[0] == "flask-realtime", (service_name, command)
            done = subprocess.run([sys.executable, "-m", "flask_realtime.cli", command[1],
                                   "--help"], capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, (service_name, done.stderr)
            for option in [c for c in command[2:] if c.startswith("--")]:
                assert option.split("=")[0] in done.stdout, (service_name, option)


def upstreams(service: dict[str, Any]) -> list[tuple[str, int]]:
    servers = service["environment"]["UPSTREAM_SERVERS"]
    return [(host, int(port)) for host, port in re.findall(r"server (\S+):(\d+);", servers)]


def test_nginx_upstreams_are_the_web_services_on_their_port() -> None:
    services = compose("docker-compose.yml")["services"]
    web = {n for n, s in services.items() if "build" in s and "command" not in s}
    found = upstreams(services["nginx"])
    assert {host for host, _ in found} == web == {"web1", "web2"}
    bind = image_command()[image_command().index("-b") + 1]
    assert {port for _, port in found} == {int(bind.rsplit(":", 1)[1])}
    dev = compose("docker-compose-dev.yml")["services"]
    dev_command = service_command(dev["app-flask"])
    assert upstreams(dev["app-nginx"]) == [
        ("app-flask", int(dev_command[dev_command.index("--port") + 1]))]


@pytest.mark.parametrize("name,nginx", [("docker-compose.yml", "nginx"),
                                        ("docker-compose-dev.yml", "app-nginx")])
def test_nginx_gets_its_template_and_the_static_files(name: str, nginx: str) -> None:
    service = compose(name)["services"][nginx]
    env = service["environment"]
    for variable in re.findall(r"\$\{(\w+)\}", TEMPLATE):
        assert variable in env, f"{name}: {nginx} does not set {variable}"
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in service["volumes"])
    assert mounts["./deploy/nginx/flask-realtime.conf.template"].startswith(
        "/etc/nginx/templates/")
    assert mounts["./src/flask_realtime/web/static"] == env["STATIC_ROOT"]
    assert (ROOT / "src/flask_realtime/web/static/app.js").exists()
    published = service["ports"][0].split(":")[-1]
    assert published == env["LISTEN"]


def test_redis_keeps_its_data_with_aof_on_a_volume() -> None:
    for name, service_name in (("docker-compose.yml", "redis"),
                               ("docker-compose-dev.yml", "app-redis")):
        redis = compose(name)["services"][service_name]
        command = " ".join(redis["command"])
        assert "--appendonly yes" in command and "--appendfsync everysec" in command
        assert any(v.endswith(":/data") for v in redis["volumes"])
    assert "redis_data" in compose("docker-compose.yml")["volumes"]


def test_every_process_shares_redis_and_the_secret_key() -> None:
    services = compose("docker-compose.yml")["services"]
    apps = {n: s for n, s in services.items() if re.fullmatch(r"(web|worker)\d+", n)}
    assert len(apps) == 4
    for service in apps.values():
        env = service["environment"]
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["SECRET_KEY"].startswith("${SECRET_KEY:?")  # required, never a default
        assert env["FLASK_REALTIME_PROXY_COUNT"] == "1"  # nginx's headers are trusted


def test_the_image_runs_as_a_user_not_root() -> None:
    users = re.findall(r"^USER (\S+)", dockerfile(), re.M)
    assert users and users[-1] not in ("root", "0")
    assert "-c constraints.txt" in dockerfile()  # pinned dependencies
    assert "HEALTHCHECK" in dockerfile() and "/healthz" in dockerfile()


def test_the_nginx_template_renders_to_a_config_nginx_accepts(tmp_path: Path) -> None:
    conf = render_nginx(tmp_path, 8080, [5001, 5002])
    done = subprocess.run([executable("nginx"), "-t", "-p", str(tmp_path / "nginx"),
                           "-c", str(conf)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    site = (tmp_path / "nginx" / "flask-realtime.conf").read_text()
    assert "proxy_set_header Upgrade $http_upgrade;" in site and "proxy_buffering off;" in site
    assert "server 127.0.0.1:5001" in site and "ip_hash;" in site
    assert "${" not in site


def test_the_build_context_leaves_secrets_and_local_state_out() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {"webexintegration.env", ".venv", ".git", "redis_data", "instance"} <= ignored
    copied = re.findall(r"^COPY (.+) \S+$", dockerfile(), re.M)
    for source in " ".join(copied).split():
        assert (ROOT / source).exists(), source
        assert source not in ignored, source
