"""The deployment topology of docker-compose.yml, natively, without a Docker engine.

    scripts/stack start [--dir .stack] [--port 8080] [--webs 2] [--workers 2] [--no-demo]
    scripts/stack status [--dir .stack]
    scripts/stack stop [--dir .stack]

Starts redis-server (AOF, ``appendfsync everysec``, data in DIR/redis), the Webex
simulator (demo mode), N web processes (gunicorn, gthread, one worker each), M RQ
workers (``flask-realtime worker``) and nginx (its own prefix, pid, logs and temp
paths under DIR: the machine's /etc/nginx is never touched) on PORT, with the nginx
config of deploy/nginx. Every process is in a session of its own, so the stack
outlives this command; DIR/stack.json records the processes for ``stop``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "nginx" / "flask-realtime.conf.template"
STATIC = ROOT / "src" / "flask_realtime" / "web" / "static"
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30, proc: subprocess.Popen[bytes] | None = None,
              log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return  # it answers (401, 404, …): it is up
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log else ""
            raise RuntimeError(f"{url}: the process exited ({proc.returncode}).\n{tail}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout:g} s")
        time.sleep(0.05)


def render_nginx(directory: Path, port: int, web_ports: list[int]) -> Path:
    """nginx.conf for an unprivileged nginx whose files all live under ``directory``."""
    conf = directory / "nginx"
    for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi", "logs"):
        (conf / sub).mkdir(parents=True, exist_ok=True)
    for path in [conf, *conf.rglob("*")]:
        if path.is_dir():
            path.chmod(0o777 if "tmp" in path.parts else 0o755)  # nginx workers: nobody
    servers = "\n    ".join(f"server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;"
                           for p in web_ports)
    site = string.Template(TEMPLATE.read_text()).safe_substitute(
        LISTEN=f"127.0.0.1:{port}", UPSTREAM_SERVERS=servers, STATIC_ROOT=str(STATIC))
    (conf / "flask-realtime.conf").write_text(site)
    tmp = conf / "tmp"
    main = f"""worker_processes 1;
