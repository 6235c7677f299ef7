"""Is a Kafka broker answering metadata requests? Standard library only, no client package.

    python ready.py HOST PORT [NODE_ID]

Sends ApiVersions v0 (every broker answers it) and then a Metadata request (v4..v8, the
non-flexible versions with one layout) for no topics. Exit 0 when the broker lists itself
(NODE_ID, when given) among live brokers, 1 otherwise. Used by infra/kafka.sh wait.
"""

from __future__ import annotations

import socket
import struct
import sys

API_METADATA = 3
API_VERSIONS = 18
CLIENT_ID = b"ai-trader-ready"


def _request(sock: socket.socket, api_key: int, version: int, corr: int, body: bytes) -> bytes:
    header = struct.pack(">hhih", api_key, version, corr, len(CLIENT_ID)) + CLIENT_ID
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    size = struct.unpack(">i", _read(sock, 4))[0]
    data = _read(sock, size)
    if struct.unpack(">i", data[:4])[0] != corr:
        raise ValueError("correlation id mismatch")
    return data[4:]


def _read(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        buf += chunk
    return buf


def _metadata_version(sock: socket.socket) -> int:
    data = _request(sock, API_VERSIONS, 0, 1, b"")
    error, count = struct.unpack(">hi", data[:6])
    if error != 0:
        raise ValueError(f"ApiVersions error {error}")
    for i in range(count):
        key, vmin, vmax = struct.unpack(">hhh", data[6 + 6 * i : 12 + 6 * i])
        if key == API_METADATA:
            version = min(int(vmax), 8)
            if version < max(vmin, 4):
                raise ValueError(f"no Metadata version in 4..8 (broker: {vmin}..{vmax})")
            return version
    raise ValueError("broker does not list the Metadata API")


def _string(data: bytes, pos: int) -> tuple[str | None, int]:
    n = struct.unpack(">h", data[pos : pos + 2])[0]
    pos += 2
    if n < 0:
        return None, pos
    return data[pos : pos + n].decode(), pos + n


def live_brokers(host: str, port: int, timeout: float = 3.0) -> tuple[list[int], str | None]:
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        version = _metadata_version(sock)
        body = struct.pack(">ib", 0, 0)  # topics: empty array (none), allow_auto_topic_creation
        if version >= 8:
            body += struct.pack(">bb", 0, 0)  # include cluster/topic authorized operations
        data = _request(sock, API_METADATA, version, 2, body)
    pos = 4  # throttle_time_ms
    (count,) = struct.unpack(">i", data[pos : pos + 4])
    pos += 4
    nodes = []
    for _ in range(count):
        (node_id,) = struct.unpack(">i", data[pos : pos + 4])
        _host, pos = _string(data, pos + 4)
        pos += 4  # port
        _rack, pos = _string(data, pos)
        nodes.append(node_id)
    cluster_id, pos = _string(data, pos)
    return nodes, cluster_id


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    host, port = argv[1], int(argv[2])
    want = int(argv[3]) if len(argv) == 4 else None
    try:
        nodes, cluster_id = live_brokers(host, port)
    except (OSError, ValueError, struct.error) as exc:
        print(f"not ready: {exc}", file=sys.stderr)
        return 1
    if not nodes or (want is not None and want not in nodes):
        print(f"not ready: live brokers {nodes}", file=sys.stderr)
        return 1
    print(f"cluster {cluster_id} brokers {nodes}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
