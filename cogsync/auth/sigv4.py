"""AWS Signature Version 4 verification (Authorization header and presigned query).

The server recomputes the signature exactly as the AWS SDKs build it: canonical URI is
the path as sent, URI-encoded once more (all services but S3 do this), the canonical
query is sorted and strictly encoded, the payload hash is the body's SHA-256 (or the
``x-amz-content-sha256`` value, or ``UNSIGNED-PAYLOAD`` for presigned URLs).
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import posixpath
import re
import time
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from urllib.parse import quote

from cogsync.errors import (
    IncompleteSignature,
    InvalidSignature,
    MissingAuthenticationToken,
)
from cogsync.protocol import numbers
from cogsync.protocol.routing import HttpRequest

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW_SECONDS = 15 * 60
MAX_PRESIGN_EXPIRES = 7 * 24 * 3600
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


@dataclass(slots=True)
class SignedRequest:
    """What a request claims; verified against a secret by :func:`verify`."""

    access_key_id: str
    date: str  # YYYYMMDD from the scope
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str  # YYYYMMDDTHHMMSSZ
    security_token: str | None
    presigned: bool
    expires: int | None


def _parse_authorization(value: str) -> dict[str, str]:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignature(
            f"Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
            f"header and algorithm {ALGORITHM}. Authorization={value[:64]}"
        )
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if not sep:
            raise IncompleteSignature(f"Authorization header is malformed near '{part.strip()}'")
        fields[key] = val
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if not fields.get(k)]
    if missing:
        raise IncompleteSignature(
            "Authorization header requires " + ", ".join(f"'{k}' parameter" for k in missing)
        )
    return fields


def _split_credential(credential: str) -> tuple[str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts):
        raise IncompleteSignature(
            f"Credential should be scoped to a valid scope: "
            f"<key>/<date>/<region>/<service>/aws4_request, got '{credential}'"
        )
    return parts[0], parts[1], parts[2], parts[3]


def parse_signed_request(request: HttpRequest) -> SignedRequest:
    """Reads the claimed signature; raises the AWS codes for absent or malformed ones."""
    header = request.headers.get("authorization")
    query = dict(request.query)
    if header is not None:
        fields = _parse_authorization(header)
        key, date, region, service = _split_credential(fields["Credential"])
        amz_date = request.headers.get("x-amz-date")
        if amz_date is None:
            raise IncompleteSignature("Authorization header requires existence of 'X-Amz-Date'")
        return SignedRequest(
            access_key_id=key,
            date=date,
            region=region,
            service=service,
            signed_headers=tuple(fields["SignedHeaders"].split(";")),
            signature=fields["Signature"],
            amz_date=amz_date,
            security_token=request.headers.get("x-amz-security-token"),
            presigned=False,
            expires=None,
        )
    if "X-Amz-Signature" in query or "X-Amz-Credential" in query:
        needed = (
            "X-Amz-Algorithm",
            "X-Amz-Credential",
            "X-Amz-Date",
            "X-Amz-SignedHeaders",
            "X-Amz-Signature",
        )
        missing = [k for k in needed if not query.get(k)]
        if missing:
            raise IncompleteSignature("Query-string authentication requires " + ", ".join(missing))
        if query["X-Amz-Algorithm"] != ALGORITHM:
            raise IncompleteSignature(f"Unsupported algorithm {query['X-Amz-Algorithm']}")
        key, date, region, service = _split_credential(query["X-Amz-Credential"])
        expires = numbers.unsigned(query.get("X-Amz-Expires", "900"), max_digits=7)
        if expires is None or not 0 < expires <= MAX_PRESIGN_EXPIRES:
            raise IncompleteSignature(f"X-Amz-Expires must be 1..{MAX_PRESIGN_EXPIRES} seconds")
        return SignedRequest(
            access_key_id=key,
            date=date,
            region=region,
            service=service,
            signed_headers=tuple(query["X-Amz-SignedHeaders"].split(";")),
            signature=query["X-Amz-Signature"],
            amz_date=query["X-Amz-Date"],
            security_token=query.get("X-Amz-Security-Token"),
            presigned=True,
            expires=expires,
        )
    raise MissingAuthenticationToken("Missing Authentication Token")


# A path of only these characters, with no "." segment and no "//", is its own normal
# form, and quoting it changes only "%" (the SDKs' paths always look like this).
_PLAIN_PATH = re.compile(r"[A-Za-z0-9/_~%-]+(?:\.[A-Za-z0-9/_~%-]+)*")
_AMZ_DATE = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z")


def _canonical_uri(raw_path: str) -> str:
    path = raw_path or "/"
    if "//" not in path and "/." not in path and _PLAIN_PATH.fullmatch(path):
        return path.replace("%", "%25")
    return _normalized_uri(path)


def _normalized_uri(path: str) -> str:
    """The general case: dot segments and repeated slashes resolved, then quoted."""
    normalized = posixpath.normpath(path)
    if path.endswith("/") and normalized != "/":
        normalized += "/"
    if normalized.startswith("//"):
        normalized = "/" + normalized.lstrip("/")
    return quote(normalized, safe="/~")


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def _encoded(text: str) -> str:
    """SigV4's strict URI encoding (only the unreserved characters stay as they are)."""
    return text if _UNRESERVED.fullmatch(text) else quote(text, safe="-_.~")


