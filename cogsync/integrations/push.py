"""Push sync delivery channels, chosen with ``cogsync serve --push URL`` (repeatable).

- ``sns://host:port`` (``sns+https://`` for TLS, ``sns://`` alone for AWS): as AWS does,
  CreatePlatformEndpoint for the device token under the pool's PushSync application
  ARN of its platform, then Publish with one silent message per platform;
- ``http(s)://...``: a webhook; the JSON body is HMAC-SHA256 signed with the secret in
  ``COGSYNC_PUSH_WEBHOOK_SECRET`` (header ``X-Cogsync-Signature: sha256=<hex>``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlparse

from cogsync.integrations.aws_clients import aws_client, endpoint_from_url
from cogsync.integrations.streams import DeliveryError
from cogsync.store.database import Store


def platform_messages(data: dict[str, Any]) -> dict[str, Any]:
    """The per-platform bodies of an SNS ``MessageStructure=json`` publish.

    GCM/FCM and ADM deliver ``data`` as string extras (Android's sync manager reads
    ``extras.getString("syncCount")`` and parses it), so every value there is a string;
    APNS gets the values as they are, beside ``aps``."""
    as_strings = {k: str(v) for k, v in data.items()}
    silent_apns = json.dumps({"aps": {"content-available": 1}, **data})
    return {
        "default": json.dumps(data),
        "GCM": json.dumps({"data": as_strings}),
        "APNS": silent_apns,
        "APNS_SANDBOX": silent_apns,
        "ADM": json.dumps({"data": as_strings}),
    }



class DeviceRejected(Exception):
    """The platform refused the device's token for good: the device is disabled."""


class PushChannel(Protocol):
    url: str

    async def send(self, device_id: str, push: dict[str, Any]) -> None: ...


# The device's SNS endpoint ARN, cached in the store: (get, set).
EndpointCache = tuple[Callable[[str], str | None], Callable[[str, str | None], None]]


def stored_endpoints(store: Store) -> EndpointCache:
    """The SNS endpoint ARN of each device, kept with the device in the database."""

    def get(device_id: str) -> str | None:
        with store.read() as tx:
            return tx.device_endpoint(device_id)

    def put(device_id: str, endpoint_arn: str | None) -> None:
        with store.write() as tx:
            tx.set_device_endpoint(device_id, endpoint_arn)

    return get, put


class SnsPush:
    def __init__(self, url: str, region: str, endpoints: EndpointCache):
        self.url = url
        self._client = aws_client("sns", endpoint_from_url(url), region)
        self._get_endpoint, self._set_endpoint = endpoints

    def _application(self, push: dict[str, Any]) -> str:
        platform = push["platform"]
        for arn in push.get("applicationArns") or ():
            if f":app/{platform}/" in arn:
                return str(arn)
        raise DeviceRejected(f"the pool has no platform application for {platform}")

    def _send(self, device_id: str, push: dict[str, Any]) -> None:
        from botocore.exceptions import ClientError

        endpoint = self._get_endpoint(device_id)
        try:
            if endpoint is None:
                endpoint = self._client.create_platform_endpoint(
                    PlatformApplicationArn=self._application(push),
                    Token=push["token"],
                )["EndpointArn"]
                self._set_endpoint(device_id, endpoint)
            self._client.publish(
                TargetArn=endpoint,
                MessageStructure="json",
                Message=json.dumps(platform_messages(push["message"])),
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("EndpointDisabled", "InvalidParameter", "NotFound"):
                self._set_endpoint(device_id, None)
                raise DeviceRejected(f"SNS refused the device: {code}") from exc
            raise DeliveryError(f"SNS {code}: {exc}") from exc
        except DeviceRejected:
            raise
        except Exception as exc:  # connection errors, timeouts
            raise DeliveryError(f"SNS: {exc}") from exc

    async def send(self, device_id: str, push: dict[str, Any]) -> None:
        await asyncio.to_thread(self._send, device_id, push)


class WebhookPush:
    def __init__(self, url: str, secret: str | None):
        self.url = url
        self._secret = (secret or "").encode()

    def _post(self, device_id: str, push: dict[str, Any]) -> None:
        body = json.dumps(
            {
                "deviceId": device_id,
                "platform": push["platform"],
                "token": push["token"],
                "message": push["message"],
            }
        ).encode()
        timestamp = str(int(time.time()))
        signature = hmac.new(
            self._secret, timestamp.encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "content-type": "application/json",
                "x-cogsync-timestamp": timestamp,
                "x-cogsync-signature": f"sha256={signature}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 410:
                raise DeviceRejected("the webhook answered 410 Gone for the device") from exc
            raise DeliveryError(f"webhook answered {exc.code}") from exc
        except (OSError, ValueError) as exc:
            raise DeliveryError(f"webhook: {exc}") from exc

    async def send(self, device_id: str, push: dict[str, Any]) -> None:
        await asyncio.to_thread(self._post, device_id, push)


def open_push(
    url: str, region: str, endpoints: EndpointCache, webhook_secret: str | None
) -> PushChannel:
    scheme = urlparse(url).scheme
    if scheme in ("sns", "sns+https", "sns+http"):
        return SnsPush(url, region, endpoints)
    if scheme in ("http", "https"):
        return WebhookPush(url, webhook_secret)
    raise ValueError(f"unknown push URL '{url}' (sns://, http://, https://)")
