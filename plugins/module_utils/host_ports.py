"""The TCP ports a host listens on, read the way ``ss -ltn`` does, from
/proc/net/tcp and /proc/net/tcp6 (no ss or netstat needed on the host)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

PROC_FILES = ("/proc/net/tcp", "/proc/net/tcp6")
LISTEN = "0A"


def listening_ports(texts: Iterable[str]) -> list[int]:
    """TCP ports in LISTEN state in the texts of /proc/net/tcp and /proc/net/tcp6."""
    ports = set()
    for text in texts:
        for line in str(text or "").splitlines()[1:]:
            fields = line.split()
            if len(fields) > 3 and fields[3] == LISTEN and ":" in fields[1]:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(ports)


def read_listening_ports() -> list[int]:
    texts = []
    for path in PROC_FILES:
        try:
            texts.append(Path(path).read_text(encoding="ascii"))
        except OSError:  # no IPv6 on this host
            continue
    return listening_ports(texts)
