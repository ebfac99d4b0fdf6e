"""cogsync: a self-hostable, wire-compatible Amazon Cognito Sync server."""

__version__ = "0.1.0"
