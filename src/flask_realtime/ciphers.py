"""The encryption of what the store keeps secret: a Fernet made at its first use.

The users' Webex tokens (web/tokens.py) and their webhook secrets (notify/preferences.py)
are kept encrypted with a ``cryptography`` MultiFernet. ``cryptography`` with its OpenSSL
bindings is 8 MB of RSS, and a server nobody has logged in to encrypts nothing: a
:class:`LazyFernet` imports it and makes its keys at its first encrypt or decrypt
(issue 21, item 3; docs/performance.md, "Memory per store").
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet


class Cipher(Protocol):
    """What the app asks of its encryption: a MultiFernet's ``encrypt`` and ``decrypt``
    (which raises ``cryptography.fernet.InvalidToken`` for a blob of other keys)."""

    def encrypt(self, msg: bytes) -> bytes: ...

    def decrypt(self, msg: bytes | str, ttl: int | None = None) -> bytes: ...


class LazyFernet:
    """The MultiFernet ``make()`` returns, made (once, whichever thread asks first) at the
    first :meth:`encrypt` or :meth:`decrypt`."""

    def __init__(self, make: Callable[[], MultiFernet]) -> None:
        self._make = make
        self._fernet: MultiFernet | None = None
        self._lock = threading.Lock()

    def fernet(self) -> MultiFernet:
        if self._fernet is None:
            with self._lock:
                if self._fernet is None:
                    self._fernet = self._make()
        return self._fernet

    def encrypt(self, msg: bytes) -> bytes:
        return self.fernet().encrypt(msg)

    def decrypt(self, msg: bytes | str, ttl: int | None = None) -> bytes:
        return self.fernet().decrypt(msg, ttl)
