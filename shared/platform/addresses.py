"""Which network addresses an outgoing request may reach, and host names in one IDNA standard.

The destination guard refuses every address that is not plainly public: loopback, private, link-local,
shared (carrier-grade NAT), reserved, multicast, unspecified, the cloud platforms' own endpoints
(Azure's 168.63.129.16, the 169.254.169.254 and 100.100.100.200 metadata services), and IPv6 forms
that carry such an IPv4 address inside them (IPv4-mapped and -compatible, 6to4, Teredo, NAT64).
Host names are converted with UTS #46 (non-transitional, as browsers do: `faß.de` is `xn--fa-hia.de`)
by the `idna` package, once, so the name checked is the name connected to.
"""

from __future__ import annotations

import ipaddress

import idna

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SPECIAL_V4 = tuple(ipaddress.ip_network(net) for net in (
    "0.0.0.0/8", "100.64.0.0/10", "168.63.129.16/32", "169.254.0.0/16", "192.0.0.0/24", "198.18.0.0/15",
))  # fmt: skip
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Local-use NAT64 (where the IPv4 address sits depends on the operator's prefix length), ULA, site-local.
_SPECIAL_V6 = tuple(ipaddress.ip_network(net) for net in ("64:ff9b:1::/48", "fc00::/7", "fec0::/10"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class HostProblem(ValueError):
    """A host name that cannot be used."""


def ascii_host(host: str) -> str:
    """The host as connected to: an IP literal as is, a name in ASCII (UTS #46, non-transitional)."""
    bare = host.strip("[]")
    try:
        return str(ipaddress.ip_address(bare.split("%", 1)[0]))
    except ValueError:
        pass
    try:
        return idna.encode(host.rstrip("."), uts46=True, transitional=False).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError) as error:
        raise HostProblem(f"host {host!r} is not a valid name: {error}") from None


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address stands for (the forms a relay or translator would reach)."""
    found = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)  # (server, client)
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def refusal(address: str | IPAddress) -> str | None:
    """Why a request may not go to `address` without `allow_private`, or None for a public address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0]) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address) and (inner_addresses := embedded_ipv4(ip)):
        # An address that stands for IPv4 addresses is judged by them (its own range is "reserved").
        for inner in inner_addresses:
            if (why := refusal(inner)) is not None:
                return f"it embeds {inner}, {why}"
        return None
    for name in ("loopback", "private", "link_local", "reserved", "multicast", "unspecified", "site_local"):
        if getattr(ip, f"is_{name}", False):
            return f"a {name.replace('_', '-')} address"
    if isinstance(ip, ipaddress.IPv4Address) and any(ip in net for net in _SPECIAL_V4):
        return "a shared, platform or metadata address"
    if isinstance(ip, ipaddress.IPv6Address) and any(ip in net for net in _SPECIAL_V6):
        return "a local-use address"
    if not ip.is_global:
        return "not a public address"
    return None
