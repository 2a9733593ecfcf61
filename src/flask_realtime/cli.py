"""The ``flask-realtime`` command: serve the app, list jobs, run a job in the terminal."""

from __future__ import annotations

import contextlib
import importlib
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .config import ConfigError
from .core.jobs import JobError, JobRegistry, ParamError, UnknownJobError

if TYPE_CHECKING:  # the commands import what they use when they run: startup stays quick
    from .assembly import Store
    from .core.capture import LineSink
    from .core.system import System
    from .notify import Notifier
    from .web.ports import TokenStore
from .logs import setup as setup_logging


class Commands(click.Group):
    """The command group, and the one place where configuration the user must fix
    (:class:`~flask_realtime.config.ConfigError`: a setting, a job module; or a store
    that cannot be opened) becomes one sentence on stderr and exit status 2, whichever
    command met it. ``--debug`` (or FLASK_REALTIME_DEBUG) lets the traceback through."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if ctx.params.get("debug") or not _user_must_fix(exc):
                raise
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:  # imported when it is the command run (or listed)
            module, _, name = LAZY_COMMANDS[cmd_name].partition(":")
            command: click.Command = getattr(importlib.import_module(module), name)
            return command
        return super().get_command(ctx, cmd_name)


#: Commands imported only when they run (click's lazy subcommands): ``webex-sim``
#: imports the simulator and its aiohttp (9 MB), which ``run`` does not need outside
#: demo mode (docs/performance.md, "Memory per store", issue 21 item 3).
LAZY_COMMANDS = {"webex-sim": "flask_realtime.webex.cli:webex_sim"}


def _user_must_fix(exc: BaseException) -> bool:
    from .store import StoreOpenError  # here: the store package is slow to import

    return isinstance(exc, ConfigError | StoreOpenError)


@click.group(cls=Commands)
@click.version_option(package_name="flask-realtime")
@click.option("--debug", is_flag=True, envvar="FLASK_REALTIME_DEBUG",
              help="Show the traceback of a startup error, not only its sentence.")
def main(debug: bool) -> None:
    """Flask-Realtime: run Python jobs and watch their output live in the browser."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="FLASK_REALTIME_HOST",
              show_envvar=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535),
              envvar="FLASK_REALTIME_PORT", show_envvar=True)
@click.option("--debug", is_flag=True, help="Flask debug mode (never on a public address).")
@click.option("--demo/--no-demo", default=None,
              help="Log in against a built-in Webex simulator. Default: on when no Webex "
                   "integration is configured and login is not switched off.")
