#!/bin/bash
set -euo pipefail
cat > /app/kvserver.py <<'PY'
#!/usr/bin/env python3
"""A line-based in-memory key-value server (see /app/PROTOCOL.md)."""

import json
import os
import re
import socketserver
import threading

HOST, PORT = "0.0.0.0", 9000
SNAPSHOT = "/app/kv-snapshot.json"
INTEGER = re.compile(r"-?[0-9]+")

store: dict[str, str] = {}
lock = threading.Lock()


def handle_line(line: str) -> list[str] | None:
    if line == "":
        return None
    name, _, rest = line.partition(" ")
    cmd = name.upper()
    args = rest.split(" ") if rest else []
    wrong = ["ERR wrong number of arguments"]
    if cmd == "PING":
        return ["PONG"] if not rest else wrong
    if cmd == "SET":
        key, sep, value = rest.partition(" ")
        if not key or not sep:
            return wrong
        with lock:
            store[key] = value
        return ["OK"]
    if cmd == "GET":
        if len(args) != 1 or not args[0]:
            return wrong
        with lock:
            value = store.get(args[0])
        return ["NIL"] if value is None else [f"VALUE {value}"]
    if cmd == "DEL":
        if len(args) != 1 or not args[0]:
            return wrong
        with lock:
            return ["1" if store.pop(args[0], None) is not None else "0"]
    if cmd == "INCR":
        if len(args) not in (1, 2) or not all(args):
            return wrong
        delta = args[1] if len(args) == 2 else "1"
        with lock:
            current = store.get(args[0], "0")
            if not INTEGER.fullmatch(current) or not INTEGER.fullmatch(delta):
                return ["ERR not an integer"]
            value = str(int(current) + int(delta))
            store[args[0]] = value
        return [value]
    if cmd == "KEYS":
        if len(args) > 1:
            return wrong
        prefix = args[0] if args else ""
        with lock:
            keys = sorted(k for k in store if k.startswith(prefix))
        return [f"KEYS {len(keys)}", *keys]
    if cmd == "SAVE":
        if rest:
            return wrong
        with lock:
            data = json.dumps(store, ensure_ascii=False)
        tmp = SNAPSHOT + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(data)
        os.replace(tmp, SNAPSHOT)
        return ["OK"]
    if cmd == "QUIT":
        return ["BYE"] if not rest else wrong
    return ["ERR unknown command"]


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        for raw in self.rfile:
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            if line.endswith("\r"):
                line = line[:-1]
            out = handle_line(line)
            if out is None:
                continue
            self.wfile.write("".join(f"{r}\n" for r in out).encode("utf-8"))
            self.wfile.flush()
            if out == ["BYE"]:
                return


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


if __name__ == "__main__":
    with Server((HOST, PORT), Handler) as server:
        server.serve_forever()
PY
setsid nohup python3 /app/kvserver.py > /tmp/kvserver.log 2>&1 < /dev/null &
python3 - <<'PY'
import socket, time
for _ in range(100):
    try:
        with socket.create_connection(("127.0.0.1", 9000), timeout=1) as s:
            s.sendall(b"PING\n")
            assert s.recv(100) == b"PONG\n"
            break
    except OSError:
        time.sleep(0.05)
else:
    raise SystemExit("server did not come up")
print("server up")
PY
