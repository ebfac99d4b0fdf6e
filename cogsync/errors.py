"""Errors every layer may raise, named by their AWS error codes.

The HTTP status comes from the service model when the code is one of its error shapes;
the common SigV4 codes carry their own status.
"""

from __future__ import annotations


class StartupError(Exception):
    """The server cannot start as configured; the message says why and what to do."""


class ServiceError(Exception):
    """An error rendered to the client in the AWS shape."""

    code: str = "InternalErrorException"
    status: int | None = None  # None: take it from the service model

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class InvalidParameter(ServiceError):
    code = "InvalidParameterException"


class NotAuthorized(ServiceError):
    code = "NotAuthorizedException"


class ResourceNotFound(ServiceError):
    code = "ResourceNotFoundException"


class ResourceConflict(ServiceError):
    code = "ResourceConflictException"


class LimitExceeded(ServiceError):
    code = "LimitExceededException"


class InvalidConfiguration(ServiceError):
    code = "InvalidConfigurationException"


class InternalError(ServiceError):
    code = "InternalErrorException"
    status = 500


class StorageFull(ServiceError):
    """The database has no space left: nothing was written; retry once space is freed."""

    code = "ServiceUnavailableException"
    status = 503


class UnknownOperation(ServiceError):
    code = "UnknownOperationException"
    status = 404


# The common SigV4 errors (not in the Cognito Sync model).
class MissingAuthenticationToken(ServiceError):
    code = "MissingAuthenticationTokenException"
    status = 403


class IncompleteSignature(ServiceError):
    code = "IncompleteSignatureException"
    status = 400


class InvalidSignature(ServiceError):
    code = "InvalidSignatureException"
    status = 403


class UnrecognizedClient(ServiceError):
    code = "UnrecognizedClientException"
    status = 403


class ExpiredToken(ServiceError):
    code = "ExpiredTokenException"
    status = 403