def run(host: str, port: int, debug: bool, demo: bool | None) -> None:
    """Serve the console with the embedded store: nothing else to install or start.

    SIGTERM (or Ctrl-C) shuts it down gracefully: no new connections, then
    ``web.app.shutdown`` (docs/deployment.md, "Graceful shutdown"); a second one
    quits at once."""
    setup_logging()  # text or JSON lines on stderr (LOG_FORMAT), before the app logs
    from werkzeug.serving import make_server

    from . import malloc

    malloc.tune()  # freed heap goes back to the system after a run (flask_realtime/malloc.py)

    from .config import given
    from .web.app import RequestHandler, apply_switch_interval, create_app, shutdown

    app = create_app()  # a store locked by another server, damaged, too new: Commands
    apply_switch_interval(app)
    if demo is None:
        login_off = given(app.config, "LOGIN_REQUIRED") and not app.config["LOGIN_REQUIRED"]
        demo = not app.config.get("WEBEX_CLIENT_ID") and not login_off
    if demo:
        _start_demo(app, host, port)
    database = getattr(app.extensions["flask_realtime"].store, "path", None)
    if database is not None:  # the embedded store: say where the state is kept
        click.echo(f"State kept in {database}", err=True)
    app.debug = debug
    # Werkzeug's server, as Flask-SocketIO's run() starts it in threading mode, but held
    # here: a shutdown first stops it taking connections, then ends the app.
    server = make_server(host, port, app, threaded=True, request_handler=RequestHandler)
    from . import collector

    collector.settle()  # the startup heap out of the collector's way (collector.py)

    def stop_serving(signum: int, frame: Any) -> None:
        # A second signal ends the process at once (runs left `running` are failed at
        # the next start on SQLite, or by another process's executor check on Redis).
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        click.echo("Shutting down… (again to quit at once)", err=True)
        # shutdown() waits for serve_forever, which runs in this (the main) thread
        threading.Thread(target=server.shutdown, name="flask-realtime-shutdown").start()

    signal.signal(signal.SIGTERM, stop_serving)
    signal.signal(signal.SIGINT, stop_serving)
    click.echo(f"Flask-Realtime on http://{host}:{port}/  (Ctrl-C to quit)", err=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()  # no new connections from here on
        shutdown(app)


def _start_demo(app: Any, host: str, port: int) -> Any:
    """Demo mode: a Webex simulator in this process, and login pointed at it. The
    simulator sends login codes only to this app's own callback: ``/redirect`` at the
    bound address and at ``localhost``/``127.0.0.1``/``[::1]`` on ``port``, and at
    ``REDIRECT_URI`` when that is set (reached under another name). Returns its handle."""
    from .web.auth import configure_demo
    from .webex.simulator import SimulatorConfig, start_simulator

    hosts = ["localhost", "127.0.0.1", "[::1]"]
    if host not in ("", "0.0.0.0", "::"):  # a wildcard address names no host to call back
        hosts.insert(0, f"[{host}]" if ":" in host else host)
    redirect_uris = [f"http://{name}:{port}/redirect" for name in dict.fromkeys(hosts)]
    if app.config.get("WEBEX_REDIRECT_URI"):
        redirect_uris.append(str(app.config["WEBEX_REDIRECT_URI"]))
    simulator = start_simulator(SimulatorConfig(latency_ms=20, jitter_ms=20,
                                                redirect_uris=redirect_uris))
    configure_demo(app, simulator)
    click.echo(f"Demo mode: Webex is simulated at {simulator.base_url} (users user1..user"
               f"{simulator.config.users}@{simulator.config.domain}); set CLIENT_ID, "
               "CLIENT_SECRET and REDIRECT_URI for real Webex (docs/auth.md).", err=True)
    return simulator


#: ``jobs`` and ``exec`` run on the memory store, so that they never open (nor wait for
#: the lock of) a server's database or its Redis, and in threads of their own.
TERMINAL_CONFIG: dict[str, Any] = {"STORE": "memory", "REDIS_URL": None, "RUNNER": "thread"}


class _Settings(dict[str, Any]):
    """The configuration as :func:`~.config.load` fills it for a command without the
    app. ``root_path`` is the instance folder, where the load looks for the Webex
    integration's env file after the working directory, as in the app's config."""

    root_path: str | None = None


def _settings(test_config: dict[str, Any] | None = None) -> _Settings:
    """The configuration: defaults, environment, ``test_config``; :class:`ConfigError`
    for a value a setting does not accept."""
    from . import config

    loaded = _Settings()
    loaded.root_path = config.instance_path(test_config)
    config.load(loaded, test_config)
    return loaded


def _terminal_system(sink: LineSink | None = None) -> System[Store]:
    """The core for ``jobs`` and ``exec``: the memory store, every job the configuration
    names (:class:`~.core.jobs.JobModuleError` if one cannot load), output to ``sink``."""
    from .assembly import build
    from .store.memory import MemoryStore

    return build(_settings(TERMINAL_CONFIG), store=MemoryStore(), sink=sink, reap=False)


@main.command("jobs")
def list_jobs() -> None:
    """List the jobs this server offers, with their parameters (and who may run them,
    for a job with an ``allowed`` rule: docs/access.md)."""
    system = _terminal_system()
    system.close()
    for spec in system.registry:
        params = ", ".join(
            p.name + ("" if p.required else f"={p.to_json()['default']!r}") for p in spec.params)
        allowed = ("" if spec.allowed is None
                   else f"  [allowed: {', '.join(spec.allowed) or 'nobody'}]")
        click.echo(f"{spec.name}({params})  {spec.description}{allowed}")


@main.command("exec")
@click.argument("job")
@click.argument("params", nargs=-1)
@click.option("--json", "as_json", is_flag=True,
              help="Print the run record with its result as JSON on stdout (the job's "
                   "output then goes to stderr).")
@click.option("--token", envvar="FLASK_REALTIME_WEBEX_TOKEN", default=None, metavar="TOKEN",
              help="A Webex access token (an integration's, or a personal one from "
                   "developer.webex.com): the Webex jobs then act on real Webex. The "
                   "variable FLASK_REALTIME_WEBEX_TOKEN keeps it out of the process list.")
@click.option("--webex-url", default=None, metavar="URL",
              help="Webex's API with --token (default https://webexapis.com/v1).")
@click.option("--user", "demo_user", default=None, metavar="EMAIL",
              help="Demo mode (no --token): the simulated user to act as, user1 to user3 "
                   "(default user1@example.com).")
@click.option("--files", "files_to", default=None, metavar="DIR",
              type=click.Path(file_okay=False, path_type=Path),
              help="Write the files the run keeps (its artifacts and pictures) into DIR.")
def exec_job(job: str, params: tuple[str, ...], as_json: bool, token: str | None,
             webex_url: str | None, demo_user: str | None,
             files_to: Path | None = None) -> None:
    """Run JOB here, its output on this terminal, then its result as the page shows it;
    Ctrl-C stops it, a second Ctrl-C quits. What the job reads (input(), sys.stdin,
    getpass, a command's stdin) comes from this terminal's stdin, a line each time the
    job asks; Ctrl-D (or the end of piped input) is end-of-file.

    PARAMS are name=value pairs, for instance: flask-realtime exec countdown n=3 delay=0.5

    The Webex jobs act with --token on real Webex; without it, on a Webex simulator
    started here, as the demo user (or --user): flask-realtime exec space_stats
    """
    done = threading.Event()
    shown = [0]  # output lines, for --json's record (the store here keeps none)

    terminal = _stdin_is_a_terminal()

    def show(run_id: str, lines: list[Any], epoch_ms: int, **_numbering: Any) -> None:
        shown[0] += len(lines)
        for index, (stream, text, end) in enumerate(lines):
            if terminal and (stream == "stdin" or (
                    (text, end) == ("", "\n") and index + 1 < len(lines)
                    and lines[index + 1][0] == "stdin")):
                continue  # the terminal echoed what was typed, and its Enter, already
            target = (sys.__stdout__ if stream in ("stdout", "stdin") and not as_json
                      else sys.__stderr__)
            assert target is not None
            target.write(text + end)
            target.flush()

    system = _terminal_system(sink=show)  # the output is shown, not stored
    try:
        _exec_on(system, job, params, as_json, token, webex_url, demo_user, done, shown,
                 files_to)
    finally:
        system.close()


def _exec_on(system: System[Store], job: str, params: tuple[str, ...], as_json: bool,
             token: str | None, webex_url: str | None, demo_user: str | None,
             done: threading.Event, shown: list[int], files_to: Path | None = None) -> None:
    """``exec``'s run on ``system``; ``done`` is set when it has ended and ``shown``
    counts the lines its sink printed. Exits the process with the run's status."""
    raw: dict[str, Any] = {}
    for pair in params:
        name, sep, value = pair.partition("=")
        if not sep:
            raise click.UsageError(f"{pair!r} is not name=value")
        raw[name] = value
    store, service = system.store, system.service
    files = _terminal_files(system.registry, job, raw)
    service.subscribe(lambda run: done.set() if run.state.finished else None)
    waits = _Waits()
    service.subscribe(waits.update)
    services = _terminal_webex(system.registry, job, token, webex_url, demo_user)
    system.start()
    # Ctrl-C is Stop from before the run exists: a job may print (and the user press
    # Ctrl-C) before start() returns; such a press stops the run once it is known.
    current: dict[str, Any] = {"run": None, "pressed": False}

    def interrupt(signum: int, frame: Any) -> None:
        if current["run"] is None:
            current["pressed"] = True
            return
        run_id = current["run"].id
        if store.stop_requested(run_id):
            sys.exit(130)
        click.echo("\nStopping… (Ctrl-C again to quit at once)", err=True)
        service.stop("terminal", run_id)

    signal.signal(signal.SIGINT, interrupt)
    try:
        run = service.start("terminal", job, raw, services=services, files=files)
    except ParamError as exc:
        for name, problem in exc.errors.items():
            click.echo(f"error: {name} {problem}", err=True)
        sys.exit(2)
    except UnknownJobError as exc:
        click.echo(f"error: There is no job named {exc.name!r}: `flask-realtime jobs` lists "
                   "the jobs.", err=True)
        sys.exit(2)
    except JobError as exc:
        raise click.ClickException(str(exc)) from exc
    current["run"] = run
    if current["pressed"]:
        interrupt(signal.SIGINT, None)
    threading.Thread(target=_forward_stdin, args=(service, run.id, waits),
                     name="flask-realtime-exec-stdin", daemon=True).start()
    while not done.wait(0.2):
        pass
    final = store.get_run(run.id)
    assert final is not None
    _save_files(store, final, files_to)
    _print_outcome(final, shown[0], as_json)
    sys.exit(0 if final.state.value == "succeeded" else 1)


def _stdin_is_a_terminal() -> bool:
    real = sys.__stdin__
    return bool(real is not None and not real.closed and real.isatty())


class _Waits:
    """The run's waits for input, as its state changes announce them (``exec`` has one
    run): each new wait is numbered, so that one line is read for each."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.number = 0
        self.wait: dict[str, Any] | None = None
        self.over = False

    def update(self, run: Any) -> None:
        with self.changed:
            if run.waiting_input and not self.wait:
                self.number += 1
            self.wait = run.waiting_input
            self.over = run.state.finished
            self.changed.notify_all()

    def next(self, after: int) -> tuple[int, dict[str, Any]] | None:
        """The wait after number ``after`` once it comes; None once the run is over."""
        with self.changed:
            self.changed.wait_for(lambda: self.over or (self.wait and self.number > after))
            if self.over or self.wait is None:
                return None
            return self.number, self.wait


def _forward_stdin(service: Any, run_id: str, waits: _Waits) -> None:
    """``exec``: each time the run waits for input, read one line of this process's
    stdin and send it (a secret one, on a terminal, without echo); at end-of-file send
    end-of-file and stop."""
    import getpass

    from .core.service import InputError

    handled = 0
    while (found := waits.next(handled)) is not None:
        handled, wait = found
        try:
            if wait.get("secret") and _stdin_is_a_terminal():
                line = getpass.getpass("") + "\n"  # the job printed the prompt already
            else:
                line = sys.stdin.readline()  # this thread is no run's: the real stdin
        except EOFError:
            line = ""
        except (OSError, ValueError):  # stdin closed
            line = ""
        try:
            service.send_input("terminal", run_id, line or None, eof=not line)
        except InputError:
            return  # the run ended meanwhile, or its input did
        if not line:
            return

def _terminal_files(registry: JobRegistry, job: str, raw: dict[str, Any]) -> dict[str, Any]:
    """``exec``'s uploads: a file parameter's value is the path of a local file, taken
    out of ``raw`` and read (its name kept for display, as a browser's would be)."""
    from .core.files import IncomingFile

    try:
        takes = registry.get(job).file_params
    except JobError:
        return {}  # service.start says there is no such job
    files: dict[str, Any] = {}
    for name in takes:
        if name not in raw:
            continue
        path = Path(raw.pop(name)).expanduser()
        try:
            files[name] = IncomingFile(path.name, path.read_bytes())
        except OSError as exc:
            raise click.UsageError(f"{name}={path}: cannot read that file ({exc.strerror}); "
                                   "give the path of a file to upload.") from exc
    return files


def _terminal_webex(registry: JobRegistry, job: str, token: str | None, base_url: str | None,
                    demo_user: str | None) -> dict[str, Any]:
    """``exec``'s ``RunContext.services``: Webex access with ``token`` on real Webex; else,
    for the Webex jobs of ``registry`` (or with ``--user``), a simulator in this process
    (as demo mode starts, docs/webex.md) and a token of its user. Other jobs get none."""
    from .webex.client import DEFAULT_BASE_URL, WebexAccess, static_token

    if token:
        return {"webex": WebexAccess(base_url or DEFAULT_BASE_URL, static_token(token.strip()))}
    try:
        module = registry.get(job).func.__module__
    except JobError:
        return {}  # service.start says there is no such job
    if demo_user is None and not module.startswith("flask_realtime.webex."):
        return {}
    from .webex.simulator import SimulatorConfig, start_simulator

    config = SimulatorConfig(latency_ms=20, jitter_ms=20)
    email = (demo_user or "user1").strip().lower()
    if "@" not in email:
        email = f"{email}@{config.domain}"
    simulator = start_simulator(config)  # its thread ends with the process
    if email not in simulator.dataset.by_email:
        simulator.stop()
        raise click.UsageError(f"--user {demo_user}: the simulated users are user1 to "
                               f"user{config.users}@{config.domain}.")
    click.echo(f"Demo mode: Webex is simulated at {simulator.base_url}, acting as {email}; "
               "give --token for real Webex.", err=True)
    return {"webex": WebexAccess(simulator.base_url,
                                 static_token(simulator.token_for(email)))}


def _save_files(store: Any, run: Any, folder: Path | None) -> None:
    """Write the run's artifacts into ``folder`` (``--files``), each under its name (a
    relative path, checked when it was kept); without it, say on stderr that there
    are some and how to keep them (this process's store goes with it)."""
    from .core.files import ARTIFACT_PREFIX

    if not run.artifacts:
        return
    if folder is None:
        click.echo(f"The run kept {len(run.artifacts)} file(s) "
                   f"({', '.join(a['name'] for a in run.artifacts)}): give --files DIR to "
                   "write them there.", err=True)
        return
    root = folder.resolve()
    for artifact in run.artifacts:
        target = (root / artifact["name"]).resolve()
        data = store.get_blob(run.id, ARTIFACT_PREFIX + artifact["name"])
        if data is None or not target.is_relative_to(root):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        click.echo(f"wrote {target}", err=True)


def _print_outcome(run: Any, lines: int, as_json: bool) -> None:
    """The end of ``exec``: the state (and error) on stderr, then the result on stdout as
    the page shows it (web/static/result.js): a list of objects as a table, anything
    else as JSON; with ``--json``, the run record with the result instead."""
    import json

    if as_json:
        click.echo(json.dumps(run.to_json(lines=lines, with_result=True), indent=2,
                              ensure_ascii=False))
        return
    click.echo(f"[{run.state.value}]" + (f" {run.error}" if run.error else "")
               + (" Result:" if run.has_result else ""), err=True)
    if run.has_result:
        table = _table(run.result)
        click.echo(table if table is not None else json.dumps(run.result, indent=2,
                                                             ensure_ascii=False))


def _table(result: Any) -> str | None:
    """A non-empty list of objects as aligned text: a header, a rule, a row each (the
    columns are every key, in the order first seen; widths in display columns, so wide
    characters keep it aligned); None for any other result."""
    import json

    import wcwidth

    if not (isinstance(result, list) and result and all(isinstance(r, dict) for r in result)):
        return None
    columns = list(dict.fromkeys(key for row in result for key in row))

    def cell(value: Any) -> str:
        if value is None:
            return ""
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return " ".join(text.splitlines())  # one row, one line

    rows = [[str(c) for c in columns], *([cell(row.get(c)) for c in columns] for row in result)]
    widths = [max(wcwidth.width(row[i]) for row in rows) for i in range(len(columns))]
    lines = ["  ".join(wcwidth.ljust(text, width) for text, width in zip(row, widths,
                                                                          strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


@main.command("worker")
@click.option("--burst", is_flag=True, help="Quit when the queue is empty.")
@click.option("--name", default=None, help="Worker name (default: RQ's).")
def worker(burst: bool, name: str | None) -> None:
    """Execute runs from Redis (REDIS_URL) as an RQ worker: jobs run here, output flows
    to the web processes through Redis."""
    setup_logging()  # text or JSON lines on stderr (LOG_FORMAT), before the app logs
    from . import malloc

    malloc.tune()  # a run's output goes through this process too (malloc.py)
    from rq.serializers import JSONSerializer

    from redis import Redis

    from .adapters.rq import QUEUE_NAME, RunWorker, WorkerContext
    from .assembly import build
    from .core.system import job_limits
    from .store import open_store
    from .web.states import QueueAnnouncer

    config = _settings()

    def redis_store() -> Store:  # called once the job modules have loaded
        if not config.get("REDIS_URL"):
            raise ConfigError("Set REDIS_URL: the worker takes its jobs from Redis "
                              "(docs/scale-out.md).")
        return open_store(config)

    # No Flask, no Socket.IO, no reaper (the web processes watch for lost executors).
    system = build(config, store=redis_store, reap=False, runs_end_here=True)
    try:
        system.service_providers.append(_worker_webex(config, system.store))
        notifier = _worker_notifier(config, system)
        # The runs this worker moves are announced to their users' sockets, whichever
        # web process holds them, as a web process announces its own.
        system.service.subscribe(QueueAnnouncer(system.store, config["REDIS_URL"],
                                                admins=bool(config.get("ADMIN_USERS"))))
        queue_worker = RunWorker(
            [QUEUE_NAME], connection=Redis.from_url(config["REDIS_URL"]),
            serializer=JSONSerializer, name=name, context=WorkerContext(
                system.service, system.pump, system.services_for,
                float(config["STOP_GRACE_SECONDS"]), float(config["SHUTDOWN_GRACE_SECONDS"]),
                isolation=str(config["ISOLATION"]), limits=job_limits(config),
                after_run=notifier.deliver_pending))
        click.echo(f"Flask-Realtime worker on queue {QUEUE_NAME!r} ({config['REDIS_URL']})",
                   err=True)
        queue_worker.work(burst=burst, with_scheduler=False)
    finally:
        system.close()


def _worker_webex(settings: _Settings, store: TokenStore) -> Callable[[str], dict[str, Any]]:
    """The worker's share of ``RunContext.services``, as the web tier's ``Auth.services``
    gives it (web/auth.py): with login on, Webex access with the user's tokens, read
    and renewed through the store (web/tokens.py, no Flask). With login off, none."""
    if not settings.get("LOGIN_REQUIRED"):
        return lambda user: {}
    from .web.tokens import TokenVault, encryption
    from .webex.client import WebexAccess

    config: Mapping[str, Any] = settings
    if not settings.get("SECRET_KEY") and not settings.get("TOKEN_ENCRYPTION_KEY"):
        config = {**settings, "SECRET_KEY": _instance_secret_key(settings)}
    vault = TokenVault(store, encryption(config), config)
    return lambda user: {"webex": WebexAccess(config["WEBEX_BASE_URL"], vault.provider(user))}


def _worker_notifier(settings: _Settings, system: System[Store]) -> Notifier:
    """The notifier of the runs this worker ends (docs/notifications.md: the process
    that finishes a run tells its owner), with the web processes' keys and tokens."""
    from .notify import install
    from .web.tokens import TokenVault, encryption

    config: Mapping[str, Any] = settings
    if not settings.get("SECRET_KEY") and not settings.get("TOKEN_ENCRYPTION_KEY"):
        try:
            config = {**settings, "SECRET_KEY": _instance_secret_key(settings)}
        except ConfigError:
            import secrets

            # No key to read the users' webhook secrets and tokens with: those channels
            # fail with a sentence on the run; login off needs no key otherwise.
            config = {**settings, "SECRET_KEY": secrets.token_urlsafe(32)}
    vault = TokenVault(system.store, encryption(config), config)
    return install(system, config, fernet=encryption(config), user_token=vault.access_token)


def _instance_secret_key(config: _Settings) -> str:
    """The key a web process generated in the instance folder (web/app.py), when the
    worker shares that folder (FLASK_REALTIME_INSTANCE_PATH); else ConfigError."""
    from pathlib import Path

    if config.root_path:
        with contextlib.suppress(OSError):
            return (Path(config.root_path) / "secret_key").read_text().strip()
    raise ConfigError("Set SECRET_KEY to the web processes' own: the worker reads the users' "
                      "Webex tokens with it (docs/scale-out.md).")


if __name__ == "__main__":
    main()
