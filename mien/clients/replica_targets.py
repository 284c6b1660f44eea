"""Server addresses a client may be given, and the gRPC channel settings they need.

One "host:port" is an ordinary channel. Several replicas — a list, a
comma-separated string "h1:p1,h2:p2", or a "dns:" name whose A/AAAA records
are the replicas — become ONE grpcio channel with gRPC's own `round_robin`
load balancing: one subchannel per address, each call goes to the next READY
one, an address that is down is skipped until it reconnects. A retry policy
resends a call that failed with UNAVAILABLE before any reply arrived (the
replica died under it) to another replica; replicas serve the same read-only
snapshot, so a repeat is harmless. Both client transports take the same
Target: grpcio through channel_options(), the gRPC C++ channel
(mien.clients.native_stub) through native_settings().

Host names in a list are resolved once, here, because gRPC's address-list
URIs ("ipv4:a:p,b:p", "ipv6:[a]:p,...") take literal addresses of ONE family:
IPv4 when every replica has an IPv4 address (so "localhost", which has both,
contributes 127.0.0.1), else IPv6 when every one has an IPv6 address; a list
mixing IPv4-only and IPv6-only replicas is refused (one channel cannot hold
both). A "dns:" name is resolved by gRPC itself, again
whenever a connection fails, so replicas may come and go behind it.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from dataclasses import dataclass

from mien.errors import BadInputError

# services whose calls may be retried on another replica
_SERVICES = ("mien.v1.Mien", "mien.v1.Analytics", "grpc.health.v1.Health")
SERVICE_CONFIG = json.dumps({
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [{
        "name": [{"service": s} for s in _SERVICES],
        "retryPolicy": {
            "maxAttempts": 3, "initialBackoff": "0.02s", "maxBackoff": "0.2s",
            "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"],
        },
    }],
})


@dataclass(frozen=True)
class Target:
    uri: str                 # what grpc.*_channel is given
    balanced: bool           # several replicas behind one channel (round_robin)
    authority: str = ""      # :authority / TLS name of a balanced channel ("" = gRPC's default)
    addresses: tuple = ()    # the replicas as given (for messages)

    def native_settings(self) -> dict[str, str]:
        """The balancing settings as mien.native._grpcpp.Channel takes them ("" = none)."""
        if not self.balanced:
            return {"lb_policy": "", "service_config": "", "authority": ""}
        return {"lb_policy": "round_robin", "service_config": SERVICE_CONFIG, "authority": self.authority}

    def channel_options(self) -> list[tuple[str, object]]:
        """The same settings as grpcio channel options."""
        if not self.balanced:
            return []
        options = [("grpc.lb_policy_name", "round_robin"), ("grpc.service_config", SERVICE_CONFIG),
                   ("grpc.enable_retries", 1)]
        if self.authority:
            options.append(("grpc.default_authority", self.authority))
        return options


DEFAULT_PORT = 50051


def with_port(address: str, default_port: int = DEFAULT_PORT) -> str:
    """"host" -> "host:50051" (also "::1" / "[::1]" -> "[::1]:50051"); "host:port" unchanged."""
    address = address.strip()
    if address.startswith("[") and address.endswith("]"):
        return f"{address}:{default_port}"
    if address.count(":") > 1 and not address.startswith("["):  # a bare IPv6 literal
        return f"[{address}]:{default_port}"
    if ":" not in address:
        return f"{address}:{default_port}"
    return address


def _split(address: str) -> tuple[str, int]:
    address = with_port(address)
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise BadInputError(f"server address {address!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def _ips(host: str, port: int) -> list[tuple[int, str]]:
    """(family, ip) of host: the literal itself, or what the resolver returns now."""
    try:
        ip = ipaddress.ip_address(host)
        return [(socket.AF_INET6 if ip.version == 6 else socket.AF_INET, str(ip))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise BadInputError(f"cannot resolve server host {host!r} (each server is HOST:PORT, or HOST for "
                            f"port {DEFAULT_PORT}): {exc.strerror}") from None
    seen: list[tuple[int, str]] = []
    for family, _, _, _, sockaddr in infos:
        if (family, sockaddr[0]) not in seen and family in (socket.AF_INET, socket.AF_INET6):
            seen.append((family, sockaddr[0]))
    return seen


def parse_target(target) -> Target:
    """A Target for "host:port", "h1:p,h2:p", ["h1:p", "h2:p"] or "dns:[//auth/]name:port"."""
    if isinstance(target, (list, tuple)):
        addresses = [str(a).strip() for a in target if str(a).strip()]
    elif isinstance(target, str):
        if target.startswith(("ipv4:", "ipv6:")):  # gRPC's own address-list syntax
            return _address_list(target)
        if target.startswith("dns:"):
            name = target[4:].lstrip("/")
            if "/" in name:  # dns://resolver/name:port
                name = name.split("/", 1)[1]
            return Target(target, True, authority=name, addresses=(target,))
        addresses = [a.strip() for a in target.split(",") if a.strip()]
    else:
        raise BadInputError(f"server target must be a string or a list of strings, not {type(target).__name__}")
    if not addresses:
        raise BadInputError("no server address given")
    addresses = [with_port(a) for a in addresses]  # a host alone means the default port
    if len(addresses) == 1:
        return Target(addresses[0], False, addresses=tuple(addresses))
    # one address-list channel holds one family: IPv4 when every replica has an IPv4
    # address, else IPv6 when every one has an IPv6 address
    found = {address: _ips(*_split(address)) for address in addresses}
    for family, scheme in ((socket.AF_INET, "ipv4"), (socket.AF_INET6, "ipv6")):
        if all(any(f == family for f, _ in ips) for ips in found.values()):
            break
    else:
        v6_only = [a for a, ips in found.items() if all(f == socket.AF_INET6 for f, _ in ips)]
        v4_only = [a for a, ips in found.items() if all(f == socket.AF_INET for f, _ in ips)]
        raise BadInputError(f"replicas {', '.join(v6_only)} have only IPv6 addresses and {', '.join(v4_only)} "
                            "only IPv4; one channel takes one family (or use a dns: name, whose records "
                            "may mix them)")
    ips = [f"[{ip}]:{_split(a)[1]}" if family == socket.AF_INET6 else f"{ip}:{_split(a)[1]}"
           for a, found_ips in found.items() for f, ip in found_ips if f == family]
    uri = f"{scheme}:{','.join(dict.fromkeys(ips))}"
    return Target(uri, True, authority=addresses[0], addresses=tuple(addresses))


def _address_list(target: str) -> Target:
    """A Target for gRPC's "ipv4:IP:PORT,..." / "ipv6:[IP]:PORT,...", checked here: gRPC
    itself would only fail every call with UNAVAILABLE on a host name or a wrong family."""
    scheme, _, rest = target.partition(":")
    rest = rest.lstrip("/")  # "ipv4:///a:p" is the same list
    version = 4 if scheme == "ipv4" else 6
    items = [a.strip() for a in rest.split(",") if a.strip()]
    if not items:
        raise BadInputError(f"server target {target!r} lists no address")
    for item in items:
        host, sep, port = item.rpartition(":")
        try:
            ok = bool(sep) and port.isdigit() and ipaddress.ip_address(host.strip("[]")).version == version
        except ValueError:
            ok = False
        if not ok or (version == 6 and not host.startswith("[")):
            form = "IP:PORT" if version == 4 else "[IP]:PORT"
            raise BadInputError(f"{scheme}: takes literal IPv{version} addresses as {form}, not {item!r} "
                                "(give host names as H1:P1,H2:P2 or dns:NAME:PORT)")
    many = len(items) > 1
    return Target(f"{scheme}:{','.join(items)}", many, authority=items[0] if many else "",
                  addresses=tuple(items))
