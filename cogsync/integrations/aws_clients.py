"""Clients for the AWS APIs cogsync calls (Kinesis, SNS, Lambda), from an operator URL.

``kinesis://host:port`` means plain HTTP to that server, ``kinesis+https://host`` TLS, and
``kinesis://`` alone the service's AWS endpoint in the server's region (likewise ``sns``).
Credentials come from the usual chain: environment, profile or instance role.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse


def endpoint_from_url(url: str) -> str | None:
    parsed = urlparse(url)
    scheme = "https" if parsed.scheme.endswith("+https") else "http"
    return f"{scheme}://{parsed.netloc}" if parsed.netloc else None


def aws_client(
    service: str,
    endpoint: str | None,
    region: str,
    *,
    connect_timeout: float = 5,
    read_timeout: float = 10,
) -> Any:
    """One attempt per call: the outbox does the retrying, with its own backoff."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        region_name=region,
        endpoint_url=endpoint,
        config=Config(
            retries={"max_attempts": 1}, connect_timeout=connect_timeout, read_timeout=read_timeout
        ),
    )
