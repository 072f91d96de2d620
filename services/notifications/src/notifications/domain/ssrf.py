"""Outbound webhook targets: no loopback, private, link-local or otherwise non-public address.

Checked when an endpoint is registered and again before every delivery (DNS may change between),
and redirects are never followed, so a target cannot bounce a request into the internal network.
"""

import ipaddress
import socket
from urllib.parse import urlsplit


class UnsafeTarget(ValueError):
    pass


def _addresses(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeTarget(f"host {host!r} does not resolve: {exc}") from None
    return sorted({str(info[4][0]) for info in infos})


def check_target(url: str, *, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in {"https", "http"}:
        raise UnsafeTarget("the URL must be http(s)")
    if parts.scheme != "https" and not allow_private:
        raise UnsafeTarget("the URL must use https")
    if not parts.hostname:
        raise UnsafeTarget("the URL has no host")
    if parts.username or parts.password:
        raise UnsafeTarget("credentials in the URL are not allowed")
    if allow_private:
        return
    for address in _addresses(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)):
        ip = ipaddress.ip_address(address.split("%")[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if not ip.is_global or ip.is_multicast:
            raise UnsafeTarget(f"{parts.hostname} resolves to a non-public address ({ip})")
