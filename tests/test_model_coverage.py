"""Every operation of botocore's cognito-identity and cognito-sync models has a handler,
so none answers 501; the STS handlers name operations of the sts model."""

from __future__ import annotations

from cogsync.identity.operations import HANDLERS as IDENTITY_HANDLERS
from cogsync.identity.sts_operations import HANDLERS as STS_HANDLERS
from cogsync.protocol.model import identity_model, sts_model, sync_model
from cogsync.sync.operations import HANDLERS as SYNC_HANDLERS
from tests.server import independent_of_backend

pytestmark = independent_of_backend


def test_every_cognito_identity_operation_has_a_handler() -> None:
    assert sorted(identity_model().operations) == sorted(IDENTITY_HANDLERS)


def test_every_cognito_sync_operation_has_a_handler() -> None:
    assert sorted(sync_model().operations) == sorted(SYNC_HANDLERS)


def test_sts_handlers_serve_operations_of_the_model() -> None:
    model = sts_model()
    assert set(STS_HANDLERS) == {"AssumeRoleWithWebIdentity", "GetCallerIdentity"}
    assert set(STS_HANDLERS) <= set(model.operations)
    assert model.operations["AssumeRoleWithWebIdentity"].unsigned
    assert not model.operations["GetCallerIdentity"].unsigned
