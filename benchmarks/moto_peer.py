"""moto's DynamoDB server doing what the two sync calls do, for comparison.

A team without cogsync would keep the records in DynamoDB (in tests: moto's server) and
write a sync call as DynamoDB calls:

- UpdateRecords of 10 patches = one ``TransactWriteItems``: 10 record ``Put``s, each
  conditioned on the record's version (``attribute_not_exists`` for a new key), plus an
  ``Update`` of the dataset's item (sync count, record count, bytes, last change)
  conditioned on its current sync count. Reading the count first is not measured.
- ListRecords of 100 records = one ``Query`` of the dataset's partition, 100 items.

Requests are built and SigV4-signed before each phase, like cogsync's. moto's server
(werkzeug) closes the connection after every answer, so the load generator connects
again for each request, inside its timing: that is what a client of that server pays.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from benchmarks.load import PhaseResult, exchange, run_phase
from benchmarks.procs import launch, stop_group
from benchmarks.run import phase_row
from benchmarks.signing import REGION, RawSigner

RECORDS = "cogsync-records"
DATASETS = "cogsync-datasets"
POOL = f"{REGION}:00000000-0000-4000-8000-0000000000aa"
UPDATE_DATASETS = 160  # as many as cogsync's UpdateRecords workload writes to
LIST_DATASETS = 16
PATCHES = 10
VALUE = "v" * 32
_RUNNING = re.compile(r"Running on (http://\S+?):(\d+)")


@dataclass
class MotoServer:
    """``python -m moto.server`` on a free port, in a process group of its own."""

    host: str = "127.0.0.1"
    port: int = 0
    process: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 60.0) -> MotoServer:
        env = {**os.environ, "AWS_DEFAULT_REGION": REGION}

        def watch(line: str) -> bool:
            if len(self.output) < 200:  # werkzeug logs every request after start-up
                self.output.append(line)
            if m := _RUNNING.search(line):
                self.port = int(m.group(2))
            return bool(m)

        self.process = launch([sys.executable, "-m", "moto.server", "-H", self.host, "-p", "0"],
                              env, watch, timeout)
        if not self.port or self.process.poll() is not None:
            self.stop()
            raise RuntimeError("moto did not start:\n" + "".join(self.output))
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process)


def _s(text: str) -> dict[str, str]:
    return {"S": text}


def _n(number: float) -> dict[str, str]:
    return {"N": str(number)}


class DynamoRequests:
    """Signed DynamoDB JSON 1.0 requests to one moto server (any key is accepted)."""

    def __init__(self, server: MotoServer):
        self.server = server
        self.signer = RawSigner(server.host, server.port, "AKIDBENCHMARK", "bench-secret",
                                "dynamodb")

    def call(self, operation: str, payload: dict[str, Any]) -> bytes:
        body = json.dumps(payload, separators=(",", ":")).encode()
        return self.signer.request("POST", "/", body, {
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": f"DynamoDB_20120810.{operation}",
        })

    def send(self, requests: list[bytes]) -> list[dict[str, Any]]:
        """Sends setup or check requests once each; every one must answer 200."""
        results = exchange(self.server.host, self.server.port, requests)
        bad = [(s, b[:300]) for s, b in results if s != 200]
        if bad:
            raise RuntimeError(f"moto: {len(bad)} of {len(results)} failed, first: {bad[0]}")
        return [json.loads(body) for _, body in results]


def _dataset_key(tag: str, number: int) -> str:
    identity = f"{REGION}:00000000-0000-4000-8000-{number:012x}"
    return f"{POOL}#{identity}#{tag}"


@dataclass
class MotoWorkload:
    """The DynamoDB equivalents of the benchmark's UpdateRecords and ListRecords."""

    dynamo: DynamoRequests
    succeeded: dict[str, int] = field(default_factory=dict)  # phase tag: applied writes

    def _create_tables(self, tag: str) -> None:
        self.dynamo.send([self.dynamo.call("CreateTable", {
            "TableName": f"{table}-{tag}",
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": k, "AttributeType": "S"} for k in keys],
            "KeySchema": [{"AttributeName": k, "KeyType": t}
                          for k, t in zip(keys, ("HASH", "RANGE"), strict=False)],
        }) for table, keys in ((RECORDS, ("pk", "sk")), (DATASETS, ("pk",)))])

    def setup(self) -> None:
        """Tables of their own for the ListRecords data, with 16 datasets of 100 items."""
        self._create_tables("lists")
        items = [{"pk": _s(_dataset_key("profile", 10_000 + d)),
                  "sk": _s(f"setting-{k:03d}"), "value": _s(f"value {k} " + VALUE),
                  "syncCount": _n(1), "lastModified": _n(round(time.time(), 3)),
                  "modifiedBy": _s("bench-device")}
                 for d in range(LIST_DATASETS) for k in range(100)]
        self.dynamo.send([
            self.dynamo.call("BatchWriteItem", {"RequestItems": {
                f"{RECORDS}-lists": [{"PutRequest": {"Item": item}}
                                     for item in items[i:i + 25]]}})
            for i in range(0, len(items), 25)])

    def build_updates(self, tag: str, count: int) -> list[bytes]:
        """``count`` transactions into new, empty tables named after ``tag`` (one per
        phase: moto copies every table a transaction touches, so its cost grows with the
        table). Round robin: transaction n writes fresh keys to dataset n % 160 at its
        sync count n // 160, so sent in order every condition holds."""
        self._create_tables(tag)
        now = round(time.time(), 3)
        requests = []
        for n in range(count):
            dataset = _dataset_key(tag, n % UPDATE_DATASETS)
            current = n // UPDATE_DATASETS
            new = current + 1
            puts = [{"Put": {
                "TableName": f"{RECORDS}-{tag}",
                "Item": {"pk": _s(dataset), "sk": _s(f"k{n}-{j}"), "value": _s(VALUE),
                         "syncCount": _n(new), "lastModified": _n(now),
                         "deviceLastModified": _n(now), "modifiedBy": _s("bench-device")},
                "ConditionExpression": "attribute_not_exists(sk)",
            }} for j in range(PATCHES)]
            counted = {":new": _n(new), ":now": _n(now), ":by": _s("bench-device"),
                       ":records": _n(PATCHES),
                       ":bytes": _n(PATCHES * (len(f"k{n}-0") + len(VALUE)))}
            if current:
                condition = "syncCount = :current"
                counted[":current"] = _n(current)
            else:
                condition = "attribute_not_exists(pk)"
            update = {"Update": {
                "TableName": f"{DATASETS}-{tag}",
                "Key": {"pk": _s(dataset)},
                "UpdateExpression": "SET syncCount = :new, lastModified = :now, "
                                    "modifiedBy = :by ADD numRecords :records, "
                                    "dataStorage :bytes",
                "ConditionExpression": condition,
                "ExpressionAttributeValues": counted,
            }}
            requests.append(self.dynamo.call("TransactWriteItems",
                                             {"TransactItems": [*puts, update]}))
        return requests

    def count(self, tag: str, result: PhaseResult) -> None:
        self.succeeded[tag] = self.succeeded.get(tag, 0) + result.requests - result.errors

    def build_lists(self) -> list[bytes]:
        return [self.dynamo.call("Query", {
            "TableName": f"{RECORDS}-lists",
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": _s(_dataset_key("profile", 10_000 + d))},
        }) for d in range(LIST_DATASETS)]

    def check_lists(self, requests: list[bytes]) -> None:
        for answer in self.dynamo.send(requests):
            if answer["Count"] != 100 or "LastEvaluatedKey" in answer:
                raise RuntimeError(f"moto Query returned {answer['Count']} items")

    def check_conditions(self, tag: str) -> None:
        """The first transactions of a batch apply in order, and sending the first one
        again is refused: the conditions are real and the pre-built batch is valid."""
        requests = self.build_updates(tag, UPDATE_DATASETS + 2)
        sample = [*requests[:2], requests[UPDATE_DATASETS], requests[UPDATE_DATASETS + 1]]
        for request in sample:
            self.dynamo.send([request])
        replay = exchange(self.dynamo.server.host, self.dynamo.server.port, [requests[0]])
        status, body = replay[0]
        if status != 400 or b"ConditionalCheckFailed" not in body:
            raise RuntimeError(f"moto accepted a stale transaction: {status} {body[:300]!r}")

    def verify(self, tag: str) -> str:
        """The datasets written in phase ``tag``: their sync counts add up to the number
        of acknowledged transactions and they hold 10 records for each."""
        keys = [_dataset_key(tag, d) for d in range(UPDATE_DATASETS)]
        got = self.dynamo.send([self.dynamo.call("BatchGetItem", {"RequestItems": {
            f"{DATASETS}-{tag}": {"Keys": [{"pk": _s(k)} for k in keys[i:i + 100]]}}})
            for i in range(0, len(keys), 100)])
        items = [i for answer in got for i in answer["Responses"][f"{DATASETS}-{tag}"]]
        total = sum(int(item["syncCount"]["N"]) for item in items)
        expected = self.succeeded.get(tag, 0)
        if total != expected:
            return f"moto: sync counts add up to {total}, but {expected} writes succeeded"
        counts = self.dynamo.send([self.dynamo.call("Query", {
            "TableName": f"{RECORDS}-{tag}", "Select": "COUNT",
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": _s(k)}}) for k in keys])
        records = sum(answer["Count"] for answer in counts)
        if records != PATCHES * expected:
            return f"moto: {records} records stored, expected {PATCHES} x {expected}"
        return ""


MOTO_UPDATE = "moto TransactWriteItems (10 Puts + 1 Update)"
MOTO_LIST = "moto Query (100 items)"


def measure_moto(seconds: float, warmup: float, concurrency: int) -> dict[str, Any]:
    """Starts moto, checks the conditions hold, then times both equivalents (each after a
    warm-up) and checks every acknowledged transaction was applied once."""
    server = MotoServer().start()
    try:
        workload = MotoWorkload(DynamoRequests(server))
        workload.setup()
        workload.check_conditions("check")

        def phase(requests: list[bytes], length: float, repeat: bool) -> PhaseResult:
            return run_phase(server.host, server.port, requests, concurrency=concurrency,
                             seconds=length, repeat=repeat, server_pid=server.pid)

        warm = phase(workload.build_updates("warm", 500), warmup, repeat=False)
        workload.count("warm", warm)
        count = int(max(warm.throughput, 50.0) * seconds * 2) + 50
        updates = phase(workload.build_updates("timed", count), seconds, repeat=False)
        workload.count("timed", updates)
        lists = workload.build_lists()
        workload.check_lists(lists)
        phase(lists, warmup, repeat=True)
        listing = phase(lists, seconds, repeat=True)
        problem = workload.verify("warm") or workload.verify("timed")
    finally:
        server.stop()
    return {
        "concurrency": concurrency,
        "phases": [phase_row(MOTO_UPDATE, 1, updates, None),
                   phase_row(MOTO_LIST, 1, listing, None)],
        "write_check": problem or "ok",
    }
