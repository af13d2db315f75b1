"""Endpoint URLs: https only, and never an address inside our network (SSRF)."""

from __future__ import annotations

import ipaddress
import socket
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


def check(url: str, *, allow_private: bool, resolve: bool = True) -> str:
    """The URL if it may receive webhooks, else UnsafeUrlError.

    Every address the host resolves to must be public: a name that resolves to 127.0.0.1,
    10.x, 169.254.169.254 (cloud metadata) or ::1 is refused. ``allow_private`` (dev and tests)
    lifts that and allows plain http.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UnsafeUrlError("a webhook URL is an absolute https URL", pointer="#/url")
    if parts.scheme != "https" and not allow_private:
        raise UnsafeUrlError("webhook URLs must use https", pointer="#/url")
    if parts.username or parts.password:
        raise UnsafeUrlError("a webhook URL may not carry credentials", pointer="#/url")
    if allow_private or not resolve:
        return url
    try:
        port = parts.port or 443
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError):
        raise UnsafeUrlError(f"{parts.hostname} does not resolve", pointer="#/url") from None
    if not infos or any(_is_internal(str(info[4][0])) for info in infos):
        raise UnsafeUrlError(
            f"{parts.hostname} resolves to a private, loopback or link-local address",
            pointer="#/url",
        )
    return url
