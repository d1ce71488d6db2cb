"""Which Host headers `mlpsuite server` accepts, and the address it tells clients to use.

MLflow's server (3.5+) refuses a request whose Host header it does not know (DNS-rebinding
protection), and by default knows only localhost and private IP addresses. A server bound to
0.0.0.0 for a cluster would then answer 403 "Invalid Host header" to every worker that names it
by its hostname, as `--tracking-uri http://SERVER:5000` does.
"""

from __future__ import annotations

import contextlib
import socket

LOOPBACK = ("127.0.0.1", "localhost", "::1")
ANY_ADDRESS = ("0.0.0.0", "::", "")
# MLflow's own defaults (mlflow.server.security_utils): loopback and the RFC 1918 / 4193 ranges.
DEFAULT_PATTERNS = [
    "localhost",
    "localhost:*",
    "127.0.0.1",
    "127.0.0.1:*",
    "[::1]",
    "[[]::1]:*",
    "10.*",
    "192.168.*",
    *[f"172.{i}.*" for i in range(16, 32)],
    "fc00:*",
    "fd00:*",
]


def machine_names(host: str) -> list[str]:
    """This machine as clients may name it: its hostname, full name and addresses, and the
    address it is bound to."""
    names = {socket.gethostname(), socket.getfqdn()}
    with contextlib.suppress(OSError):
        names |= set(socket.gethostbyname_ex(socket.gethostname())[2])
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(
            ("10.255.255.255", 1)
        )  # sends nothing: asks the kernel which address routes out
        names.add(probe.getsockname()[0])
    if host not in ANY_ADDRESS:
        names.add(host)
    return sorted(name for name in names if name)


def allowed_hosts(host: str, given: str | None) -> str | None:
    """`--allowed-hosts` for `mlflow server`: what the user gave; MLflow's default on loopback
    (None); exposed, MLflow's defaults plus this machine's own names, with any port."""
    if given is not None or host in LOOPBACK:
        return given
    own = [pattern for name in machine_names(host) for pattern in (name, f"{name}:*")]
    return ",".join(DEFAULT_PATTERNS + own)


def client_address(host: str) -> str:
    """What clients put in `--tracking-uri`: a wildcard bind address is no address to them."""
    return socket.gethostname() if host in ANY_ADDRESS else host
