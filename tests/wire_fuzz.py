"""A model-driven fuzz of both services over real, signed HTTP requests.

Inputs come from the botocore models of cognito-sync and cognito-identity: every
operation, with members built from their shapes (aimed at the data of a small world: a
pool, an identity with credentials, a device, datasets), then often broken: a wrong type,
a length just outside its bounds, a pattern broken, a member missing or unknown, NUL and
non-BMP characters, lone surrogates, odd percent-encodings in the path, huge values,
malformed JSON. Each request goes out signed like an SDK signs it (mostly as the
developer, sometimes as the identity or another account's developer, sometimes unsigned
or signed wrong), in the REST form or the JSON 1.1 (X-Amz-Target) form.

Every answer is checked: no 5xx; an error has the AWS shape (its status the one the model
gives its code, ``x-amzn-ErrorType``, a JSON body with ``__type`` and ``message``); and a
refused call changed nothing in the database (a snapshot of every table that holds data,
before and after).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import random
import string
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import botocore.session
import sqlalchemy
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from botocore.model import OperationModel, Shape

from tests.server import REGION

_SESSION = botocore.session.get_session()
MODELS = {name: _SESSION.get_service_model(name)
          for name in ("cognito-sync", "cognito-identity")}
SYNC_TARGET = "com.amazonaws.cognito.sync.model.AWSCognitoSyncService"
COMMON_ERRORS = {
    "MissingAuthenticationTokenException": 403, "IncompleteSignatureException": 400,
    "InvalidSignatureException": 403, "UnrecognizedClientException": 403,
    "ExpiredTokenException": 403, "UnknownOperationException": 404,
    # The HTTP edge's own refusals (docs/security.md)
    "BadRequest": 400, "RequestURITooLong": 414, "RequestHeaderFieldsTooLarge": 431,
}
# An operation of the model that this version does not serve yet: a 501, counted apart.
ABSENT = (501, "NotImplementedException")
# Tables (and columns) that change by themselves, not by requests.
VOLATILE_TABLES = {"outbox", "bulk_publish_jobs", "leases", "live_listeners", "server_keys",
                   "alembic_version"}
# (A key's last use is recorded when its signature checks, whatever the call's outcome.)
VOLATILE_COLUMNS = {"sync_sessions_count", "heartbeat_at", "endpoint_arn", "last_used_at"}
ODD_TEXT = ["\x00", "a\x00b", "\U0001f600", "\ud800", "\udfff", "\u202e", "\ufeff", "\u00e9",
            "\u0661", "\u00b2", " ", "", "%", "%00", "../..", ".", "..", "\\", "\"", "'",
            "\r\n", "\t", "null", "0", "-1", "1e999", "😀" * 60]
ODD_CHARACTERS = ["\x00", "\x00", "\U0001f600", "\ud800", "\u202e", "\x7f", "\n", "\u0661"]
ODD_SEGMENTS = ["%00", "%FF", "%C0%AE", "%2F", "%2e%2e", "%2E", "%F0%9F%98%80", "%ED%A0%80",
                "%25", "%", "%zz", "a%20b", "%C3%A9", ";", "@", "~", "-", "_"]


@dataclass
class Caller:
    name: str
    key: str | None  # None: unsigned
    secret: str = ""
    token: str | None = None


@dataclass
class World:
    """What the fuzz aims at; the pools and identities are real."""

    pool_id: str  # the developer's pool
    other_pool_id: str  # another account's
    spare_pool_ids: list[str]  # the developer's, free to delete or reconfigure
    identity_id: str  # of pool_id, with credentials in ``identity``
    developer: Caller
    stranger: Caller
    identity: Caller
    device_id: str
    provider: str  # the pool's developer provider name
    tokens: list[str] = field(default_factory=list)  # sync session tokens seen


@dataclass
class Outcome:
    service: str
    operation: str
    form: str
    status: int
    code: str | None
    problem: str | None = None


@dataclass
class Tally:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    operations: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    absent: Counter[str] = field(default_factory=Counter)  # operations answered 501
    seconds: float = 0.0

    def add(self, other: Tally) -> None:
        self.requests += other.requests
        self.seconds += other.seconds
        self.problems += other.problems
        for mine, theirs in ((self.statuses, other.statuses), (self.codes, other.codes),
                             (self.operations, other.operations),
                             (self.absent, other.absent)):
            mine.update(theirs)

    def summary(self) -> str:
        server_errors = sum(n for s, n in self.statuses.items() if s >= 500)
        absent = sum(self.absent.values())
        return (f"{self.requests} requests in {self.seconds:.1f} s, "
                f"{server_errors - absent} 5xx, {len(self.problems)} problems; "
                f"statuses {dict(sorted(self.statuses.items()))}; "
                f"{len(self.operations)} operations; not yet served (501): "
                f"{sorted(self.absent)}")


class Generator:
    """Builds one request at a time from the models."""

    def __init__(self, rng: random.Random, world: World):
        self.rng = rng
        self.world = world
        self.operations = [(service, MODELS[service].operation_model(name))
                           for service in MODELS for name in MODELS[service].operation_names]

    # --- values --------------------------------------------------------------------------

    def plausible(self, shape: Shape, member: str) -> Any:
        """A value that may well be right for this member of this world."""
        w, rng = self.world, self.rng
        name = shape.name
        if name in ("IdentityPoolId",):
            return rng.choice([w.pool_id, w.pool_id, w.pool_id, w.other_pool_id,
                               rng.choice(w.spare_pool_ids), f"{REGION}:{self._uuid()}"])
        if name == "IdentityId":
            return rng.choice([w.identity_id, w.identity_id, f"{REGION}:{self._uuid()}"])
        if name == "IdentityIdList":
            return [rng.choice([f"{REGION}:{self._uuid()}", w.identity_id])
                    for _ in range(rng.randint(1, 3))]
        if name == "DatasetName":
            return rng.choice(["data", "data", "profile", "d.1", "x:y", "a" * 128])
        if name == "DeviceId":
            return rng.choice([w.device_id, w.device_id, "device-" + self._uuid()[:8]])
        if name == "SyncSessionToken" and w.tokens:
            return rng.choice(w.tokens)
        if name == "DeveloperProviderName":
            return w.provider
        if name in ("RecordKey",):
            return rng.choice(["k", "key-1", "k" * 1024, "é"])
        if name == "Long" and member == "SyncCount":
            return rng.choice([0, 0, 1, 2])
        if name == "Platform":
            return rng.choice(["GCM", "GCM", "GCM", "APNS", "ADM"])
        if name == "ApplicationArn":
            return "arn:aws:sns:us-east-1:123456789012:app/GCM/fuzz"
        if name == "AssumeRoleArn" or name == "ARNString":
            return "arn:aws:iam::123456789012:role/fuzz"
        if name == "LambdaFunctionArn":
            return "arn:aws:lambda:us-east-1:123456789012:function:fuzz"
        if name in ("Date",) or shape.type_name == "timestamp":
            return rng.choice([time.time(), 0, 1.5, 2**31])
        return self.value(shape, member, depth=0)

    def value(self, shape: Shape, member: str, depth: int) -> Any:
        rng = self.rng
        kind = shape.type_name
        meta = shape.metadata
        if depth > 4:
            return None
        if kind == "string":
            if shape.enum:
                return rng.choice(shape.enum)
            low, high = meta.get("min", 0), min(meta.get("max", 40), 40)
            size = rng.randint(low, max(low, high))
            pattern = meta.get("pattern", "")
            alphabet = string.ascii_lowercase + string.digits
            if "\\d+" in pattern and "arn" not in pattern:
                alphabet = string.digits
            text = "".join(rng.choice(alphabet) for _ in range(size))
            if ":" in pattern and "arn" not in pattern and size > 2:
                text = f"{REGION}:{self._uuid()}"[:max(size, 12)]
            return text
        if kind in ("integer", "long"):
            low, high = meta.get("min", 0), meta.get("max", 100)
            return rng.randint(low, min(high, low + 100))
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "timestamp":
            return time.time()
        if kind == "blob":
            return base64.b64encode(rng.randbytes(8)).decode()
        if kind == "list":
            low = meta.get("min", 0)
            return [self.plausible(shape.member, member) for _ in range(
                rng.randint(low, max(low, min(meta.get("max", 3), 3))))]
        if kind == "map":
            return {self.plausible(shape.key, "key") if rng.random() < 0.7 else "k":
                    self.plausible(shape.value, "value")
                    for _ in range(rng.randint(0, min(meta.get("max", 2), 2)))}
        if kind == "structure":
            return self.structure(shape, depth + 1)
        return None

    def structure(self, shape: Shape, depth: int = 0) -> dict[str, Any]:
        required = set(shape.required_members)
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            if name in required or self.rng.random() < 0.5:
                out[name] = (self.plausible(member, name) if depth < 4
                             else self.value(member, name, depth))
        return out

    def broken(self, shape: Shape) -> Any:
        """A value this shape does not allow (or only just allows)."""
        rng = self.rng
        meta = shape.metadata
        if shape.type_name == "string" and rng.random() < 0.4:
            # A value that is right but for one odd character: it reaches the deepest code.
            good = self.plausible(shape, "")
            good = good if isinstance(good, str) else ""
            at = rng.randint(0, len(good))
            return good[:at] + rng.choice(ODD_CHARACTERS) + good[at:]
        choice = rng.randint(0, 9)
        if choice == 0:
            return rng.choice([None, True, 3, -1, 2**64, 1.5, [], {}, "x", [1, "a"], {"a": 1}])
        if choice == 1 and shape.type_name == "string":
            edge = rng.choice([meta.get("min", 1) - 1, meta.get("max", 300),
                               meta.get("max", 300) + 1])
            return rng.choice(["a", "é", "\U0001f600", "0"]) * max(0, edge)
        if choice == 2:
            return rng.choice(ODD_TEXT)
        if choice == 3:
            return "x" * rng.choice([10_000, 300_000, 1_100_000])
        if choice == 4 and shape.type_name in ("integer", "long"):
            return rng.choice([meta.get("min", 0) - 1, meta.get("max", 2**63) + 1, 2**63,
                               -(2**63) - 1, "12", "1e3", 10**30])
        if choice == 5:
            return self.plausible(shape, "") + rng.choice(ODD_TEXT) if shape.type_name == \
                "string" and shape.name != "SyncSessionToken" else rng.choice(ODD_TEXT)
        if choice == 6 and shape.type_name == "timestamp":
            return rng.choice(["2024-01-01T00:00:00", "yesterday", -1e20, 1e300, "1e3"])
        if choice == 7 and shape.type_name == "structure":
            return {rng.choice(["Unknown", "", "\x00"]): 1}
        if choice == 8 and shape.type_name == "list":
            return [self.broken(shape.member) for _ in range(rng.randint(1, 3))]
        return rng.choice(ODD_TEXT + [None, 0, []])

    def _uuid(self) -> str:
        bits = self.rng.getrandbits
        return f"{bits(32):08x}-{bits(16):04x}-{bits(16):04x}-{bits(16):04x}-{bits(48):012x}"

    # --- requests ------------------------------------------------------------------------

    def params(self, op: OperationModel, caller: Caller) -> tuple[dict[str, Any], str]:
        """The members of one call, and what was broken in them."""
        shape = op.input_shape
        params = self.structure(shape) if shape is not None else {}
        if caller is self.world.identity and self.rng.random() < 0.8:
            # Mostly its own pool and identity, or authorization refuses it all.
            for name, value in (("IdentityPoolId", self.world.pool_id),
                                ("IdentityId", self.world.identity_id)):
                if name in params:
                    params[name] = value
        self._protect(op.name, params)
        roll = self.rng.random()
        if shape is None or roll < 0.35:
            return params, "valid"
        if roll < 0.55:
            char = self.rng.choice(ODD_CHARACTERS)
            keep = ("IdentityPoolId", "IdentityId") if self.rng.random() < 0.8 else ()
            return {k: v if k in keep else self._sprinkle(v, char) for k, v in params.items()
                    }, f"every string with {char!r}"
        action = self.rng.randint(0, 5)
        names = list(shape.members)
        if action == 0 and shape.required_members:
            params.pop(self.rng.choice(shape.required_members), None)
            return params, "missing member"
        if action == 1:
            params[self.rng.choice(["Unknown", "identityPoolId", ""])] = "x"
            return params, "unknown member"
        target = self.rng.choice(names) if names else None
        if target is None:
            return params, "valid"
        member = shape.members[target]
        if member.type_name == "list" and self.rng.random() < 0.5 and params.get(target):
            item = self.rng.randrange(len(params[target]))
            item_shape = member.member
            if item_shape.type_name == "structure" and item_shape.members:
                field_name = self.rng.choice(list(item_shape.members))
                value = dict(params[target][item]) if isinstance(params[target][item],
                                                                 dict) else {}
                value[field_name] = self.broken(item_shape.members[field_name])
                params[target][item] = value
                return params, f"{target}[].{field_name} broken"
        params[target] = self.broken(member)
        self._protect(op.name, params)
        return params, f"{target} broken"

    def _sprinkle(self, value: Any, char: str) -> Any:
        """``value`` with ``char`` put into every string it holds (keys too)."""
        if isinstance(value, str):
            at = self.rng.randint(0, len(value))
            return value[:at] + char + value[at:]
        if isinstance(value, list):
            return [self._sprinkle(v, char) for v in value]
        if isinstance(value, dict):
            return {self._sprinkle(k, char) if self.rng.random() < 0.3 else k:
                    self._sprinkle(v, char) for k, v in value.items()}
        return value

    def _protect(self, operation: str, params: dict[str, Any]) -> None:
        """Calls that would remove the world itself aim at a spare pool instead."""
        if operation in ("DeleteIdentityPool", "UpdateIdentityPool", "SetIdentityPoolRoles",
                         "SetIdentityPoolConfiguration", "SetCognitoEvents",
                         "MergeDeveloperIdentities", "UnlinkDeveloperIdentity",
                         "UnlinkIdentity", "SetPrincipalTagAttributeMap", "TagResource",
                         "UntagResource") and params.get("IdentityPoolId") == \
                self.world.pool_id:
            params["IdentityPoolId"] = self.rng.choice(self.world.spare_pool_ids)
        if operation in ("DeleteIdentities", "UnlinkIdentity", "UnlinkDeveloperIdentity",
                         "MergeDeveloperIdentities"):
            ids = params.get("IdentityIdsToDelete")
            if isinstance(ids, list):
                params["IdentityIdsToDelete"] = [i for i in ids if i != self.world.identity_id]
            if params.get("IdentityId") == self.world.identity_id:
                params["IdentityId"] = f"{REGION}:{self._uuid()}"
            if params.get("DestinationUserIdentifier"):
                params["DestinationUserIdentifier"] = "fuzz-" + self._uuid()[:6]

    def caller(self, service: str, op: OperationModel) -> Caller:
        w, roll = self.world, self.rng.random()
        identity_only = op.name in ("RegisterDevice", "SubscribeToDataset",
                                    "UnsubscribeFromDataset")
        if roll < 0.04:
            return Caller("unsigned", None)
        if roll < 0.08:
            return Caller("wrong secret", w.developer.key, "x" * 40)
        if roll < 0.14:
            return w.stranger
        if service == "cognito-sync" and (identity_only or roll < 0.35):
            return w.identity
        return w.developer


def _string_leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, str):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _string_leaves(v, (*path, k))]
    if isinstance(value, list):
        return [p for n, v in enumerate(value) for p in _string_leaves(v, (*path, n))]
    return []


def _insert(params: Any, path: tuple[Any, ...], char: str) -> None:
    *parents, last = path
    for step in parents:
        params = params[step]
    params[last] = params[last][:1] + char + params[last][1:]


@dataclass
class Prepared:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


def _quote(text: str) -> str:
    return quote(text, safe="", errors="surrogatepass")


def _encode(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def build(service: str, op: OperationModel, params: dict[str, Any], form: str,
          rng: random.Random) -> tuple[str, str, dict[str, str], bytes]:
    """Method, path with query, headers and body of one call in the given form."""
    if service == "cognito-identity" or form == "target":
        prefix = (MODELS[service].metadata.get("targetPrefix") if service == "cognito-identity"
                  else SYNC_TARGET)
        headers = {"X-Amz-Target": f"{prefix}.{op.name}",
                   "Content-Type": "application/x-amz-json-1.1"}
        return "POST", "/", headers, _json_body(params, rng)
    uri = op.http["requestUri"]
    path_template = uri.split("?", 1)[0]
    query: list[tuple[str, str]] = []
    headers = {}
    body: dict[str, Any] = {}
    path = path_template
    for name, member in op.input_shape.members.items():
        if name not in params:
            continue
        value = params[name]
        location = member.serialization.get("location")
        where = member.serialization.get("name", name)
        if location == "uri":
            segment = _quote(str(value))
            if rng.random() < 0.05:
                segment = rng.choice(ODD_SEGMENTS)
            path = path.replace(f"{{{where}}}", segment)
        elif location == "querystring":
            query.append((where, _encode(value) if not isinstance(value, bool)
                          else str(value).lower()))
        elif location == "header":
            text = _encode(value).replace("\r", "").replace("\n", "")  # no header splitting
            headers[where] = text.encode("utf-8", "surrogatepass").decode("latin-1")
        else:
            body[name] = value
    for name in op.input_shape.members:
        path = path.replace(f"{{{name}}}", "")
    target = path + ("?" + "&".join(f"{_quote(k)}={_quote(v)}" for k, v in query)
                     if query else "")
    data = _json_body(body, rng) if body or op.http["method"] in ("POST", "PUT") else b""
    return op.http["method"], target, headers, data


def _json_body(params: dict[str, Any], rng: random.Random) -> bytes:
    text = json.dumps(params, ensure_ascii=rng.random() < 0.5)
    body = text.encode("utf-8", "surrogatepass")
    roll = rng.random()
    if roll < 0.02:
        return body[: rng.randrange(max(1, len(body)))]  # cut short
    if roll < 0.03:
        return b"\xef\xbb\xbf" + body  # a byte order mark
    if roll < 0.04:
        return b"\xff\xfe" + body
    if roll < 0.05:
        return b"[" * 5000 + b"]" * 5000
    if roll < 0.06:
        return body[:-1] + b',"IdentityPoolId":"dup"}' if body.endswith(b"}") and \
            len(body) > 2 else body
    return body


def sign(service: str, caller: Caller, endpoint: str, method: str, target: str,
         headers: dict[str, str], body: bytes) -> Prepared:
    request = AWSRequest(method=method, url=endpoint + target, data=body,
                         headers=dict(headers))
    if caller.key is not None:
        creds = BotoCredentials(caller.key, caller.secret, caller.token)
        SigV4Auth(creds, service, REGION).add_auth(request)
    prepared = request.prepare()
    url = urlsplit(prepared.url)
    sent = {k: v for k, v in prepared.headers.items() if k.lower() != "content-length"}
    return Prepared(method, url.path + (f"?{url.query}" if url.query else ""), sent, body)


class Snapshot:
    """A digest of every table that holds data (not those that change by themselves)."""

    def __init__(self, database_url: str):
        self.engine = sqlalchemy.create_engine(database_url)
        meta = sqlalchemy.MetaData()
        meta.reflect(self.engine)
        self.queries = []
        for table in meta.sorted_tables:
            if table.name in VOLATILE_TABLES:
                continue
            columns = [c for c in table.columns if c.name not in VOLATILE_COLUMNS]
            self.queries.append(sqlalchemy.select(*columns).order_by(*columns))

    def take(self) -> str:
        digest = hashlib.sha256()
        with self.engine.connect() as conn:
            for query in self.queries:
                for row in conn.execute(query):
                    digest.update(repr(tuple(row)).encode("utf-8", "surrogatepass"))
                digest.update(b"|")
        return digest.hexdigest()

    def close(self) -> None:
        self.engine.dispose()


def expected_status(service: str, code: str) -> int | None:
    if code in COMMON_ERRORS:
        return COMMON_ERRORS[code]
    model = MODELS[service]
    if code not in model.error_shapes and code not in {s.name for s in model.error_shapes}:
        return None
    shape = model.shape_for(code)
    return int(shape.metadata.get("error", {}).get("httpStatusCode", 400))


def judge(service: str, status: int, headers: dict[str, str], body: bytes,
          head_only: bool = False) -> tuple[str | None, str | None]:
    """The error code of an answer, and what is wrong with it (None if nothing)."""
    if status >= 500:
        return None, f"status {status}: {body[:300]!r}"
    if status == 200:
        try:
            return None, None if isinstance(json.loads(body), dict) else "200 not an object"
        except ValueError:
            return None, f"200 with a body that is not JSON: {body[:100]!r}"
    code = headers.get("x-amzn-errortype", "")
    try:
        document = json.loads(body)
    except ValueError:
        return code, f"error body is not JSON: {body[:200]!r}"
    if not isinstance(document, dict) or document.get("__type") != code or not code:
        return code, f"error type header and body disagree: {headers} {document}"
    if not isinstance(document.get("message"), str) or not document["message"]:
        return code, "error without a message"
    wanted = expected_status(service, code)
    if wanted is None:
        return code, f"{code} is not an error of the {service} model"
    if wanted != status:
        return code, f"{code} answered {status}, the model says {wanted}"
    return code, None


class Fuzzer:
    def __init__(self, endpoint: str, world: World, database_url: str, seed: int):
        self.endpoint = endpoint
        url = urlsplit(endpoint)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.world = world
        self.rng = random.Random(seed)
        self.generator = Generator(self.rng, world)
        self.snapshot = Snapshot(database_url)
        self.tally = Tally()
        self.conn: http.client.HTTPConnection | None = None
        self.known: str | None = None  # the snapshot after the last call, if it is still so

    def send(self, prepared: Prepared) -> tuple[int, dict[str, str], bytes]:
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                self.conn.request(prepared.method, prepared.target, body=prepared.body,
                                  headers=prepared.headers)
                response = self.conn.getresponse()
                body = response.read()
                headers = {k.lower(): v for k, v in response.getheaders()}
                if headers.get("connection") == "close":
                    self.conn.close()
                    self.conn = None
                return response.status, headers, body
            except (ConnectionError, http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def one(self) -> Outcome:
        rng, generator = self.rng, self.generator
        service, op = rng.choice(generator.operations)
        caller = generator.caller(service, op)
        params, broken = generator.params(op, caller)
        form = "target" if service == "cognito-identity" or rng.random() < 0.2 else "rest"
        return self.call(service, op, caller, params, broken, form)

    def sweep(self) -> None:
        """Every string a valid call holds, one at a time, with NUL, a character past the
        BMP and a lone surrogate in it: what random choices reach only by luck."""
        generator, world = self.generator, self.world
        for service, op in generator.operations:
            if op.input_shape is None:
                continue
            identity_only = op.name in ("RegisterDevice", "SubscribeToDataset",
                                        "UnsubscribeFromDataset")
            caller = world.identity if identity_only else world.developer
            base = generator.structure(op.input_shape)
            for name, value in (("IdentityPoolId", world.pool_id),
                                ("IdentityId", world.identity_id)):
                if name in op.input_shape.members:
                    base[name] = value
            generator._protect(op.name, base)
            for path in _string_leaves(base):
                for char in ("\x00", "\U0001f600", "\ud800"):
                    params = json.loads(json.dumps(base))
                    _insert(params, path, char)
                    for form in ("rest", "target") if service == "cognito-sync" else ("target",):
                        self.call(service, op, caller, params, f"{path} with {char!r}", form)

    def call(self, service: str, op: OperationModel, caller: Caller, params: dict[str, Any],
             broken: str, form: str) -> Outcome:
        rng = self.rng
        method, target, headers, body = build(service, op, params, form, rng)
        prepared = sign(service, caller, self.endpoint, method, target, headers, body)
        before = self.known or self.snapshot.take()
        status, answer_headers, answer = self.send(prepared)
        code, problem = judge(service, status, answer_headers, answer)
        if (status, answer_headers.get("x-amzn-errortype")) == ABSENT:
            code, problem = ABSENT[1], None
            self.tally.absent[op.name] += 1
        self.known = None
        if status != 200:
            self.known = self.snapshot.take()
            if problem is None and self.known != before:
                problem = "a refused call changed the data"
        if status == 200 and op.name == "ListRecords":
            token = json.loads(answer).get("SyncSessionToken")
            if token and len(self.world.tokens) < 50:
                self.world.tokens.append(token)
        outcome = Outcome(service, op.name, form, status, code, problem)
        self.tally.requests += 1
        self.tally.statuses[status] += 1
        self.tally.operations[f"{service}:{op.name}"] += 1
        if code:
            self.tally.codes[code] += 1
        if problem is not None:
            self.tally.problems.append(
                f"{service} {op.name} ({form}, {caller.name}, {broken}): {problem}; "
                f"request {method} {target[:200]} {body[:300]!r}")
        return outcome

    def run(self, count: int, sweep: bool = True) -> Tally:
        started = time.perf_counter()
        if sweep:
            self.sweep()
        for _ in range(count):
            self.one()
        self.tally.seconds = time.perf_counter() - started
        if self.conn is not None:
            self.conn.close()
        self.snapshot.close()
        return self.tally
