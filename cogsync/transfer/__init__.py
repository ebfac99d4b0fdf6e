"""Moving data in and out of cogsync: ``import`` from any Cognito Sync endpoint (AWS, or
another cogsync) over the public API, and ``export`` / ``restore`` of a database or a pool
in a portable JSON-lines format (see docs/migration.md)."""
