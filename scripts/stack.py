"""The deployment topology of docker-compose.yml, natively, without a Docker engine.

    scripts/stack start [--dir .stack] [--port 8080] [--webs 2] [--workers 2]
                        [--tls-cert FILE --tls-key FILE | --tls-self-signed] [--http-port N]
    scripts/stack status|stop [--dir .stack]

(``scripts/stack`` runs ``python -m scripts.stack`` from the checkout's root.) Starts
redis-server (AOF, ``appendfsync everysec``, data in DIR/redis), the Webex simulator
(demo mode), N web processes (gunicorn, gthread, one worker each), M RQ workers
(``flask-realtime worker``) and nginx on PORT with the config rendered from
``deploy/nginx/flask-realtime.conf.template``; nginx gets its own prefix, pid, logs and
temp paths under DIR, so the machine's /etc/nginx is never touched. With a certificate
(``--tls-cert``/``--tls-key``, or ``--tls-self-signed``: one made for ``--host`` with the
``cryptography`` package, in DIR/tls) nginx serves https on PORT, with HSTS, and plain
http on ``--http-port`` only redirects there. Every process runs
in a session of its own, so the stack outlives this command;
DIR/stack.json records the processes for ``status`` and ``stop``.

It lives in scripts/, not in the package: it needs a source checkout (the nginx
template in deploy/, a virtualenv made by scripts/bootstrap) and is a developer's and
the tests' tool (tests/stack), not something an installed package runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import string
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import httpx

# Only ever run from a checkout, so the stack shares the tests' process helpers
# (tests/processes.py) instead of keeping copies of its own.
from tests.processes import NotReady, alive, free_port, session_members, wait_http, wait_until

import flask_realtime

ROOT = Path(__file__).resolve().parents[1]
# The nginx template of the checkout (the Compose files mount the same file).
TEMPLATE = ROOT / "deploy" / "nginx" / "flask-realtime.conf.template"
# The package's static files, wherever it is installed: nginx serves them from disk.
STATIC = Path(flask_realtime.__file__).resolve().parent / "web" / "static"
VENV_BIN = Path(sys.executable).parent
#: Our gunicorn settings module gives SIGTERM the app's graceful shutdown and sets
#: graceful_timeout above its grace (docs/deployment.md, "Graceful shutdown").
GUNICORN_ARGS = ["-c", "python:flask_realtime.web.gunicorn_conf", "-k", "gthread", "-w", "1",
                 "--threads", "100"]


class StackError(RuntimeError):
    """The stack cannot start; the message says what to do."""


# What ``start`` raises when it fails in a way the operator can act on: printed as
# a sentence (and the failing process's log tail), not as a traceback.
EXPECTED = (StackError, NotReady)


def executable(name: str) -> str:
    """A Debian daemon's path: /usr/sbin is often not on a user's PATH."""
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise StackError(f"{name} is not installed: run scripts/bootstrap --test "
                     f"(apt-get install {'nginx-light' if name == 'nginx' else name})")


@dataclass(frozen=True)
class TLS:
    """A certificate (PEM, the chain after it) and its private key, for nginx."""

    cert: Path
    key: Path


def self_signed_certificate(directory: Path, hosts: list[str], days: int = 30) -> TLS:
    """A key and a self-signed certificate for ``hosts`` (names or IP addresses, the
    first the subject) in ``directory``: for a test or a trial, never for users, whose
    browsers rightly refuse it. The certificate is its own CA: a client that is given
    it as the CA file verifies the connection, host name included."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    tls = TLS(directory / "cert.pem", directory / "key.pem")
    tls.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.key.touch(0o600)  # created private, before the key is in it
    tls.key.chmod(0o600)
    tls.key.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return tls