pid {conf}/nginx.pid;
error_log {conf}/logs/error.log warn;
daemon off;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {conf}/logs/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {conf}/flask-realtime.conf;
}}
"""
    (conf / "nginx.conf").write_text(main)
    return conf / "nginx.conf"


class Stack:
    def __init__(self, directory: Path) -> None:
        self.dir = directory.resolve()
        self.state_file = self.dir / "stack.json"

    def load(self) -> dict[str, Any]:
        if not self.state_file.exists():
            return {"processes": []}
        return json.loads(self.state_file.read_text())  # type: ignore[no-any-return]

    def save(self, state: dict[str, Any]) -> None:
        self.state_file.write_text(json.dumps(state, indent=2))

    def spawn(self, state: dict[str, Any], name: str, args: list[str],
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = self.dir / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=out, cwd=self.dir,
                                    env={**os.environ, **(env or {})}, start_new_session=True)
        state["processes"].append({"name": name, "pid": proc.pid, "log": str(log)})
        self.save(state)
        return proc

    def start(self, *, port: int, webs: int, workers: int, demo: bool,
              sim_latency_ms: float = 20) -> dict[str, Any]:
        self.dir.mkdir(parents=True, exist_ok=True)
        if any(alive(p["pid"]) for p in self.load()["processes"]):
            raise SystemExit(f"a stack is already running from {self.dir}: stop it first")
        for tool in ("redis-server", "nginx"):
            if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
                raise SystemExit(f"{tool} is not installed: run scripts/bootstrap --test")
        state: dict[str, Any] = {"processes": [], "port": port, "dir": str(self.dir)}
        secret_file = self.dir / "secret_key"
        if not secret_file.exists():
            secret_file.write_text(secrets.token_urlsafe(48))
            secret_file.chmod(0o600)
        redis_port = free_port()
        (self.dir / "redis").mkdir(exist_ok=True)
        self.spawn(state, "redis", [
            "redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
            "--dir", str(self.dir / "redis"), "--appendonly", "yes",
            "--appendfsync", "everysec", "--save", ""])
        env = {"REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
               "SECRET_KEY": secret_file.read_text().strip(), "FLASK_REALTIME_RUNNER": "rq",
               "FLASK_REALTIME_PROXY_COUNT": "1",
               "FLASK_REALTIME_INSTANCE_PATH": str(self.dir / "instance"),
               "FLASK_REALTIME_WEBEX_ENV_FILE": os.environ.get(
                   "FLASK_REALTIME_WEBEX_ENV_FILE", '""')}
        if demo:
            sim_port = free_port()
            sim = self.spawn(state, "webex-sim", [
                str(VENV_BIN / "flask-realtime"), "webex-sim", "--port", str(sim_port),
                "--latency-ms", str(sim_latency_ms), "--jitter-ms", "20"])
            wait_http(f"http://127.0.0.1:{sim_port}/v1/people/me", proc=sim)  # 401 is up
            env.update({"FLASK_REALTIME_DEMO_MODE": "true", "CLIENT_ID": "demo-client",
                        "CLIENT_SECRET": "demo-secret",
                        "FLASK_REALTIME_WEBEX_BASE_URL": f"http://127.0.0.1:{sim_port}/v1"})
        web_ports = []
        for n in range(1, webs + 1):
            web_port = free_port()
            web_ports.append(web_port)
            proc = self.spawn(state, f"web{n}", [
                str(VENV_BIN / "gunicorn"), "-k", "gthread", "-w", "1", "--threads", "100",
                "-b", f"127.0.0.1:{web_port}", "--graceful-timeout", "5",
                "flask_realtime.web.wsgi:app"], env)
            wait_http(f"http://127.0.0.1:{web_port}/healthz", proc=proc,
                      log=self.dir / "logs" / f"web{n}.log")
        state["webs"] = web_ports
        for n in range(1, workers + 1):
            self.spawn(state, f"worker{n}", [
                str(VENV_BIN / "flask-realtime"), "worker", "--name", f"stack-worker-{n}-"
                f"{secrets.token_hex(3)}"], env)
        nginx_conf = render_nginx(self.dir, port, web_ports)
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        proxy = self.spawn(state, "nginx", [nginx, "-p", str(self.dir / "nginx"),
                                            "-c", str(nginx_conf)])
        state["url"] = f"http://127.0.0.1:{port}"
        self.save(state)
        wait_http(f"{state['url']}/healthz", proc=proxy, log=self.dir / "logs" / "nginx.log")
        return state

    def stop(self) -> None:
        state = self.load()
        procs = list(reversed(state["processes"]))
        for p in procs:
            if alive(p["pid"]):
                os.killpg(p["pid"], signal.SIGTERM)
        deadline = time.monotonic() + 10
        while any(alive(p["pid"]) for p in procs) and time.monotonic() < deadline:
            time.sleep(0.05)
        for p in procs:
            if alive(p["pid"]):
                os.killpg(p["pid"], signal.SIGKILL)
        state["processes"] = []
        self.save(state)

    def status(self) -> list[tuple[str, int, bool]]:
        return [(p["name"], p["pid"], alive(p["pid"])) for p in self.load()["processes"]]


def alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--dir", default=".stack", type=Path)
    parser.add_argument("--port", default=8080, type=int)
    parser.add_argument("--webs", default=2, type=int)
    parser.add_argument("--workers", default=2, type=int)
    parser.add_argument("--sim-latency-ms", default=20.0, type=float,
                        help="demo mode: the simulated Webex's latency per request")
    parser.add_argument("--no-demo", action="store_true",
                        help="use the Webex integration of webexintegration.env instead")
    args = parser.parse_args()
    stack = Stack(args.dir)
    if args.command == "start":
        try:
            state = stack.start(port=args.port, webs=args.webs, workers=args.workers,
                                demo=not args.no_demo, sim_latency_ms=args.sim_latency_ms)
        except BaseException:
            stack.stop()  # nothing half-started is left behind
            raise
        print(f"Flask-Realtime stack on {state['url']}/  (logs in {stack.dir}/logs; "
              f"scripts/stack stop --dir {args.dir})")
    elif args.command == "stop":
        stack.stop()
        print("stopped")
    else:
        for name, pid, up in stack.status():
            print(f"{name:10s} {pid:8d} {'up' if up else 'DOWN'}")


if __name__ == "__main__":
    main()
