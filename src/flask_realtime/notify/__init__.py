"""Notifications: telling a run's owner how it ended (docs/notifications.md).

* :mod:`.notifier`: :class:`Notifier`, the queue and its threads, the record on the run;
  its docstring is the interface others call (``run_finished``, ``tell``, ``close``).
* :mod:`.preferences`: each user's choices, kept in the store.
* :mod:`.webex`: the Webex message (markdown) and its sending, by the bot or the user.
* :mod:`.webhook`: SSRF checks, the HMAC-SHA256 signature and the POST.

:func:`install` builds a :class:`Notifier` for a process's System: the web app
(``web/app.py``) and ``flask-realtime worker`` (``cli.py``) call it, so that whichever
process moves a run to its final state tells its owner.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..ciphers import Cipher
from ..core.scheduler import NotifyOwner, log_owner_notice
from ..core.schedules import Schedule
from ..core.system import System
from .notifier import Notifier, UserToken
from .preferences import Preferences, PreferenceStore

__all__ = ["Notifier", "PreferenceStore", "Preferences", "install"]


def install(system: System[Any], config: Mapping[str, Any], *, fernet: Cipher,
            user_token: UserToken | None = None) -> Notifier:
    """A :class:`Notifier` listening to ``system``'s runs and closed by its ``close()``;
    ``system.notifier`` (``core.system.OwnerNotifier``) names it for the web tier and for
    others. A schedule that pauses itself (its owner's login is gone: docs/schedules.md)
    tells its owner through it too, once per pause, besides the log line."""
    notifier = Notifier(system.service, system.store, config, fernet=fernet,
                        user_token=user_token).attach(system)
    system.notifier = notifier
    if system.scheduler is not None:
        system.scheduler.notify_owner = _schedule_notice(notifier)
    return notifier


def _schedule_notice(notifier: Notifier) -> NotifyOwner:
    def tell(user: str, schedule: Schedule, sentence: str) -> None:
        log_owner_notice(user, schedule, sentence)
        notifier.tell(user, f"Your schedule {schedule.name!r} paused itself", sentence,
                      key=f"schedule:{schedule.id}:{schedule.version}")
    return tell
