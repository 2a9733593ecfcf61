"""The Socket.IO rooms this server puts sockets in, named in one place.

* ``user:<user>`` (:func:`user_room`): every socket of one user, joined at connect
  (web/events.py). Run state changes are emitted to it through the message queue, so
  with several web processes every tab of the user hears them (web/realtime.py).
* ``live:<run_id>`` (:func:`live_room`): the watchers of one run that are caught up,
  entered and left only by the delivery thread of their own process (web/delivery.py).
"""

from __future__ import annotations


def user_room(user: str) -> str:
    """The room of every socket of ``user``."""
    return f"user:{user}"


def live_room(run_id: str) -> str:
    """The room of the caught-up watchers of run ``run_id`` (in this process)."""
    return f"live:{run_id}"


#: The room of admins' sockets (web/admin.py): every run's state change, as
#: ``admin_state``, whoever's run it is.
ADMIN_ROOM = "admins"
