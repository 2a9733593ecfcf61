"""The ``flask-realtime`` command: serve the app, list jobs, run a job in the terminal."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import click

from .config import ConfigError
from .core.jobs import JobError, ParamError, UnknownJobError
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
    """Serve the console with the embedded store: nothing else to install or start."""
    setup_logging()  # text or JSON lines on stderr (LOG_FORMAT), before the app logs
    from .config import given
    from .web.app import RequestHandler, apply_switch_interval, create_app

    app = create_app()  # a store locked by another server, damaged, too new: Commands
    apply_switch_interval(app)
    if demo is None:
        login_off = given(app.config, "LOGIN_REQUIRED") and not app.config["LOGIN_REQUIRED"]
        demo = not app.config.get("WEBEX_CLIENT_ID") and not login_off
    if demo:
        _start_demo(app, host, port)
    socketio = app.extensions["socketio"]  # Flask-SocketIO registers itself there
    click.echo(f"Flask-Realtime on http://{host}:{port}/  (Ctrl-C to quit)", err=True)
    socketio.run(app, host=host, port=port, debug=debug, use_reloader=False,
                 allow_unsafe_werkzeug=True, log_output=debug, request_handler=RequestHandler)


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


#: ``jobs`` and ``exec`` build the app only for its job registry: with the memory store,
#: so that they never open (nor wait for the lock of) a server's database or its Redis.
TERMINAL_CONFIG: dict[str, Any] = {"STORE": "memory", "REDIS_URL": None, "RUNNER": "thread"}


@main.command("jobs")
def list_jobs() -> None:
    """List the jobs this server offers, with their parameters."""
    from .web.app import create_app

    app = create_app(TERMINAL_CONFIG)
    for spec in app.extensions["flask_realtime"].registry:
        params = ", ".join(
            p.name + ("" if p.required else f"={p.to_json()['default']!r}") for p in spec.params)
        click.echo(f"{spec.name}({params})  {spec.description}")


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
def exec_job(job: str, params: tuple[str, ...], as_json: bool, token: str | None,
             webex_url: str | None, demo_user: str | None) -> None:
    """Run JOB here, its output on this terminal, then its result as the page shows it;
    Ctrl-C stops it, a second Ctrl-C quits.

    PARAMS are name=value pairs, for instance: flask-realtime exec countdown n=3 delay=0.5

    The Webex jobs act with --token on real Webex; without it, on a Webex simulator
    started here, as the demo user (or --user): flask-realtime exec space_stats
    """
    from .core.capture import CapturePump
    from .core.jobs import registry
    from .core.runner import ThreadRunner
    from .core.service import RunService
    from .jobs import builtin  # noqa: F401
    from .store.memory import MemoryStore
    from .web.app import create_app

    create_app(TERMINAL_CONFIG)  # loads configured job modules
    raw: dict[str, Any] = {}
    for pair in params:
        name, sep, value = pair.partition("=")
        if not sep:
            raise click.UsageError(f"{pair!r} is not name=value")
        raw[name] = value
    store = MemoryStore()
    service = RunService(store, registry)
    done = threading.Event()

    shown = [0]  # output lines, for --json's record (the store here keeps none)

    def show(run_id: str, lines: list[Any], epoch_ms: int, **_numbering: Any) -> None:
        shown[0] += len(lines)
        for stream, text, end in lines:
            target = sys.__stdout__ if stream == "stdout" and not as_json else sys.__stderr__
            assert target is not None
            target.write(text + end)
            target.flush()

    service.runner = ThreadRunner(service, CapturePump(show))
    service.subscribe(lambda run: done.set() if run.state.finished else None)
    services = _terminal_webex(job, token, webex_url, demo_user)
    try:
        run = service.start("terminal", job, raw, services=services)
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

    def interrupt(signum: int, frame: Any) -> None:
        if store.stop_requested(run.id):
            sys.exit(130)
        click.echo("\nStopping… (Ctrl-C again to quit at once)", err=True)
        service.stop("terminal", run.id)

    signal.signal(signal.SIGINT, interrupt)
    while not done.wait(0.2):
        pass
    final = store.get_run(run.id)
    assert final is not None
    _print_outcome(final, shown[0], as_json)
    sys.exit(0 if final.state.value == "succeeded" else 1)


def _terminal_webex(job: str, token: str | None, base_url: str | None,
                    demo_user: str | None) -> dict[str, Any]:
    """``exec``'s ``RunContext.services``: Webex access with ``token`` on real Webex; else,
    for the Webex jobs (or with ``--user``), a simulator in this process (as demo mode
    starts, docs/webex.md) and a token of its user. Other jobs get none."""
    from .core.jobs import registry
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
    from rq import Worker
    from rq.serializers import JSONSerializer

    from redis import Redis

    from .adapters.rq import QUEUE_NAME, WorkerContext, set_worker_context
    from .web.app import create_app

    app = create_app()
    if not app.config.get("REDIS_URL"):
        raise ConfigError("Set REDIS_URL: the worker takes its jobs from Redis "
                          "(docs/scale-out.md).")
    realtime = app.extensions["flask_realtime"]
    set_worker_context(WorkerContext(realtime.service, realtime.pump, realtime.services_for,
                                     app.config["STOP_GRACE_SECONDS"]))
    queue_worker = Worker([QUEUE_NAME], connection=Redis.from_url(app.config["REDIS_URL"]),
                          serializer=JSONSerializer, name=name)
    click.echo(f"Flask-Realtime worker on queue {QUEUE_NAME!r} ({app.config['REDIS_URL']})",
               err=True)
    queue_worker.work(burst=burst, with_scheduler=False)


from .webex.cli import webex_sim  # noqa: E402  (a command of this group)

main.add_command(webex_sim)

if __name__ == "__main__":
    main()
