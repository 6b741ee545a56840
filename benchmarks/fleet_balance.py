"""How the shipped HAProxy config spreads stream ids over N replicas, and how many move when a
replica joins or leaves — measured with the real HAProxy, not a model of its hash.

    .venv/bin/python benchmarks/fleet_balance.py            # ~1 min; writes benchmarks/results/fleet_balance.json

For each N, HAProxy runs the shipped `backend vos` routing (`balance hdr(x-vos-stream-id)`,
`hash-type consistent`, server names vos-0..vos-N-1) in front of N tiny HTTP servers that
answer with their name; 1,000 stream ids (`cam-0000`..`cam-0999`) are sent one request each.
HTTP/1.1 instead of the shipped h2 (the hash does not look at the protocol), and no stick
table: this measures where the hash sends an id, which is what decides a new stream and any
stream after a proxy restart. Live streams are pinned by the stick table on top (a running
proxy moves only the streams of a replica that left).
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "deploy" / "haproxy" / "haproxy.cfg"
IDS = [f"cam-{i:04d}" for i in range(1000)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def replica_server(name: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = name.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def balance_lines() -> list[str]:
    """The shipped backend's routing lines (balance, hash-type), read from the file."""
    text = SHIPPED.read_text()
    backend = text[text.index("\nbackend vos\n") + 1:].split("\nbackend ")[0].split("\nfrontend ")[0]
    picked = [ln.strip() for ln in backend.splitlines() if ln.strip().startswith(("balance ", "hash-type "))]
    assert len(picked) == 2, picked
    return picked


def route(names: list[str], servers: dict[str, ThreadingHTTPServer]) -> dict[str, str]:
    """stream id -> replica name for every id, through a fresh HAProxy with these servers."""
    port = free_port()
    cfg = "\n".join([
        "global", "    maxconn 4096", "defaults", "    mode http", "    timeout connect 2s",
        "    timeout client 30s", "    timeout server 30s", "frontend f", f"    bind 127.0.0.1:{port}",
        "    default_backend vos", "backend vos", *("    " + ln for ln in balance_lines()),
        *(f"    server {n} 127.0.0.1:{servers[n].server_address[1]}" for n in names), ""])
    with tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False) as f:
        f.write(cfg)
    proxy = subprocess.Popen(["haproxy", "-db", "-f", f.name], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        out = {}
        for sid in IDS:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"x-vos-stream-id": sid})
            out[sid] = urllib.request.urlopen(req, timeout=5).read().decode()
        return out
    finally:
        proxy.terminate()
        proxy.wait(10)
        Path(f.name).unlink()


def spread(assign: dict[str, str], names: list[str]) -> dict:
    counts = [sum(1 for v in assign.values() if v == n) for n in names]
    mean = len(assign) / len(names)
    return {"per_replica": dict(zip(names, counts)), "max_over_mean": max(counts) / mean,
            "min_over_mean": min(counts) / mean, "cv": statistics.pstdev(counts) / mean}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-replicas", type=int, default=8)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "fleet_balance.json")
    args = ap.parse_args()
    names = [f"vos-{i}" for i in range(args.max_replicas + 1)]
    servers = {n: replica_server(n) for n in names}
    routes = {n: route(names[:n], servers) for n in range(2, args.max_replicas + 2)}
    rows = []
    for n in range(2, args.max_replicas + 1):
        now, grown = routes[n], routes[n + 1]
        moved_add = sum(now[s] != grown[s] for s in IDS)
        # Removing the last replica: ids it held must move; any other id moving is the hash's cost.
        shrunk = routes[n - 1] if n > 2 else None
        row = {"replicas": n, **spread(now, names[:n]), "moved_when_one_added": moved_add,
               "ideal_when_one_added": round(len(IDS) / (n + 1)),
               "moved_to_the_new_replica": sum(grown[s] == names[n] for s in IDS if now[s] != grown[s])}
        if shrunk is not None:
            row["moved_when_last_removed"] = sum(now[s] != shrunk[s] for s in IDS)
            row["held_by_the_removed_replica"] = sum(now[s] == names[n - 1] for s in IDS)
        rows.append(row)
        print(json.dumps(row))
    haproxy = subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout.splitlines()[0]
    result = {"haproxy": haproxy, "stream_ids": len(IDS), "routing": balance_lines(), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for s in servers.values():
        s.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
