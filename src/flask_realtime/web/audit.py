"""The audit trail: who did what, when, from which address (docs/access.md, "Audit trail").

Each entry is a JSON object appended to the store (``AuditStore``, web/ports.py): ``at``
(epoch seconds), ``actor`` (the user, by e-mail address), ``action`` (one of
:data:`ACTIONS`), ``address`` (the client's address as the app sees it: behind a proxy,
with ``PROXY_COUNT``, the forwarded one), and where they apply ``run_id``, ``job``,
``owner`` (the run's user, when an admin acts on it) and ``detail``.

Secrets never go in: no token, cookie, session id, OAuth code or share-link token is
ever passed here, and a run's parameters go in as its record keeps them, except those
marked secret (``Param.secret``), recorded as ``"[secret]"``. Writing is best effort:
when the store cannot be reached the action goes on and the log says what was lost
(without the detail).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from flask import current_app, has_request_context, request

from ..core.jobs import JobError, JobRegistry
from ..core.ports import StoreUnavailableError
from ..core.runs import Run
from .ports import AuditStore

log = logging.getLogger(__name__)

EXTENSION = "flask_realtime_audit"
#: What an entry's ``action`` may be.
ACTIONS = (
    "login", "login_refused", "logout", "start", "stop", "rerun", "share", "revoke_share",
    "download", "admin_read", "admin_watch", "admin_stop", "admin_download",
    "admin_audit_export", "schedule",
)
SECRET = "[secret]"
#: The columns of the CSV download, in order.
CSV_COLUMNS = ("id", "time", "actor", "action", "address", "run_id", "job", "owner",
               "detail")


class Audit:
    """Appends entries to the store with the configured retention
    (``AUDIT_RETENTION_DAYS``, ``AUDIT_RETENTION_ENTRIES``)."""

    def __init__(self, store: AuditStore, config: Mapping[str, Any]) -> None:
        self.store = store
        days = config.get("AUDIT_RETENTION_DAYS")
        self.max_age = float(days) * 86_400 if days else None
        entries = config.get("AUDIT_RETENTION_ENTRIES")
        self.max_entries = int(entries) if entries else None

    def record(self, action: str, actor: str, *, address: str | None = None,
               run: Run | None = None, detail: Mapping[str, Any] | None = None,
               ) -> dict[str, Any]:
        """Append one entry and return it; a store that cannot be reached loses it (with a
        warning in the log), never the action."""
        assert action in ACTIONS, action
        entry: dict[str, Any] = {"at": time.time(), "actor": actor, "action": action,
                                 "address": address}
        if run is not None:
            entry.update(run_id=run.id, job=run.job)
            if run.user != actor:
                entry["owner"] = run.user
        if detail:
            entry["detail"] = dict(detail)
        try:
            entry["id"] = self.store.append_audit(entry, max_age=self.max_age,
                                                  max_entries=self.max_entries)
        except StoreUnavailableError:
            log.warning("audit entry lost, the store cannot be reached: %s %s run %s",
                        actor, action, entry.get("run_id", "-"))
        return entry

    def entries(self, *, before: str | None = None, limit: int = 100,
                actor: str | None = None, action: str | None = None,
                scan: int = 100_000) -> list[dict[str, Any]]:
        """At most ``limit`` entries, newest first (older than ``before``), of ``actor``
        and ``action`` when given; at most ``scan`` entries are looked at for them."""
        return list(self.iterate(before=before, actor=actor, action=action, scan=scan,
                                 limit=limit))

    def iterate(self, *, before: str | None = None, actor: str | None = None,
                action: str | None = None, scan: int = 1 << 62,
                limit: int = 1 << 62) -> Iterator[dict[str, Any]]:
        """The entries newest first, a page at a time from the store, filtered."""
        looked = given = 0
        while looked < scan and given < limit:
            page = self.store.read_audit(before=before, limit=min(500, scan - looked))
            if not page:
                return
            for entry in page:
                if (actor is None or entry.get("actor") == actor) and (
                        action is None or entry.get("action") == action):
                    yield entry
                    given += 1
                    if given >= limit:
                        return
            looked += len(page)
            before = page[-1]["id"]


def init_app(app: Any, store: AuditStore) -> Audit:
    """Keep an :class:`Audit` over ``store`` on ``app`` (:func:`record` finds it)."""
    audit = Audit(store, app.config)
    app.extensions[EXTENSION] = audit
    return audit


def record(action: str, actor: str, *, run: Run | None = None,
           detail: Mapping[str, Any] | None = None) -> None:
    """Append an entry for the current request (HTTP or Socket.IO event): its address is
    the request's ``remote_addr``."""
    audit: Audit | None = current_app.extensions.get(EXTENSION)
    if audit is None:
        return
    address = request.remote_addr if has_request_context() else None
    audit.record(action, actor, address=address, run=run, detail=detail)


def params_detail(registry: JobRegistry, run: Run) -> dict[str, Any]:
    """The run's parameters as an audit entry keeps them: secret ones replaced."""
    try:
        secret = {p.name for p in registry.get(run.job).params if p.secret}
    except JobError:  # a job no longer offered: its record's parameters as they are
        secret = set()
    return {"params": {name: SECRET if name in secret else value
                       for name, value in run.params.items()}}


def iso(epoch: float) -> str:
    """An entry's time as the downloads show it: ISO 8601, UTC, milliseconds."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def export_json(entry: Mapping[str, Any]) -> dict[str, Any]:
    """An entry as the API and the JSON download give it: with ``time`` (ISO) besides
    ``at``."""
    return {"id": entry.get("id"), "time": iso(float(entry.get("at", 0))), **{
        k: v for k, v in entry.items() if k != "id"}}


def _cell(value: Any) -> str:
    """A CSV cell that a spreadsheet will not run: text starting with ``=``, ``+``,
    ``-``, ``@``, a tab or a carriage return gets a leading ``'`` (formula injection)."""
    text = "" if value is None else (
        value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_lines(entries: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """The CSV download: a header line, then one line per entry (:data:`CSV_COLUMNS`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue()
    for entry in entries:
        buffer.seek(0)
        buffer.truncate()
        shown = export_json(entry)
        writer.writerow([_cell(shown.get(column)) for column in CSV_COLUMNS])
        yield buffer.getvalue()
