"""The client's address behind our reverse proxies: the one rule every caller uses.

Production puts the router (nginx, ``docker/nginx.conf``) in front of both web servers,
and possibly a TLS load balancer in front of the router, so the peer of a request is a
proxy, not the citizen. Each proxy appends the address it received the connection from
to ``X-Forwarded-For``; everything left of what our own proxies appended came from the
client and may be forged. ``settings.TRUSTED_PROXIES`` (addresses or networks, from the
environment) names our proxies, and the rule is:

1. The peer (``REMOTE_ADDR``) is not a trusted proxy: it is the client, and the header,
   which anyone can send, is ignored.
2. Otherwise walk ``X-Forwarded-For`` from the right, skipping trusted proxies; the first
   address that is not one is the client.
3. An entry that is no address (``unknown``, garbage, an empty item) ends the walk: the
   client is the trusted hop that handed it over. A forged or broken header thus lands
   in a proxy's bucket, never in one the sender names.
4. Every hop trusted (a request from a proxy host itself): the leftmost one.

Servers are not asked to rewrite the peer (uvicorn runs with ``--no-proxy-headers``,
gunicorn never rewrites ``REMOTE_ADDR``), so WSGI and ASGI requests, and the fast intake
path's ``ASGIRequest``, all reach this function with the real peer.

Addresses come back normalised (``ipaddress`` form; IPv4-mapped IPv6 as IPv4); a peer
that is no IP address (a Unix socket) comes back as the server gave it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, Protocol

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
FORWARDED_FOR_META = "HTTP_X_FORWARDED_FOR"


class HasMeta(Protocol):
    """Django's ``HttpRequest`` (WSGI or ASGI) or a DRF ``Request`` wrapping one."""

    META: Any


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.0.2", "172.30.64.0/24", "::1"]`` → networks; ``ValueError`` on a typo
    (settings call this at start-up, so a bad entry stops the process instead of
    silently trusting nobody)."""
    networks = []
    for value in values:
        text = value.strip()
        if text:
            network = ipaddress.ip_network(text, strict=False)
            networks.append(_unmapped_network(network))
    return tuple(networks)


@lru_cache(maxsize=8)
def _networks(values: tuple[str, ...]) -> tuple[Network, ...]:
    return parse_networks(values)


def trusted_proxies() -> tuple[Network, ...]:
    """``settings.TRUSTED_PROXIES`` parsed (cached per value: tests override it)."""
    return _networks(tuple(getattr(settings, "TRUSTED_PROXIES", ()) or ()))


def client_address(request: HasMeta) -> str:
    """The client's address under the module's rule (``""`` if the server gave none)."""
    meta = request.META
    return client_address_from(
        peer=str(meta.get("REMOTE_ADDR") or ""),
        forwarded_for=meta.get(FORWARDED_FOR_META),
        trusted=trusted_proxies(),
    )


def client_ip(request: HasMeta) -> str | None:
    """:func:`client_address` if it is an IP address (to store it), else ``None``."""
    address = parse_address(client_address(request))
    return None if address is None else str(address)


def client_address_from(*, peer: str, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The rule of the module docstring on plain values (unit-testable)."""
    hop = parse_address(peer)
    if hop is None:
        return peer.strip()
    if not forwarded_for or not _is_trusted(hop, trusted):
        return str(hop)
    for entry in reversed(forwarded_for.split(",")):
        address = parse_address(entry)
        if address is None:
            return str(hop)
        if not _is_trusted(address, trusted):
            return str(address)
        hop = address
    return str(hop)


def parse_address(text: str) -> IPAddress | None:
    """An ``X-Forwarded-For`` item or a peer: ``1.2.3.4``, ``1.2.3.4:5678``, ``2001:db8::1``,
    ``[2001:db8::1]:443``; ``None`` if it is none of these."""
    host, port = text.strip(), None
    if host.startswith("["):
        host, bracket, rest = host[1:].partition("]")
        if not bracket or rest[:1] not in ("", ":"):
            return None
        port = rest[1:] if rest else None
    elif host.count(":") == 1:
        host, _colon, port = host.partition(":")  # IPv4 with a port
    if port is not None and not (port.isascii() and port.isdigit()):
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped  # a dual-stack socket's view of an IPv4 peer
    return address


def _is_trusted(address: IPAddress, trusted: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in trusted)


def _unmapped_network(network: Network) -> Network:
    """``::ffff:10.0.0.0/104`` → ``10.0.0.0/8``: addresses are compared unmapped."""
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
    return network


class ClientAddressThrottleMixin:
    """Put first in a DRF throttle's bases: its ``get_ident`` (the per-address bucket)
    becomes :func:`client_address`, not DRF's ``NUM_PROXIES`` count, which trusts a
    header from any peer when unset and one bucket for the city when 0."""

    def get_ident(self, request: Any) -> str:
        return client_address(request)
