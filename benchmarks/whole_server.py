"""Instructions per request of the whole server process, HTTP server included (valgrind).

    python -m benchmarks.whole_server [--requests 200] [--database sqlite|postgresql]

``benchmarks.instructions`` counts the application alone, called through its ASGI entry;
this counts everything one ``cogsync serve`` process executes per request: the HTTP
server, the event loop, the socket calls and the application. The server runs under
callgrind with instrumentation off; once it has answered the warm-up requests, the
counters are zeroed, N requests go out one at a time on one keep-alive connection, and
the counters are dumped; then, with the counters zeroed again, the server sits idle for
as long as the requests took, and what its timers executed meanwhile (the session flush,
the SQLite checkpoint loop, the connection sweep) is subtracted. What those timers do
more because requests came (the checkpoint loop copies the log of the writes) stays in.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any
from urllib.parse import quote

from benchmarks.postgres import POSTGRES_URL, fresh_schema
from benchmarks.signing import RawSigner
from benchmarks.workloads import PATCHES, VALUE, identity_id

SCENARIOS = ("bare", "update", "list")
WARM_UP = 20
_ENDPOINT = re.compile(r"Amazon Cognito Sync at http://([\d.]+):(\d+)")
_KEY = re.compile(r"AWS_ACCESS_KEY_ID=(\S+)")
_SECRET = re.compile(r"AWS_SECRET_ACCESS_KEY=(\S+)")
_POOL = re.compile(r"IdentityPoolId=(\S+)")
_TOTALS = re.compile(r"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


class Connection:
    """One keep-alive connection that sends raw requests and reads whole answers."""

    def __init__(self, host: str, port: int):
        self.sock = socket.create_connection((host, port), timeout=600)
        self.buffer = b""

    def call(self, raw: bytes) -> tuple[int, bytes]:
        self.sock.sendall(raw)
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))  # type: ignore[union-attr]
        while len(rest) < length:
            rest += self._recv()
        self.buffer = rest[length:]
        return int(head.split(b" ", 2)[1]), rest[:length]

    def _recv(self) -> bytes:
        data = self.sock.recv(1 << 20)
        if not data:
            raise ConnectionError("the server closed the connection")
        return data


def _ok(conn: Connection, raw: bytes) -> dict[str, Any]:
    status, body = conn.call(raw)
    if status != 200:
        raise RuntimeError(f"set-up request answered {status}: {body[:300]!r}")
    return json.loads(body)  # type: ignore[no-any-return]


def _requests(conn: Connection, signer: RawSigner, pool: str, scenario: str,
              count: int) -> list[bytes]:
    def dataset(identity: str, name: str) -> str:
        return (f"/identitypools/{quote(pool, safe='')}/identities/"
                f"{quote(identity, safe='')}/datasets/{name}")

    def list_records(identity: str, name: str) -> bytes:
        return signer.request("GET", dataset(identity, name) + "/records?lastSyncCount=0")

    def update(identity: str, name: str, token: str, patches: list[dict[str, Any]]) -> bytes:
        body = json.dumps({"SyncSessionToken": token, "DeviceId": "bench-device",
                           "RecordPatches": patches}, separators=(",", ":")).encode()
        return signer.request("POST", dataset(identity, name), body)

    if scenario == "bare":
        return [f"GET /_cogsync/health HTTP/1.1\r\nHost: {signer.netloc}\r\n\r\n".encode()
                ] * count
    if scenario == "list":
        identity = identity_id(1)
        token = _ok(conn, list_records(identity, "profile"))["SyncSessionToken"]
        _ok(conn, update(identity, "profile", token, [
            {"Op": "replace", "Key": f"setting-{k:03d}", "Value": f"value {k} " + VALUE,
             "SyncCount": 0} for k in range(100)]))
        return [list_records(identity, "profile")] * count
    datasets = []
    for n in range(40):
        identity = identity_id(100 + n)
        datasets.append((identity, "bench",
                         _ok(conn, list_records(identity, "bench"))["SyncSessionToken"]))
    now = round(time.time(), 3)
    return [update(*datasets[n % len(datasets)], [
        {"Op": "replace", "Key": f"k{n}-{j}", "Value": VALUE, "SyncCount": 0,
         "DeviceLastModifiedDate": now} for j in range(PATCHES)]) for n in range(count)]


def _control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def _dump(pid: int, folder: Path) -> int:
    """Dumps the counters and returns the instructions of the newest dump."""
    before = set(folder.glob("callgrind.out*"))
    _control(pid, "-d")
    new = [p for p in folder.glob("callgrind.out*") if p not in before] or sorted(
        folder.glob("callgrind.out*"), key=lambda p: p.stat().st_mtime)[-1:]
    found = _TOTALS.search(new[-1].read_text(errors="replace"))
    if found is None:
        raise SystemExit(f"no totals in {new[-1]}")
    return int(found.group(1))


def count(scenario: str, requests: int, postgres_url: str | None) -> int:
    """Instructions per request of one scenario, on a new database."""
    with tempfile.TemporaryDirectory(prefix="cogsync-whole-") as folder, \
            fresh_schema(postgres_url) if postgres_url else nullcontext(None) as database:
        out = Path(folder) / "callgrind.out"
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                   f"--callgrind-out-file={out}", sys.executable, "-m", "cogsync", "serve",
                   "--port", "0", "--data-dir", folder, "--log-level", "warning"]
        if database:
            command += ["--database", database]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True)
        try:
            found: dict[str, str] = {}
            assert proc.stdout is not None
            for line in proc.stdout:
                for name, pattern in (("key", _KEY), ("secret", _SECRET), ("pool", _POOL)):
                    if m := pattern.search(line):
                        found[name] = m.group(1)
                if m := _ENDPOINT.search(line):
                    found["host"], found["port"] = m.group(1), m.group(2)
                if line.startswith("  aws cognito-sync"):
                    break
            conn = Connection(found["host"], int(found["port"]))
            signer = RawSigner(found["host"], int(found["port"]), found["key"],
                               found["secret"], "cognito-sync")
            built = _requests(conn, signer, found["pool"], scenario, WARM_UP + requests)
            for raw in built[:WARM_UP]:
                _ok(conn, raw)
            _control(proc.pid, "-i", "on")
            _control(proc.pid, "-z")
            started = time.monotonic()
            statuses = [conn.call(raw)[0] for raw in built[WARM_UP:]]
            elapsed = time.monotonic() - started
            busy = _dump(proc.pid, Path(folder))
            # The same time again with no request: what the timers cost meanwhile.
            _control(proc.pid, "-z")
            time.sleep(elapsed)
            idle = _dump(proc.pid, Path(folder))
            _control(proc.pid, "-i", "off")
            if any(status != 200 for status in statuses):
                raise SystemExit(f"{scenario}: {sum(s != 200 for s in statuses)} failed")
            return (busy - idle) // requests
        finally:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.whole_server",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--json", metavar="FILE", help="write the results to this file")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        parser.error("valgrind (with callgrind_control) is needed")
    postgres_url = args.postgres_url if args.database == "postgresql" else None
    print(f"whole-server instructions per request, {args.database}, N={args.requests}",
          flush=True)
    counts = {}
    for scenario in SCENARIOS:
        counts[scenario] = count(scenario, args.requests, postgres_url)
        print(f"  {scenario:8} {counts[scenario]:>12,}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"database": args.database,
                                               "requests": args.requests,
                                               "instructions_per_request": counts},
                                              indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