def _canonical_query(pairs: list[tuple[str, str]], presigned: bool) -> str:
    encoded = sorted(
        (_encoded(k), _encoded(v))
        for k, v in pairs
        if not (presigned and k == "X-Amz-Signature")
    )
    return "&".join(f"{k}={v}" for k, v in encoded)


def _canonical_headers(request: HttpRequest, names: tuple[str, ...]) -> str:
    lines = []
    headers = request.headers
    for name in names:
        value = headers.get(name)
        if value is None:
            raise InvalidSignature(f"Signed header '{name}' is missing from the request")
        # Whitespace trimmed and runs of it made one space; a printable value (the only
        # whitespace str.split knows that is printable is " ") needs it only if it has
        # two spaces in a row or one at an end.
        if not value.isprintable() or "  " in value or value[:1] == " " or value[-1:] == " ":
            value = " ".join(value.split())
        lines.append(f"{name}:{value}\n")
    return "".join(lines)


@lru_cache(maxsize=4096)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    k = hmac.digest(("AWS4" + secret).encode(), date.encode(), "sha256")
    k = hmac.digest(k, region.encode(), "sha256")
    k = hmac.digest(k, service.encode(), "sha256")
    return hmac.digest(k, b"aws4_request", "sha256")


_SIGNED_AT: dict[str, float] = {}  # recent X-Amz-Date values, read: a second holds many


def _signed_at(amz_date: str) -> float:
    """Epoch seconds of an ``X-Amz-Date`` (ISO 8601 basic, UTC)."""
    found = _SIGNED_AT.get(amz_date)
    if found is None:
        found = _read_amz_date(amz_date)
        if len(_SIGNED_AT) >= 1024:
            _SIGNED_AT.clear()
        _SIGNED_AT[amz_date] = found
    return found


def _read_amz_date(amz_date: str) -> float:
    m = _AMZ_DATE.fullmatch(amz_date)
    try:
        if m is None:
            raise ValueError
        year, month, day, hour, minute, second = map(int, m.groups())
        # datetime validates the calendar (no February 30th); timegm needs no time zone.
        datetime(year, month, day, hour, minute, second)
        return float(calendar.timegm((year, month, day, hour, minute, second)))
    except ValueError:
        raise IncompleteSignature(f"X-Amz-Date '{amz_date}' is not ISO 8601 basic") from None


def _check_time(claim: SignedRequest, now: float) -> None:
    signed_at = _signed_at(claim.amz_date)
    if claim.amz_date[:8] != claim.date:
        raise InvalidSignature(
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{claim.date}' != '{claim.amz_date[:8]}'"
        )
    if claim.presigned:
        assert claim.expires is not None
        if now > signed_at + claim.expires:
            raise InvalidSignature("Signature expired: the presigned URL is no longer valid")
        if signed_at - now > MAX_SKEW_SECONDS:
            raise InvalidSignature("Signature not yet current")
    elif abs(now - signed_at) > MAX_SKEW_SECONDS:
        raise InvalidSignature(
            f"Signature expired: {claim.amz_date} is now earlier or later than the "
            f"allowed 15 minute window around the server time."
        )


def verify(
    request: HttpRequest,
    claim: SignedRequest,
    secret: str,
    *,
    region: str,
    service: str,
    now: float | None = None,
) -> None:
    """Raises InvalidSignature unless ``claim`` is a valid signature of ``request``."""
    if claim.service != service:
        raise InvalidSignature(f"Credential should be scoped to correct service: '{service}'.")
    if claim.region != region:
        raise InvalidSignature(
            f"Credential should be scoped to a valid region, not '{claim.region}'."
        )
    if "host" not in claim.signed_headers:
        raise InvalidSignature("'Host' must be a signed header")
    if "x-amz-target" in request.headers and "x-amz-target" not in claim.signed_headers:
        # Unsigned, the target could be swapped for any other operation.
        raise InvalidSignature("'X-Amz-Target' must be a signed header")
    _check_time(claim, time.time() if now is None else now)

    if claim.presigned:
        candidates = [UNSIGNED_PAYLOAD, hashlib.sha256(request.body).hexdigest()]
    else:
        declared = request.headers.get("x-amz-content-sha256")
        actual = hashlib.sha256(request.body).hexdigest()
        if declared is not None and declared not in (UNSIGNED_PAYLOAD, actual):
            raise InvalidSignature("The provided 'x-amz-content-sha256' header does not match")
        candidates = [declared or actual]

    signed_headers = claim.signed_headers
    head = (f"{request.method}\n{_canonical_uri(request.raw_path)}\n"
            f"{_canonical_query(request.query, claim.presigned) if request.query else ''}\n"
            f"{_canonical_headers(request, signed_headers)}\n{';'.join(signed_headers)}\n")
    key = signing_key(secret, claim.date, claim.region, claim.service)
    prefix = (f"{ALGORITHM}\n{claim.amz_date}\n"
              f"{claim.date}/{claim.region}/{claim.service}/aws4_request\n")
    signature = claim.signature.encode()
    for payload_hash in candidates:
        digest = hashlib.sha256(f"{head}{payload_hash}".encode()).hexdigest()
        expected = hmac.digest(key, f"{prefix}{digest}".encode(), "sha256").hex()
        # Bytes: compare_digest refuses str with non-ASCII characters (TypeError).
        if hmac.compare_digest(expected.encode(), signature):
            return
    raise InvalidSignature(
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method. Consult the service "
        "documentation for details."
    )