def render_nginx(directory: Path, port: int, web_ports: list[int],
                 listen_host: str = "127.0.0.1", tls: TLS | None = None,
                 http_port: int | None = None, worker_connections: int = 1024) -> Path:
    """nginx.conf for an unprivileged nginx whose files all live under ``directory``.
    Each open websocket takes two of ``worker_connections`` (the browser's and the
    upstream one): 1,024, nginx's default, is about 500 open pages.

    The site is the template with LISTEN, TLS_SETTINGS, UPSTREAM_SERVERS, STATIC_ROOT
    and ACCESS_LOG filled in, as the official nginx image does from the environment in
    docker-compose.yml. With ``tls`` it serves https on ``port`` and, given
    ``http_port``, a server there that redirects every request to https.
    """
    if not TEMPLATE.exists():
        raise StackError(f"{TEMPLATE} is missing: run the stack from a source checkout.")
    conf = directory / "nginx"
    for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi", "logs"):
        (conf / sub).mkdir(parents=True, exist_ok=True)
    for path in [conf, *conf.rglob("*")]:
        if path.is_dir():  # started as root, nginx's workers run as nobody
            path.chmod(0o777 if "tmp" in path.parts else 0o755)
    # A process that failed once is left alone for 5 s: its clients move to another.
    servers = "\n    ".join(f"server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;"
                           for p in web_ports)
    access_log = conf / "logs" / "access.log"
    site = string.Template(TEMPLATE.read_text()).safe_substitute(
        LISTEN=f"{listen_host}:{port}{' ssl' if tls else ''}",
        TLS_SETTINGS=(f"ssl_certificate {tls.cert.resolve()}; "
                      f"ssl_certificate_key {tls.key.resolve()};" if tls else ""),
        UPSTREAM_SERVERS=servers, STATIC_ROOT=str(STATIC), ACCESS_LOG=str(access_log))
    if tls and http_port:
        # $host is the Host header without its port (or the address): the browser
        # comes back to the same name on the https port. 301, as certbot writes it.
        target = "https://$host" + ("" if port == 443 else f":{port}")
        site += f"""
# Plain http: nothing but the way to https (scripts/stack --http-port).
server {{
    listen {listen_host}:{http_port};
    server_name _;
    access_log {access_log} flask_realtime;
    server_tokens off;
    return 301 {target}$request_uri;
}}
"""
    (conf / "flask-realtime.conf").write_text(site)
    tmp = conf / "tmp"
    mime = ("include /etc/nginx/mime.types;" if Path("/etc/nginx/mime.types").exists() else
            "types { text/html html; text/css css; application/javascript js; }")
    # Started as root, nginx's workers would run as nobody, who cannot read a checkout
    # under a folder only its owner may enter (mktemp -d makes them 0700): the static
    # files were then 403. This nginx is the stack's own, on a high port, so its
    # workers run as the user who started it, as they do when that is not root.
    # (A deployment's nginx keeps its distribution's user: deploy/nginx/.)
    user = "user root;\n" if os.geteuid() == 0 else ""
    (conf / "nginx.conf").write_text(f"""{user}worker_processes 1;
pid {conf}/nginx.pid;
error_log {conf}/logs/error.log warn;
daemon off;
worker_rlimit_nofile {worker_connections + 100};
events {{ worker_connections {worker_connections}; }}
http {{
    {mime}
    default_type application/octet-stream;
    access_log {conf}/logs/access.log;
    # A start's uploads (up to the template's 11m) stay in memory: nginx's worker user
    # may not reach this stack's folder (a test's is 0700), and a body spooled to
    # client_body_temp_path then failed with 500.
    client_body_buffer_size 11m;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {conf}/flask-realtime.conf;
}}
""")
    return conf / "nginx.conf"


