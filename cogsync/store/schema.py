"""The one schema, for SQLite and PostgreSQL alike.

Times are epoch seconds as double precision floats (what the wire carries); JSON
configuration is kept as text so that both engines store it the same way. Changes to
this file need a migration in ``migrations/versions``; a test compares the two.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()


def _free_text(length: int) -> String:
    """Text the models bound to ``length`` characters but allow any of: on PostgreSQL U+0000
    and U+0001 are stored as two characters (text_codec.py), so twice as wide there."""
    return String(length).with_variant(String(2 * length), "postgresql")  # type: ignore[return-value]


accounts = Table(
    "accounts",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("created_at", Float, nullable=False),
)

access_keys = Table(
    "access_keys",
    metadata,
    Column("access_key_id", String(128), primary_key=True),
    Column("account_id", String(12), ForeignKey("accounts.account_id"), nullable=False),
    # AES-GCM ciphertext of the secret under the server's master key (see docs/security.md).
    Column("secret_ciphertext", LargeBinary, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    # When a request first verified with this key (migration 0005); None: never. A first
    # start's key is shown again at each start until then.
    Column("last_used_at", Float, nullable=True),
)

identity_pools = Table(
    "identity_pools",
    metadata,
    Column("identity_pool_id", String(55), primary_key=True),
    Column("account_id", String(12), ForeignKey("accounts.account_id"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("events", Text, nullable=False),  # JSON object: event type -> lambda ARN
    Column("push_sync", Text, nullable=True),  # JSON, the PushSync shape
    Column("cognito_streams", Text, nullable=True),  # JSON, the CognitoStreams shape
    Column("sync_sessions_count", BigInteger, nullable=False),
    # Cognito Identity attributes of the pool (migration 0002).
    Column("allow_unauthenticated", Boolean, nullable=False, server_default=false()),
    Column("allow_classic_flow", Boolean, nullable=False, server_default=false()),
    Column("developer_provider_name", String(128), nullable=True),
    Column("identity_attributes", Text, nullable=False, server_default="{}"),  # JSON
    Index("ix_identity_pools_account", "account_id", "identity_pool_id"),
)

datasets = Table(
    "datasets",
    metadata,
    Column("dataset_id", Integer, primary_key=True, autoincrement=True),
    Column("identity_pool_id", String(55), nullable=False),
    Column("identity_id", String(55), nullable=False),
    Column("name", String(128), nullable=False),
    Column("sync_count", BigInteger, nullable=False),
    Column("creation_date", Float, nullable=False),
    Column("last_modified_date", Float, nullable=False),
    Column("last_modified_by", _free_text(256), nullable=True),
    Column("data_storage", BigInteger, nullable=False),
    Column("num_records", BigInteger, nullable=False),
    # Set on a dataset moved here by an identity merge: the name it was merged into.
    Column("merged_into", String(128), nullable=True),
    UniqueConstraint("identity_pool_id", "identity_id", "name", name="uq_datasets_name"),
)

records = Table(
    "records",
    metadata,
    Column(
        "dataset_id",
        Integer,
        ForeignKey("datasets.dataset_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("key", _free_text(1024), nullable=False),
    Column("value", Text, nullable=True),  # NULL: a tombstone left by `remove`
    Column("sync_count", BigInteger, nullable=False),
    Column("last_modified_date", Float, nullable=False),
    Column("last_modified_by", _free_text(256), nullable=True),
    Column("device_last_modified_date", Float, nullable=True),
    # The record as the API sends it, rendered when written (migration 0004 filled it in
    # for older rows); ListRecords sends these bytes as they are.
    Column("document", LargeBinary, nullable=True),
    PrimaryKeyConstraint("dataset_id", "key", name="pk_records"),
    Index("ix_records_delta", "dataset_id", "sync_count", "key"),
)

# One row per (pool, identity, dataset name) ever deleted: the sync count the dataset
# had when it went, so later ListRecords calls can tell old clients to wipe their copy.
dataset_deletions = Table(
    "dataset_deletions",
    metadata,
    Column("identity_pool_id", String(55), nullable=False),
    Column("identity_id", String(55), nullable=False),
    Column("name", String(128), nullable=False),
    Column("deleted_sync_count", BigInteger, nullable=False),
    Column("deleted_at", Float, nullable=False),
    PrimaryKeyConstraint("identity_pool_id", "identity_id", "name", name="pk_dataset_deletions"),
)

# Cognito Identity: identities of a pool, and the logins linked to them.
identities = Table(
    "identities",
    metadata,
    Column("identity_id", String(55), primary_key=True),
    Column("identity_pool_id", String(55), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_modified_at", Float, nullable=False),
    Index("ix_identities_pool", "identity_pool_id", "identity_id"),
)

identity_logins = Table(
    "identity_logins",
    metadata,
    Column("identity_pool_id", String(55), nullable=False),
    Column("provider", _free_text(128), nullable=False),
    Column("subject", _free_text(1024), nullable=False),
    Column("identity_id", String(55), nullable=False),
    Column("created_at", Float, nullable=False),
    PrimaryKeyConstraint("identity_pool_id", "provider", "subject", name="pk_identity_logins"),
    Index("ix_identity_logins_identity", "identity_id"),
)

# Push sync: devices registered by identities, and their dataset subscriptions.
devices = Table(
    "devices",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("identity_pool_id", String(55), nullable=False),
    Column("identity_id", String(55), nullable=False),
    Column("platform", String(16), nullable=False),
    Column("token", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("endpoint_arn", String(1024), nullable=True),  # SNS platform endpoint (0003)
    Index("ix_devices_identity", "identity_pool_id", "identity_id"),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("identity_pool_id", String(55), nullable=False),
    Column("identity_id", String(55), nullable=False),
    Column("dataset_name", String(128), nullable=False),
    Column("device_id", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    PrimaryKeyConstraint(
        "identity_pool_id", "identity_id", "dataset_name", "device_id", name="pk_subscriptions"
    ),
)

# Server-wide key material shared by all replicas (the JWT signing key, sealed).
server_keys = Table(
    "server_keys",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("sealed", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
)

# The transactional outbox: side effects written with the data change that causes them,
# delivered at least once by a dispatcher (migration 0003).
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # "stream" or "push"
    Column("destination", String(256), nullable=False),  # stream name, or device id
    Column("ordering_key", String(256), nullable=False),  # pool/identity/dataset
    Column("payload", Text, nullable=False),  # JSON
    Column("created_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Float, nullable=False),
    Column("status", String(16), nullable=False),  # pending, done, dead
    Column("last_error", Text, nullable=True),
    Index("ix_outbox_pending", "status", "id"),
)

bulk_publish_jobs = Table(
    "bulk_publish_jobs",
    metadata,
    Column("identity_pool_id", String(55), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("started_at", Float, nullable=True),
    Column("completed_at", Float, nullable=True),
    Column("failure_message", Text, nullable=True),
    Column("published", BigInteger, nullable=False),  # datasets enqueued so far
    Column("cursor", Integer, nullable=False),  # the last dataset id enqueued
    Column("last_entry", Integer, nullable=True),  # the job's last outbox entry
    Column("owner", String(64), nullable=True),  # the process running it
    Column("heartbeat_at", Float, nullable=True),
)

# Leases: which process runs a singleton job (the outbox dispatcher), renewed while alive.
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("owner", String(64), nullable=False),
    Column("expires_at", Float, nullable=False),
)

# Cognito Identity access settings of a pool (migration 0006): the IAM roles and role
# mappings of SetIdentityPoolRoles, the principal tag maps of SetPrincipalTagAttributeMap,
# and identities left with no login by UnlinkIdentity, which no one may act as any more.
identity_pool_roles = Table(
    "identity_pool_roles",
    metadata,
    Column("identity_pool_id", String(55), primary_key=True),
    Column("roles", Text, nullable=False),  # JSON object: "authenticated"/"unauthenticated" -> ARN
    Column("role_mappings", Text, nullable=False),  # JSON object: provider -> RoleMapping
    Column("updated_at", Float, nullable=False),
)

principal_tag_maps = Table(
    "principal_tag_maps",
    metadata,
    Column("identity_pool_id", String(55), nullable=False),
    Column("provider", _free_text(128), nullable=False),
    Column("use_defaults", Boolean, nullable=False),
    Column("principal_tags", Text, nullable=False),  # JSON object: tag -> claim
    Column("updated_at", Float, nullable=False),
    PrimaryKeyConstraint("identity_pool_id", "provider", name="pk_principal_tag_maps"),
)

inaccessible_identities = Table(
    "inaccessible_identities",
    metadata,
    Column("identity_id", String(55), primary_key=True),
    Column("identity_pool_id", String(55), nullable=False),
    Column("since", Float, nullable=False),
    Index("ix_inaccessible_identities_pool", "identity_pool_id"),
)
