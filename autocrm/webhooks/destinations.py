"""Where a webhook may be delivered, and the one HTTP request that delivers it.

A webhook URL names a server an admin chose, but AutoCRM's workers make the request from
inside the network: a URL that points at loopback, a private network, link-local addresses
(cloud metadata services) or reserved ranges would let the endpoint's owner probe what only
AutoCRM can reach. So:

- the URL must be ``https`` (``http`` only for allow-listed hosts);
- its host is resolved and every address must be public, unless the host is in
  ``AUTOCRM_WEBHOOK_ALLOWED_HOSTS`` (comma-separated; e.g. an internal receiver, or a test's);
- checked when the subscription is saved (``check_url``, 422 naming ``url``) and again before
  every delivery, after resolution; the request then connects to the address that was checked
  (TLS still verifies the certificate against the host name), so a DNS answer that changes
  between the check and the connection (rebinding) cannot redirect it;
- redirects are never followed: a 3xx is a failed delivery like any other non-2xx answer;
- 10 seconds per connect and per read, and at most ``MAX_RESPONSE_BYTES`` of the answer read.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from flask import current_app

TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 1024
MAX_URL_LENGTH = 2000


class Refused(Exception):
    """The URL may not be delivered to; the message says why, for the admin."""


@dataclass(frozen=True)
class Destination:
    url: str
    scheme: str
    host: str
    port: int
    path: str  # with the query
    address: str  # the checked IP address the request connects to


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes  # at most MAX_RESPONSE_BYTES
    elapsed_ms: int


def allowed_hosts() -> frozenset[str]:
    configured = current_app.config.get("AUTOCRM_WEBHOOK_ALLOWED_HOSTS") or ""
    return frozenset(h.strip().lower() for h in configured.split(",") if h.strip())


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
    )


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise Refused(f"The host {host} cannot be resolved.") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise Refused(f"The host {host} cannot be resolved.")
    return addresses


def check_destination(url: str) -> Destination:
    """Where ``url`` may be delivered, resolved now; ``Refused`` saying why it may not."""
    if len(url) > MAX_URL_LENGTH:
        raise Refused(f"At most {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused("Not a valid URL.") from exc
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise Refused("Enter an https:// URL.")
    if parts.username is not None or parts.password is not None:
        raise Refused("Leave credentials out of the URL: deliveries are signed instead.")
    allowed = host in allowed_hosts()
    if parts.scheme == "http" and not allowed:
        raise Refused("Enter an https:// URL (http only for allow-listed hosts).")
    port = port or (443 if parts.scheme == "https" else 80)
    addresses = _resolve(host, port)
    if not allowed:
        private = [a for a in addresses if not _public(a)]
        if private:
            raise Refused(
                f"{host} resolves to {private[0]}, a loopback, private, link-local or reserved "
                "address; an administrator can allow the host (AUTOCRM_WEBHOOK_ALLOWED_HOSTS)."
            )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Destination(url, parts.scheme, host, port, path, addresses[0])


def post(destination: Destination, body: bytes, headers: dict[str, str]) -> Answer:
    """POST ``body`` to the checked address; the answer's first bytes. Raises ``OSError`` or
    urllib3's errors when no answer came (connection refused, timeout, TLS failure)."""
    timeout = urllib3.Timeout(connect=TIMEOUT_SECONDS, read=TIMEOUT_SECONDS)
    pool: urllib3.HTTPConnectionPool
    if destination.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            destination.address,
            destination.port,
            timeout=timeout,
            retries=False,
            server_hostname=destination.host,
            assert_hostname=destination.host,
            cert_reqs="CERT_REQUIRED",
        )
    else:
        pool = urllib3.HTTPConnectionPool(
            destination.address, destination.port, timeout=timeout, retries=False
        )
    host_header = destination.host
    if destination.port not in (80, 443):
        host_header = f"{destination.host}:{destination.port}"
    started = time.monotonic()
    try:
        response = pool.urlopen(
            "POST",
            destination.path,
            body=body,
            headers={**headers, "Host": host_header},
            redirect=False,
            retries=False,
            preload_content=False,
        )
        try:
            first = response.read(MAX_RESPONSE_BYTES)
        finally:
            response.release_conn()
        return Answer(response.status, first, int((time.monotonic() - started) * 1000))
    finally:
        pool.close()
