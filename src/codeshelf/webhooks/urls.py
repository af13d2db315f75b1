"""Endpoint URLs: https only, and never an address inside our network (SSRF)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from codeshelf.kit.errors import InvalidInputError


class UnsafeUrlError(InvalidInputError):
    slug = "webhook-url-refused"


# Every special-purpose range (IANA's registries), whatever ``ipaddress`` calls global: these
# are never a partner's public receiver. The IPv6 transition ranges carry an IPv4 address
# inside (IPv4-compatible, NAT64, 6to4, Teredo) and could reach any internal one.
_REFUSED = [
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
        "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/96", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/23",
        "2001:db8::/32", "2002::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
    )
]  # fmt: skip


def _is_internal(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        any(ip in net for net in _REFUSED if net.version == ip.version)
        or not ip.is_global
        or ip.is_multicast
    )


Resolve = Callable[[str, int], list[str]]


def system_resolve(host: str, port: int) -> list[str]:
    """The addresses the system's resolver gives ``host`` (every one, IPv4 and IPv6)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def vetted(host: str, port: int, *, allow_private: bool, resolve: Resolve) -> list[str]:
    """The addresses to connect to for ``host``, resolved once, every one of them vetted: the
    caller connects to these and never resolves the name again (a name that answers a public
    address to the check and an internal one to the connection, DNS rebinding, gets nowhere).

    An address literal is not resolved. UnsafeUrlError if the name does not resolve or any of
    its addresses is inside a special-purpose range (``allow_private`` lifts the latter).
    """
    literal = host.strip("[]")
    if _is_address(literal):
        found = [literal]
    else:
        try:
            found = resolve(host, port)
        except (OSError, UnicodeError, ValueError):
            raise UnsafeUrlError(f"{host} does not resolve", pointer="#/url") from None
    if not found:
        raise UnsafeUrlError(f"{host} does not resolve", pointer="#/url")
    if not allow_private and any(_is_internal(address) for address in found):
        raise UnsafeUrlError(
            f"{host} resolves to a private, loopback or link-local address", pointer="#/url"
        )
    return found


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    return True


def check(url: str, *, allow_private: bool, resolve: Resolve | None = system_resolve) -> str:
    """The URL if it may receive webhooks, else UnsafeUrlError.

    Every address the host resolves to must be public: a name that resolves to 127.0.0.1,
    10.x, 169.254.169.254 (cloud metadata) or ::1 is refused. ``allow_private`` (dev and tests)
    lifts that and allows plain http. ``resolve=None`` checks the URL's form only (the
    delivery's connection vets the addresses it connects to: ``webhooks.transport``).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UnsafeUrlError("a webhook URL is an absolute https URL", pointer="#/url")
    if parts.scheme != "https" and not allow_private:
        raise UnsafeUrlError("webhook URLs must use https", pointer="#/url")
    if parts.username or parts.password:
        raise UnsafeUrlError("a webhook URL may not carry credentials", pointer="#/url")
    if allow_private or resolve is None:
        return url
    try:
        port = parts.port or 443
    except ValueError:
        raise UnsafeUrlError("a webhook URL is an absolute https URL", pointer="#/url") from None
    vetted(parts.hostname, port, allow_private=False, resolve=resolve)
    return url
