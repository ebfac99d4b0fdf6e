"""Logins from an OpenID Connect provider the operator configures, verified for real.

The test plays the provider: it makes an RSA key, serves its JWKS over HTTP on
loopback, and signs id tokens with it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.identity_helpers import make_pool, sync_client_for, unsigned_identity_client
from tests.server import ServerProcess
from tests.test_sync_semantics import Dataset, error_code, put

ISSUER = "https://idp.example.test"
PROVIDER = "idp.example.test"
CLIENT_ID = "mobile-app"


class Provider:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": "k1", "alg": "RS256", "use": "sig"})
        self.jwks = {"keys": [jwk]}

    def token(self, sub: str, *, audience: str = CLIENT_ID, issuer: str = ISSUER,
              expires_in: int = 300, key: Any = None, **extra: Any) -> str:
        now = int(time.time())
        claims = {"iss": issuer, "sub": sub, "aud": audience, "iat": now,
                  "exp": now + expires_in, **extra}
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture(scope="module")
def provider() -> Iterator[tuple[Provider, str]]:
    idp = Provider()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            body = json.dumps(idp.jwks).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield idp, f"http://127.0.0.1:{httpd.server_address[1]}/jwks"
    httpd.shutdown()


@pytest.fixture(scope="module")
def idp_server(provider: tuple[Provider, str],
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    _, jwks_uri = provider
    config = [{"issuer": ISSUER, "jwks_uri": jwks_uri, "audiences": [CLIENT_ID]}]
    proc = ServerProcess(tmp_path_factory.mktemp("oidc"),
                         env={"COGSYNC_OIDC_PROVIDERS": json.dumps(config)}).start()
    yield proc
    proc.kill()


@pytest.fixture(scope="module")
def oidc_pool(idp_server: ServerProcess) -> str:
    return make_pool(idp_server, unauthenticated=False, push=False,
                     OpenIdConnectProviderARNs=[
                         f"arn:aws:iam::123456789012:oidc-provider/{PROVIDER}"])


def test_a_verified_login_gets_an_identity_and_credentials(
    idp_server: ServerProcess, provider: tuple[Provider, str], oidc_pool: str
) -> None:
    idp, _ = provider
    public = unsigned_identity_client(idp_server)
    logins = {PROVIDER: idp.token("user-1")}
    identity_id = public.get_id(IdentityPoolId=oidc_pool, Logins=logins)["IdentityId"]
    # The same user on another device, with a new token: the same identity.
    again = public.get_id(IdentityPoolId=oidc_pool, Logins={PROVIDER: idp.token("user-1")})
    assert again["IdentityId"] == identity_id
    other = public.get_id(IdentityPoolId=oidc_pool, Logins={PROVIDER: idp.token("user-2")})
    assert other["IdentityId"] != identity_id
    creds = public.get_credentials_for_identity(IdentityId=identity_id,
                                                Logins=logins)["Credentials"]
    client = sync_client_for(idp_server, creds)
    Dataset(client, oidc_pool, identity_id).update([put("k", "v")])
    # Another user's login does not open this identity.
    with pytest.raises(ClientError) as excinfo:
        public.get_credentials_for_identity(IdentityId=identity_id,
                                            Logins={PROVIDER: idp.token("user-2")})
    assert error_code(excinfo)[0] == "NotAuthorizedException"
    described = idp_server.client("cognito-identity").describe_identity(IdentityId=identity_id)
    assert described["Logins"] == [PROVIDER]


@pytest.mark.parametrize("bad", ["wrong-key", "expired", "wrong-audience", "wrong-issuer",
                                 "garbage"])
def test_bad_tokens_are_refused(idp_server: ServerProcess, provider: tuple[Provider, str],
                                oidc_pool: str, bad: str) -> None:
    idp, _ = provider
    token = {
        "wrong-key": lambda: idp.token("u", key=rsa.generate_private_key(
            public_exponent=65537, key_size=2048)),
        "expired": lambda: idp.token("u", expires_in=-60),
        "wrong-audience": lambda: idp.token("u", audience="someone-else"),
        "wrong-issuer": lambda: idp.token("u", issuer="https://evil.example"),
        "garbage": lambda: "not.a.jwt",
    }[bad]()
    public = unsigned_identity_client(idp_server)
    with pytest.raises(ClientError) as excinfo:
        public.get_id(IdentityPoolId=oidc_pool, Logins={PROVIDER: token})
    assert error_code(excinfo)[0] == "NotAuthorizedException"


def test_a_pool_must_name_the_provider(idp_server: ServerProcess,
                                       provider: tuple[Provider, str]) -> None:
    idp, _ = provider
    pool = make_pool(idp_server, unauthenticated=True, push=False)
    public = unsigned_identity_client(idp_server)
    with pytest.raises(ClientError) as excinfo:
        public.get_id(IdentityPoolId=pool, Logins={PROVIDER: idp.token("u")})
    assert error_code(excinfo)[0] == "NotAuthorizedException"


def test_logins_of_two_identities_merge(idp_server: ServerProcess,
                                        provider: tuple[Provider, str], oidc_pool: str) -> None:
    """A developer login and a provider login first used apart, then together."""
    idp, _ = provider
    developer = idp_server.client("cognito-identity")
    sync = idp_server.client()
    first = developer.get_open_id_token_for_developer_identity(
        IdentityPoolId=oidc_pool, Logins={"login.example.app": "gina"})["IdentityId"]
    public = unsigned_identity_client(idp_server)
    second = public.get_id(IdentityPoolId=oidc_pool,
                           Logins={PROVIDER: idp.token("gina-idp")})["IdentityId"]
    Dataset(sync, oidc_pool, second, "notes").update([put("n", "from-idp")])
    merged = developer.get_open_id_token_for_developer_identity(
        IdentityPoolId=oidc_pool, IdentityId=first,
        Logins={"login.example.app": "gina", PROVIDER: idp.token("gina-idp")})
    assert merged["IdentityId"] == first
    assert Dataset(sync, oidc_pool, first, "notes").values() == {"n": "from-idp"}
    again = public.get_id(IdentityPoolId=oidc_pool, Logins={PROVIDER: idp.token("gina-idp")})
    assert again["IdentityId"] == first
