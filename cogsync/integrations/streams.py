"""Where Cognito Streams records go, chosen by one URL (``cogsync serve --streams URL``).

- ``file:///folder``: one JSON-lines file per stream (the embedded default);
- ``redis://host:port/db``: Redis Streams, ``XADD <stream> * data <json>``;
- ``nats://host:port``: NATS JetStream, subject = stream name (a JetStream stream is
  created for the subject if none captures it);
- ``kinesis://host:port`` (``kinesis+https://`` for TLS, ``kinesis://`` alone for AWS):
  the Kinesis API's PutRecord, partition key = identity id.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from cogsync.integrations.aws_clients import aws_client, endpoint_from_url


class DeliveryError(Exception):
    """A delivery failed in a way that may pass: try again later."""


class StreamBackend(Protocol):
    url: str

    async def publish(self, stream: str, partition_key: str, data: bytes) -> None: ...

    async def close(self) -> None: ...


def _safe_name(stream: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", stream)


class FileStreams:
    """Appends each record as one line to ``<folder>/<stream>.jsonl``, flushed to disk."""

    def __init__(self, folder: Path):
        self.url = f"file://{folder}"
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def _append(self, stream: str, data: bytes) -> None:
        path = self.folder / f"{_safe_name(stream)}.jsonl"
        with open(path, "ab") as handle:
            handle.write(data + b"\n")
            handle.flush()
            os.fsync(handle.fileno())

    async def publish(self, stream: str, partition_key: str, data: bytes) -> None:
        await asyncio.to_thread(self._append, stream, data)

    async def close(self) -> None:
        return None


class RedisStreams:
    def __init__(self, url: str):
        import redis.asyncio as redis

        self.url = url
        self._client = redis.from_url(url)

    async def publish(self, stream: str, partition_key: str, data: bytes) -> None:
        try:
            await self._client.xadd(stream, {"data": data, "partitionKey": partition_key})
        except Exception as exc:  # connection refused, timeouts, server errors
            raise DeliveryError(f"Redis XADD to {stream}: {exc}") from exc

    async def close(self) -> None:
        await self._client.aclose()


class NatsStreams:
    def __init__(self, url: str):
        self.url = url
        self._connection: Any = None
        self._streams: set[str] = set()

    async def _jetstream(self) -> Any:
        import nats

        if self._connection is None or self._connection.is_closed:
            self._connection = await nats.connect(
                self.url, connect_timeout=5, max_reconnect_attempts=1
            )
        return self._connection.jetstream()

    async def publish(self, stream: str, partition_key: str, data: bytes) -> None:
        from nats.js.errors import NoStreamResponseError

        try:
            js = await self._jetstream()
            try:
                await js.publish(stream, data, timeout=5, headers={"Partition-Key": partition_key})
            except NoStreamResponseError:
                if stream in self._streams:
                    raise
                await js.add_stream(
                    name=f"cogsync_{_safe_name(stream).replace('.', '_')}", subjects=[stream]
                )
                self._streams.add(stream)
                await js.publish(stream, data, timeout=5, headers={"Partition-Key": partition_key})
        except Exception as exc:
            raise DeliveryError(f"NATS JetStream publish to {stream}: {exc}") from exc

    async def close(self) -> None:
        if self._connection is not None and not self._connection.is_closed:
            await self._connection.close()


class KinesisStreams:
    def __init__(self, url: str, region: str):
        self.url = url
        self._client = aws_client("kinesis", endpoint_from_url(url), region)

    def _put(self, stream: str, partition_key: str, data: bytes) -> None:
        self._client.put_record(StreamName=stream, Data=data, PartitionKey=partition_key)

    async def publish(self, stream: str, partition_key: str, data: bytes) -> None:
        try:
            await asyncio.to_thread(self._put, stream, partition_key, data)
        except Exception as exc:
            raise DeliveryError(f"Kinesis PutRecord to {stream}: {exc}") from exc

    async def close(self) -> None:
        return None


def open_streams(url: str, region: str) -> StreamBackend:
    scheme = urlparse(url).scheme
    if scheme == "file":
        return FileStreams(Path(urlparse(url).path))
    if scheme in ("redis", "rediss"):
        return RedisStreams(url)
    if scheme in ("nats", "tls"):
        return NatsStreams(url)
    if scheme in ("kinesis", "kinesis+https", "kinesis+http"):
        return KinesisStreams(url, region)
    raise ValueError(f"unknown streams URL '{url}' (file://, redis://, nats://, kinesis://)")
