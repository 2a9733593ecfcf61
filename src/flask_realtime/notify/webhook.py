"""Webhooks: where a user's notifications are POSTed, checked against SSRF, and signed.

A webhook URL is checked when the user saves it and again before every try
(:func:`check_url`): ``http`` or ``https`` only, no user name or password in it, and
every address its host resolves to must be a public one. Private (10/8, 172.16/12,
192.168/16, fc00::/7), loopback (127/8, ::1), link-local (169.254/16, the cloud
metadata address 169.254.169.254, fe80::/10), multicast, shared (100.64/10), reserved
and unspecified addresses are refused, unless the operator allows their network
(``NOTIFY_WEBHOOK_ALLOWED_NETWORKS``). The request then goes to the address that was
checked (the URL's host is sent as ``Host`` and as the TLS server name), so a DNS
answer that changes between the check and the connection (DNS rebinding) reaches
nothing new; and redirects are never followed (a 3xx is a failed delivery), so a
public endpoint cannot bounce the request to an internal one.

The signature (docs/notifications.md, "Verifying a webhook"): the header
``X-Flask-Realtime-Signature`` is ``sha256=`` and the hex HMAC-SHA256, keyed with
the user's webhook secret, of ``<timestamp>.<body>``, where ``<timestamp>`` is the
header ``X-Flask-Realtime-Timestamp`` (Unix seconds) and ``<body>`` the raw request
body. ``X-Flask-Realtime-Delivery`` is the delivery's de-duplication key (also the
body's ``delivery`` field): the same for every try of one notification.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

SIGNATURE_HEADER = "X-Flask-Realtime-Signature"
TIMESTAMP_HEADER = "X-Flask-Realtime-Timestamp"
DELIVERY_HEADER = "X-Flask-Realtime-Delivery"
#: A receiver should refuse a timestamp further than this from its clock (replays).
TOLERANCE_SECONDS = 300
MAX_URL = 2000

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class WebhookURLError(ValueError):
    """A webhook URL that may not be used; the message is one sentence saying why."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Flask-Realtime-Signature`` value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *,
           now: float | None = None, tolerance: float = TOLERANCE_SECONDS) -> bool:
    """What a receiver checks: the signature matches (compared in constant time) and
    the timestamp is within ``tolerance`` seconds of ``now``."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def networks(names: Iterable[str]) -> list[IPNetwork]:
    """``NOTIFY_WEBHOOK_ALLOWED_NETWORKS`` as networks (the config checked them)."""
    return [ipaddress.ip_network(name, strict=False) for name in names]


def refused(address: IPAddress, allowed: Iterable[IPNetwork] = ()) -> bool:
    """Whether a webhook may not reach ``address``: anything but a public unicast
    address, unless it is in one of the ``allowed`` networks."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if any(address.version == net.version and address in net for net in allowed):
        return False
    return not address.is_global or address.is_multicast


@dataclass(frozen=True)
class Target:
    """A checked webhook URL: where to connect (``address``) and what to ask for."""

    url: str
    scheme: str
    host: str
    port: int
    address: IPAddress

    @property
    def pinned_url(self) -> str:
        """The URL with the checked address in place of the host name."""
        parts = urlsplit(self.url)
        ip = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return urlunsplit((parts.scheme, f"{ip}:{self.port}", parts.path or "/",
                           parts.query, ""))

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (an IP literal is itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def check_url(url: object, allowed: Iterable[IPNetwork] = ()) -> Target:
    """``url`` as a :class:`Target`, or :class:`WebhookURLError` with a sentence."""
    if not isinstance(url, str) or not url.strip():
        raise WebhookURLError("The webhook URL must be an http:// or https:// URL.")
    url = url.strip()
    if len(url) > MAX_URL or not url.isprintable() or " " in url:
        raise WebhookURLError(f"The webhook URL must be at most {MAX_URL} characters, "
                              "without spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise WebhookURLError("The webhook URL cannot be read: give one such as "
                              "https://hooks.example.com/flask-realtime.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookURLError("The webhook URL must start with http:// or https:// and "
                              "name a host.")
    if parts.username is not None or parts.password is not None:
        raise WebhookURLError("The webhook URL must not hold a user name or password: "
                              "the signature header proves who sends.")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolve(parts.hostname, port)
    except (OSError, UnicodeError):
        raise WebhookURLError(f"The webhook's host {parts.hostname!r} cannot be found "
                              "(DNS): check the URL.") from None
    allowed = list(allowed)
    bad = [a for a in addresses if refused(a, allowed)]
    if bad or not addresses:
        raise WebhookURLError(
            f"The webhook's host {parts.hostname!r} is a private, loopback, link-local "
            f"or otherwise internal address ({bad[0] if bad else 'none'}): webhooks may "
            "only reach public addresses unless the operator allows the network "
            "(NOTIFY_WEBHOOK_ALLOWED_NETWORKS).")
    return Target(url, parts.scheme, parts.hostname, port, addresses[0])


def post(client: httpx.Client, target: Target, body: bytes, *, secret: str, key: str,
         timeout: float, now: float | None = None) -> tuple[int, float | None]:
    """POST ``body`` (JSON) to ``target``'s checked address, signed with ``secret``,
    without following redirects; returns the answer's status and its ``Retry-After``
    (seconds, if it gave one). The answer's body is not
    read (a receiver cannot make this process hold a large one). Raises httpx's errors
    for a try that got no answer."""
    timestamp = str(int(time.time() if now is None else now))
    headers = {"Host": target.host_header, "Content-Type": "application/json",
               "User-Agent": "flask-realtime-notifier", TIMESTAMP_HEADER: timestamp,
               SIGNATURE_HEADER: sign(secret, timestamp, body), DELIVERY_HEADER: key}
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    request = client.build_request("POST", target.pinned_url, content=body, headers=headers,
                                   timeout=timeout, extensions=extensions)
    response = client.send(request, stream=True, follow_redirects=False)
    response.close()
    try:
        wait: float | None = float(response.headers.get("Retry-After", ""))
    except ValueError:
        wait = None
    return response.status_code, wait