class Stack:
    """The processes of one stack directory: start them, look at them, stop them."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory.resolve()
        self.state_file = self.dir / "stack.json"

    def load(self) -> dict[str, Any]:
        if not self.state_file.exists():
            return {"processes": []}
        state: dict[str, Any] = json.loads(self.state_file.read_text())
        return state

    def save(self, state: dict[str, Any]) -> None:
        self.state_file.write_text(json.dumps(state, indent=2))

    def processes(self, kind: str) -> list[dict[str, Any]]:
        """The recorded processes of one kind (``web``: web1, web2…; ``nginx``)."""
        return [p for p in self.load()["processes"]
                if p["name"].rstrip("0123456789") == kind]

    def spawn(self, state: dict[str, Any], name: str, args: list[str],
              env: dict[str, str] | None = None, port: int | None = None,
              ) -> subprocess.Popen[bytes]:
        log = self.dir / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=out, cwd=self.dir,
                                    env={**os.environ, **(env or {})}, start_new_session=True)
        state["processes"].append({"name": name, "pid": proc.pid, "port": port,
                                   "log": str(log)})
        self.save(state)
        return proc

    def start(self, *, port: int, webs: int = 2, workers: int = 2, demo: bool = True,
              sim_latency_ms: float = 20, listen_host: str = "127.0.0.1",
              tls: TLS | None = None, http_port: int | None = None) -> dict[str, Any]:
        """Start everything, wait until nginx answers /healthz; the state as saved.

        With ``tls``, ``url`` is https on ``port`` and ``http_url`` the plain http port
        (``http_port``, a free one unless told) that redirects to it.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        if any(alive(p["pid"]) for p in self.load()["processes"]):
            raise StackError(f"a stack is already running from {self.dir}: stop it first")
        redis_server, nginx = executable("redis-server"), executable("nginx")
        scheme = "https" if tls else "http"
        state: dict[str, Any] = {"processes": [], "port": port, "dir": str(self.dir),
                                 "url": f"{scheme}://{listen_host}:{port}"}
        if tls:
            for path in (tls.cert, tls.key):
                if not path.is_file():
                    raise StackError(f"{path} is not a file: give --tls-cert and --tls-key "
                                     "in PEM, or --tls-self-signed for a trial.")
            http_port = http_port or free_port()
            state["http_url"] = f"http://{listen_host}:{http_port}"
            state["tls"] = {"cert": str(tls.cert.resolve()), "key": str(tls.key.resolve())}
        secret_file = self.dir / "secret_key"
        if not secret_file.exists():
            secret_file.write_text(secrets.token_urlsafe(48))
            secret_file.chmod(0o600)
        redis_port = free_port()
        (self.dir / "redis").mkdir(exist_ok=True)
        self.spawn(state, "redis", [
            redis_server, "--port", str(redis_port), "--bind", "127.0.0.1",
            "--protected-mode", "yes", "--dir", str(self.dir / "redis"),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""], port=redis_port)
        # What every web process and worker shares, as in docker-compose.yml.
        env = {"REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
               "SECRET_KEY": secret_file.read_text().strip(), "FLASK_REALTIME_RUNNER": "rq",
               "FLASK_REALTIME_PROXY_COUNT": "1",
               "FLASK_REALTIME_INSTANCE_PATH": str(self.dir / "instance"),
               "FLASK_REALTIME_WEBEX_ENV_FILE": os.environ.get(
                   "FLASK_REALTIME_WEBEX_ENV_FILE", '""')}
        if demo:
            env.update(self._start_simulator(state, sim_latency_ms, listen_host))
        web_ports = []
        for n in range(1, webs + 1):
            web_port = free_port()
            web_ports.append(web_port)
            proc = self.spawn(state, f"web{n}", [
                str(VENV_BIN / "gunicorn"), *GUNICORN_ARGS, "-b", f"127.0.0.1:{web_port}",
                "flask_realtime.web.wsgi:app"], env, port=web_port)
            wait_http(f"http://127.0.0.1:{web_port}/healthz", proc=proc,
                      log=self.dir / "logs" / f"web{n}.log")
        started = {}
        for n in range(1, workers + 1):
            name = f"stack-worker-{n}-{secrets.token_hex(3)}"
            started[name] = self.spawn(state, f"worker{n}", [
                str(VENV_BIN / "flask-realtime"), "worker", "--name", name], env)
        self._wait_workers(env["REDIS_URL"], started)
        nginx_conf = render_nginx(self.dir, port, web_ports, listen_host, tls, http_port)
        proxy = self.spawn(state, "nginx", [nginx, "-p", str(self.dir / "nginx"),
                                            "-c", str(nginx_conf)], port=port)
        # Not verified: whether nginx is up, not whether its certificate names this
        # address (a real one names the public host, not 127.0.0.1).
        wait_until(lambda: _answers(f"{state['url']}/healthz"), f"{state['url']}/healthz",
                   proc=proxy, log=self.dir / "logs" / "nginx.log")
        return state

    def _wait_workers(self, redis_url: str, started: dict[str, subprocess.Popen[bytes]],
                      timeout: float = 60) -> None:
        """Return once every worker is registered with RQ: a run started the moment the
        stack is up is taken at once (else it is told no worker is there yet)."""
        from rq import Worker

        from redis import Redis

        def registered() -> bool:
            for n, proc in enumerate(started.values(), 1):
                if proc.poll() is not None:
                    log = (self.dir / "logs" / f"worker{n}.log").read_text(errors="replace")
                    raise StackError(f"worker{n} exited ({proc.returncode}).\n{log[-2000:]}")
            return set(started) <= {w.name for w in Worker.all(connection=connection)}

        with Redis.from_url(redis_url) as connection:
            wait_until(registered, "the workers' registration with RQ", timeout)

    def _start_simulator(self, state: dict[str, Any], latency_ms: float,
                         listen_host: str) -> dict[str, str]:
        """Demo mode for gunicorn: the simulator as a process, the settings that point the
        web processes and workers at it (what ``flask-realtime run`` does in-process).
        It sends login codes only to nginx's ``/redirect``, as the browser reaches it."""
        sim_port = free_port()
        client_secret = secrets.token_urlsafe(16)
        scheme = state["url"].split(":", 1)[0]  # https behind TLS: the browser's URL
        callbacks = [arg for name in dict.fromkeys((listen_host, "127.0.0.1", "localhost"))
                     for arg in ("--redirect-uri",
                                 f"{scheme}://{name}:{state['port']}/redirect")]
        sim = self.spawn(state, "webex-sim", [
            str(VENV_BIN / "flask-realtime"), "webex-sim", "--port", str(sim_port),
            "--latency-ms", str(latency_ms), "--jitter-ms", "20",
            "--client-id", "demo-client", "--client-secret", client_secret, *callbacks],
            port=sim_port)
        wait_http(f"http://127.0.0.1:{sim_port}/v1/people/me", proc=sim,
                  log=self.dir / "logs" / "webex-sim.log")
        return {"FLASK_REALTIME_DEMO_MODE": "true", "CLIENT_ID": "demo-client",
                "CLIENT_SECRET": client_secret,
                "FLASK_REALTIME_WEBEX_BASE_URL": f"http://127.0.0.1:{sim_port}/v1"}

    def stop(self) -> None:
        """SIGTERM every process the stack started, newest first, SIGKILL what is left
        after 10 s. A process is found by its session, not its group: RQ's work-horses
        put themselves in groups of their own and would outlive their worker."""
        state = self.load()
        sessions = [p["pid"] for p in reversed(state["processes"])]
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            members = [pid for sid in sessions for pid in session_members(sid)]
            for pid in members:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + grace
            while any(alive(pid) for pid in members) and time.monotonic() < deadline:
                time.sleep(0.05)
        state["processes"] = []
        self.save(state)

    def status(self) -> list[tuple[str, int, bool]]:
        return [(p["name"], p["pid"], alive(p["pid"])) for p in self.load()["processes"]]


