"""Server-side functions of the PostgreSQL schema: UpdateRecords in one round trip.

``cogsync_update_records`` does on the server what ``SyncService.update_records`` does
step by step on SQLite, in one statement (so one round trip, no BEGIN or COMMIT): lock or
create the dataset (the per-identity limit under an advisory lock, a re-created dataset
counting on past its deletion), refuse a conflict or a limit with the same message as the
Python rules (SQLSTATE ``CS409``, ``CS413``; ``CS404`` for another account's or a missing
pool), write the records with their documents (the sync count spliced between the head and
the tail Python rendered), save the dataset and announce the change on the live channel
(if some replica listens to it).
It returns the new sync count; or -1, having changed nothing, when the change has side
effects for the outbox (streams enabled, or push subscribers other than the writer): then
the caller runs the step-by-step transaction, which writes them.

Strings cross in text_codec's form (psycopg's adapters encode and decode them); the
conflict message quotes a key in that form (the caller decodes it). Installed by migration
0008, and by ``engine._create`` on a new database.
"""

from __future__ import annotations

from typing import Any

from cogsync.store import text_codec

UPDATE_RECORDS = r"""
CREATE OR REPLACE FUNCTION cogsync_update_records(
    p_pool text, p_identity text, p_name text, p_account text,
    p_now float8, p_by text, p_device text, p_lock bigint,
    p_keys text[], p_values text[], p_counts int8[], p_dates float8[],
    p_heads bytea[], p_tails bytea[], p_sizes int8[],
    p_max_datasets int8, p_max_bytes int8, p_max_records int8,
    p_channel text
) RETURNS int8 LANGUAGE plpgsql AS $fn$
DECLARE
    v_id int;
    v_count int8;
    v_storage int8;
    v_live int8;
    v_account text;
    v_streams text;
    v_push text;
    v_deleted int8;
    v_bad int8;
    v_old_bytes int8;
    v_old_live int8;
    v_new_bytes int8;
    v_new_live int8;
    v_current int8;
BEGIN
    SELECT d.dataset_id, d.sync_count, d.data_storage, d.num_records,
           p.account_id, p.cognito_streams, p.push_sync
      INTO v_id, v_count, v_storage, v_live, v_account, v_streams, v_push
      FROM datasets d JOIN identity_pools p ON p.identity_pool_id = d.identity_pool_id
     WHERE d.identity_pool_id = p_pool AND d.identity_id = p_identity AND d.name = p_name
       FOR UPDATE OF d;
    IF NOT FOUND THEN
        SELECT account_id, cognito_streams, push_sync INTO v_account, v_streams, v_push
          FROM identity_pools WHERE identity_pool_id = p_pool;
        IF NOT FOUND THEN
            v_account := NULL;
        END IF;
    END IF;
    IF v_account IS DISTINCT FROM p_account THEN
        RAISE EXCEPTION USING ERRCODE = 'CS404',
            MESSAGE = format('IdentityPool ''%s'' not found', p_pool);
    END IF;

    -- Side effects for the outbox: written by the step-by-step path (nothing done yet).
    -- (Nested IFs: a condition with a subquery would be planned again at every call.)
    IF cardinality(p_keys) > 0 THEN
        IF v_streams IS NOT NULL AND (v_streams::jsonb ->> 'StreamingStatus') = 'ENABLED' THEN
            RETURN -1;
        END IF;
        IF v_push IS NOT NULL THEN
            PERFORM 1 FROM subscriptions s JOIN devices dv ON dv.device_id = s.device_id
              WHERE s.identity_pool_id = p_pool AND s.identity_id = p_identity
                AND s.dataset_name = p_name AND dv.enabled
                AND dv.device_id IS DISTINCT FROM p_device;
            IF FOUND THEN
                RETURN -1;
            END IF;
        END IF;
    END IF;

    IF v_id IS NULL THEN
        -- Creation is serialized per identity: the per-identity limit needs it.
        PERFORM pg_advisory_xact_lock(p_lock);
        SELECT dataset_id, sync_count, data_storage, num_records
          INTO v_id, v_count, v_storage, v_live
          FROM datasets
         WHERE identity_pool_id = p_pool AND identity_id = p_identity AND name = p_name
           FOR UPDATE;
        IF NOT FOUND THEN
            IF (SELECT count(*) FROM datasets
                 WHERE identity_pool_id = p_pool AND identity_id = p_identity)
               >= p_max_datasets THEN
                RAISE EXCEPTION USING ERRCODE = 'CS413', MESSAGE = format(
                    'Identity ''%s'' already has %s datasets, the most allowed',
                    p_identity, p_max_datasets);
            END IF;
            SELECT deleted_sync_count INTO v_deleted FROM dataset_deletions
             WHERE identity_pool_id = p_pool AND identity_id = p_identity AND name = p_name;
            -- A re-created dataset counts on past the deleted one (plus one).
            v_count := CASE WHEN v_deleted IS NULL THEN 0 ELSE v_deleted + 1 END;
            INSERT INTO datasets (identity_pool_id, identity_id, name, sync_count,
                                  creation_date, last_modified_date, last_modified_by,
                                  data_storage, num_records)
                 VALUES (p_pool, p_identity, p_name, v_count, p_now, p_now, p_by, 0, 0)
              RETURNING dataset_id INTO v_id;
            v_storage := 0;
            v_live := 0;
        END IF;
    END IF;
    IF cardinality(p_keys) = 0 THEN
        RETURN v_count;
    END IF;

    SELECT min(p.ord) FILTER (WHERE coalesce(r.sync_count, 0) <> p.count),
           coalesce(sum(OLD_KEY_BYTES + OLD_VALUE_BYTES), 0),
           count(r.value), coalesce(sum(p.size), 0), count(p.value)
      INTO v_bad, v_old_bytes, v_old_live, v_new_bytes, v_new_live
      FROM unnest(p_keys, p_counts, p_values, p_sizes) WITH ORDINALITY
           AS p(key, count, value, size, ord)
      -- One primary-key lookup per patch (LIMIT keeps the planner from reading the
      -- dataset's every record for a hash join).
      LEFT JOIN LATERAL (
          SELECT s.key, s.value, s.sync_count FROM records s
           WHERE s.dataset_id = v_id AND s.key = p.key LIMIT 1
      ) r ON true;
    IF v_bad IS NOT NULL THEN
        SELECT sync_count INTO v_current FROM records
         WHERE dataset_id = v_id AND key = p_keys[v_bad];
        RAISE EXCEPTION USING ERRCODE = 'CS409', MESSAGE = format(
            'Current SyncCount for: %s is: %s not: %s',
            p_keys[v_bad], coalesce(v_current, 0), p_counts[v_bad]);
    END IF;
    v_new_bytes := v_storage - v_old_bytes + v_new_bytes;
    v_new_live := v_live - v_old_live + v_new_live;
    IF v_new_bytes > p_max_bytes THEN
        RAISE EXCEPTION USING ERRCODE = 'CS413', MESSAGE = format(
            'Dataset ''%s'' would hold %s bytes; the limit is %s',
            p_name, v_new_bytes, p_max_bytes);
    END IF;
    IF v_new_live > p_max_records AND v_new_live > v_live THEN
        RAISE EXCEPTION USING ERRCODE = 'CS413', MESSAGE = format(
            'Dataset ''%s'' would hold %s records; the limit is %s',
            p_name, v_new_live, p_max_records);
    END IF;

    v_count := v_count + 1;
    INSERT INTO records AS r (dataset_id, key, value, sync_count, last_modified_date,
                              last_modified_by, device_last_modified_date, document)
         SELECT v_id, p.key, p.value, v_count, p_now, p_by, p.date,
                p.head || convert_to(v_count::text, 'UTF8') || p.tail
           FROM unnest(p_keys, p_values, p_dates, p_heads, p_tails)
                AS p(key, value, date, head, tail)
    ON CONFLICT (dataset_id, key) DO UPDATE
        SET value = excluded.value, sync_count = excluded.sync_count,
            last_modified_date = excluded.last_modified_date,
            last_modified_by = excluded.last_modified_by,
            device_last_modified_date = excluded.device_last_modified_date,
            document = excluded.document;
    UPDATE datasets
       SET sync_count = v_count, last_modified_date = p_now, last_modified_by = p_by,
           data_storage = v_new_bytes, num_records = v_new_live
     WHERE dataset_id = v_id;
    -- Announced only where a replica listens (a NOTIFY serializes notifying commits).
    IF p_channel IS NOT NULL THEN
        PERFORM 1 FROM live_listeners WHERE channel = p_channel LIMIT 1;
        IF FOUND THEN
            PERFORM pg_notify(p_channel, json_build_object(
                'identity_pool_id', p_pool, 'identity_id', p_identity, 'dataset', p_name,
                'sync_count', v_count, 'device_id', p_device, 'outbox_entries', 0)::text);
        END IF;
    END IF;
    RETURN v_count;
END
$fn$
"""

# Stored text is in text_codec's form: its sizes count each escape pair as one byte.
UPDATE_RECORDS = UPDATE_RECORDS.replace(
    "OLD_KEY_BYTES", text_codec.octet_length_sql("r.key")
).replace("OLD_VALUE_BYTES", text_codec.octet_length_sql("r.value"))

DROP = "DROP FUNCTION IF EXISTS cogsync_update_records"
FUNCTIONS = (UPDATE_RECORDS,)


def install(connection: Any) -> None:
    """Creates (or replaces) the functions, in the transaction of ``connection`` (a
    SQLAlchemy Connection): on the driver's cursor, so that ``%`` stays as written."""
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        for ddl in FUNCTIONS:
            cursor.execute(ddl)
    finally:
        cursor.close()