def _answers(url: str) -> bool:
    """Whether ``url`` answers below 500, certificate not checked (see ``start``)."""
    try:
        return httpx.get(url, timeout=2, verify=False).status_code < 500
    except httpx.HTTPError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/stack",
                                     description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--dir", default=".stack", type=Path)
    parser.add_argument("--port", default=8080, type=int, help="nginx's port")
    parser.add_argument("--host", default="127.0.0.1",
                        help="nginx's address (the web processes, Redis and the simulator "
                             "always listen on 127.0.0.1)")
    parser.add_argument("--webs", default=2, type=int)
    parser.add_argument("--workers", default=2, type=int)
    parser.add_argument("--sim-latency-ms", default=20.0, type=float,
                        help="demo mode: the simulated Webex's latency per request")
    parser.add_argument("--no-demo", action="store_true",
                        help="use the Webex integration of webexintegration.env instead")
    parser.add_argument("--tls-cert", type=Path, metavar="FILE",
                        help="https on --port with this certificate (PEM, chain included)")
    parser.add_argument("--tls-key", type=Path, metavar="FILE",
                        help="the private key of --tls-cert (PEM)")
    parser.add_argument("--tls-self-signed", action="store_true",
                        help="https with a self-signed certificate for --host, made in "
                             "DIR/tls (a trial: browsers warn about it)")
    parser.add_argument("--http-port", type=int,
                        help="with https: the plain http port that redirects to it "
                             "(default: a free one)")
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key) or (args.tls_cert and args.tls_self_signed):
        parser.error("give --tls-cert with --tls-key, or --tls-self-signed alone")
    stack = Stack(args.dir)
    if args.command == "start":
        tls = TLS(args.tls_cert, args.tls_key) if args.tls_cert else None
        if args.tls_self_signed:
            tls = self_signed_certificate(
                args.dir / "tls", list(dict.fromkeys([args.host, "127.0.0.1", "localhost"])))
        try:
            state = stack.start(port=args.port, webs=args.webs, workers=args.workers,
                                demo=not args.no_demo, sim_latency_ms=args.sim_latency_ms,
                                listen_host=args.host, tls=tls, http_port=args.http_port)
        except BaseException as exc:
            stack.stop()  # nothing half-started is left behind
            if isinstance(exc, EXPECTED):
                print(f"stack: {exc}", file=sys.stderr)
                return 1
            raise
        print(f"Flask-Realtime stack on {state['url']}/  (logs in {stack.dir}/logs; "
              f"scripts/stack stop --dir {args.dir})")
        if "http_url" in state:
            print(f"  {state['http_url']}/ redirects there")
    elif args.command == "stop":
        stack.stop()
        print("stopped")
    else:
        rows = stack.status()
        for name, pid, up in rows:
            print(f"{name:10s} {pid:8d} {'up' if up else 'DOWN'}")
        return 0 if rows and all(up for _, _, up in rows) else 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
