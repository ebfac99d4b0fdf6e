"""``cogsync import`` from a second cogsync server, over the wire: a generated pool of
thousands of identities with merges, tombstones, deleted datasets and multi-page
datasets; killed midway and resumed; run again without rewriting anything; caught up
with --since; devices that synced against the source go on with a delta sync."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.generated_pool import DEVELOPER, write_generated_pool
from tests.identity_helpers import GCM_APP
from tests.server import Credentials, ServerProcess, wait_until
from tests.transfer_helpers import (
    cogsync,
    cogsync_here,
    one_error_line,
    read_lines,
    source_env,
    target_args,
)

IDENTITIES = int(os.environ.get("COGSYNC_TEST_IMPORT_IDENTITIES", "1200"))
PAGE = "64"  # ListRecords MaxResults of the importer: the 300-record dataset takes 5 pages


class Source:
    """A source server with a generated pool, and helpers that write through the API."""

    def __init__(self, server: ServerProcess, pool_id: str, identities: list[str]):
        self.server = server
        self.pool_id = pool_id
        self.generated = identities
        self.sync = server.client()
        self.identity = server.client("cognito-identity")

    def developer_identity(self, user: str) -> str:
        return str(self.identity.get_open_id_token_for_developer_identity(
            IdentityPoolId=self.pool_id, Logins={DEVELOPER: user})["IdentityId"])

    def put(self, identity_id: str, dataset: str, values: dict[str, str | None],
            client: Any = None, device: str | None = None) -> int:
        """Writes values (None removes) with the right sync counts; the new count."""
        client = client or self.sync
        where = dict(IdentityPoolId=self.pool_id, IdentityId=identity_id, DatasetName=dataset)
        listing = client.list_records(**where)
        counts = {r["Key"]: r["SyncCount"] for r in listing["Records"]}
        patches = [
            {"Op": "remove", "Key": k, "SyncCount": counts.get(k, 0)} if v is None
            else {"Op": "replace", "Key": k, "Value": v, "SyncCount": counts.get(k, 0)}
            for k, v in values.items()
        ]
        extra = {"DeviceId": device} if device else {}
        written = client.update_records(**where, SyncSessionToken=listing["SyncSessionToken"],
                                        RecordPatches=patches, **extra)
        return int(written["Records"][0]["SyncCount"])

    def delete(self, identity_id: str, dataset: str) -> None:
        self.sync.delete_dataset(IdentityPoolId=self.pool_id, IdentityId=identity_id,
                                 DatasetName=dataset)


def prepare_source(server: ServerProcess, folder: Path, identities: int) -> Source:
    """The running server gets a generated pool (restored into its database) in an account
    of its own, whose key the tests use."""
    made = cogsync_here("accounts", "create", "--json", *target_args(server), env=server.env)
    created = json.loads(made.stdout)
    server.credentials = Credentials(created["AccessKeyId"], created["SecretAccessKey"])
    generated = write_generated_pool(folder / "generated.jsonl", created["AccountId"],
                                     identities)
    restored = cogsync_here("restore", str(folder / "generated.jsonl"), *target_args(server))
    assert restored.returncode == 0, restored.stderr
    return Source(server, generated.pool_id, generated.identities)


def new_target(folder: Path) -> ServerProcess:
    """A target database with an account, and no server running on it."""
    target = ServerProcess(folder)
    made = cogsync_here("accounts", "create", "--json", "--init", *target_args(target))
    assert made.returncode == 0, made.stderr
    return target


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    """A source of 40 generated identities, not changed by the tests that share it."""
    folder = tmp_path_factory.mktemp("small-source")
    server = ServerProcess(folder / "server").start()
    try:
        yield prepare_source(server, folder, 40)
    finally:
        server.stop()


def run_import(source: Source, target: ServerProcess, *extra: str,
               env: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
    result = cogsync_here("import", "--from", source.server.endpoint, "--pool",
                          source.pool_id, "--page-size", PAGE, "--json", "--no-progress",
                          *extra, *target_args(target),
                          env={**source_env(source.server), **(env or {})})
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout), result.stderr


def pool_export(server: ServerProcess, pool_id: str, path: Path) -> list[dict[str, Any]]:
    result = cogsync_here("export", str(path), "--pool", pool_id, *target_args(server))
    assert result.returncode == 0, result.stderr
    return read_lines(path)


SETTINGS = ("name", "events", "push_sync", "cognito_streams", "allow_unauthenticated",
            "allow_classic_flow", "developer_provider_name", "identity_attributes")


def comparable(lines: list[dict[str, Any]]) -> list[str]:
    """What an import carries: the pool's settings, roles and principal tag maps,
    identities, developer logins (not when they were linked), datasets with their
    records, in file order."""
    kept = []
    for line in lines:
        kind = line.get("type")
        if kind == "pool":
            kept.append(json.dumps({k: line[k] for k in SETTINGS}, sort_keys=True))
        elif kind in ("pool_roles", "principal_tag_map"):
            kept.append(json.dumps({**line, "updated_at": None}, sort_keys=True))
        elif kind in ("identity", "dataset", "record"):
            kept.append(json.dumps(line, sort_keys=True))
        elif kind == "login":
            kept.append(json.dumps({**line, "created_at": None}, sort_keys=True))
    return kept


def deletions(lines: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    return {(line["identity_id"], line["name"]): line["deleted_sync_count"]
            for line in lines if line.get("type") == "dataset_deletion"}


def assert_same_pool(source: Source, target: ServerProcess, folder: Path) -> None:
    here = comparable(pool_export(source.server, source.pool_id, folder / "source.jsonl"))
    there = comparable(pool_export(target, source.pool_id, folder / "target.jsonl"))
    assert len(here) == len(there)
    assert here == there


def done_in_state(state: Path) -> int:
    try:
        with sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute("SELECT count(*) FROM identities WHERE done_pass >= 1")
                       .fetchone()[0])
    except sqlite3.Error:
        return 0


def test_import_killed_resumed_idempotent_then_caught_up(
        make_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    source = prepare_source(make_server(), tmp_path, IDENTITIES)
    target = make_server()
    pool = source.pool_id

    # --- the special cases, written through the API -----------------------------------
    source.identity.update_identity_pool(
        IdentityPoolId=pool, IdentityPoolName="generated", AllowUnauthenticatedIdentities=True,
        DeveloperProviderName=DEVELOPER, IdentityPoolTags={"team": "games"},
        SupportedLoginProviders={"accounts.example.com": "client-1"})
    source.sync.set_identity_pool_configuration(
        IdentityPoolId=pool, PushSync={"ApplicationArns": [GCM_APP]},
        CognitoStreams={"StreamName": "changes", "StreamingStatus": "DISABLED"})
    source.identity.set_identity_pool_roles(
        IdentityPoolId=pool,
        Roles={"authenticated": "arn:aws:iam::123456789012:role/Auth",
               "unauthenticated": "arn:aws:iam::123456789012:role/Unauth"},
        RoleMappings={"accounts.example.com": {"Type": "Token",
                                               "AmbiguousRoleResolution": "AuthenticatedRole"}})
    source.identity.set_principal_tag_attribute_map(
        IdentityPoolId=pool, IdentityProviderName="accounts.example.com", UseDefaults=False,
        PrincipalTags={"team": "aud"})
    source.sync.set_cognito_events(IdentityPoolId=pool, Events={
        "SyncTrigger": "arn:aws:lambda:us-east-1:123456789012:function:on-sync"})
    orphan = "us-east-1:0badc0de-0000-4000-8000-000000000001"  # data, no identity record
    source.put(orphan, "loose", {"k": "v"})
    big = source.developer_identity("big-user")
    for part in range(3):
        source.put(big, "big", {f"key{part}-{i:03d}": f"value {i}" for i in range(100)})
    source.put(big, "big", {"key0-000": None, "key1-050": None})  # tombstones
    leaver = source.developer_identity("leaver")
    source.put(leaver, "kept", {"a": "1"})
    source.put(leaver, "gone", {"a": "1"})
    gone_count = source.put(leaver, "gone", {"b": "2"})  # a device synced "gone" at 2
    source.delete(leaver, "gone")
    source.put(leaver, "again", {"a": "1"})
    again_count = source.put(leaver, "again", {"a": "2"})  # a device synced "again" at 2
    source.delete(leaver, "again")
    source.put(leaver, "again", {"fresh": "yes"})  # made again: a new dataset of the name
    merged_a, merged_b = source.developer_identity("merge-a"), source.developer_identity("merge-b")
    source.put(merged_a, "settings", {"color": "red"})
    source.put(merged_b, "settings", {"color": "blue"})
    source.put(merged_b, "extra", {"x": "1"})
    source.identity.merge_developer_identities(
        SourceUserIdentifier="merge-b", DestinationUserIdentifier="merge-a",
        DeveloperProviderName=DEVELOPER, IdentityPoolId=pool)
    later_a, later_b = source.developer_identity("merge-c"), source.developer_identity("merge-d")
    source.put(later_a, "notes", {"n": "c"})
    source.put(later_b, "notes", {"n": "d"})
    phone = source.developer_identity("phone")
    source.put(phone, "prefs", {"theme": "dark", "lang": "en"}, device="phone-1")
    phone_count = source.put(phone, "prefs", {"theme": "light"}, device="phone-1")
    phone_records = {r["Key"]: r["SyncCount"] for r in source.sync.list_records(
        IdentityPoolId=pool, IdentityId=phone, DatasetName="prefs")["Records"]}

    # --- killed midway, then resumed --------------------------------------------------
    state = target.data_dir / f"import-{pool.replace(':', '_')}.state"
    command = [sys.executable, "-m", "cogsync", "import", "--from", source.server.endpoint,
               "--pool", pool, "--page-size", PAGE, "--concurrency", "2", "--no-progress",
               *target_args(target)]
    first = subprocess.Popen(command, env={**os.environ, **source_env(source.server)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert wait_until(lambda: done_in_state(state) >= IDENTITIES // 4 or first.poll() is not None,
                      timeout=300, interval=0.02)
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    assert first.returncode == -signal.SIGKILL, first.stderr.read() if first.stderr else ""
    done_before = done_in_state(state)
    listed_total = IDENTITIES + 6  # the generated ones, the developer ones left after a merge
    assert 0 < done_before < listed_total

    status, report, stderr = run_import(source, target, "--concurrency", "4")
    assert status == 0, stderr
    assert report["complete"] and report["pass"] == 1
    ids = report["identities"]
    assert ids["listed"] == listed_total
    assert ids["already_imported"] == done_before
    assert ids["imported"] == listed_total - done_before
    assert report["logins"]["carried"] >= 6  # the resumed part's developer users at least
    assert any("Sync Trigger" in note for note in report["notes"])

    # Identities that ListIdentities cannot list are imported from a file of ids.
    listed = tmp_path / "identities.txt"
    listed.write_text(f"# more identities\n{orphan}\n{source.generated[0]}\n")
    status, by_file, stderr = run_import(source, target, "--identities", str(listed),
                                         "--state", str(tmp_path / "by-file.state"))
    assert status == 0, stderr
    assert by_file["identities"]["imported"] == 2
    assert by_file["datasets"]["written"] == 1 and by_file["records"]["written"] == 1
    assert_same_pool(source, target, tmp_path)
    source_deletions = deletions(read_lines(tmp_path / "source.jsonl"))
    target_deletions = deletions(read_lines(tmp_path / "target.jsonl"))
    assert source_deletions == {(leaver, "gone"): gone_count, (leaver, "again"): again_count}
    # A dataset deleted and made again is known by its present one; one deleted for good
    # leaves nothing to see (clients learn of it from DatasetExists: false).
    assert target_deletions == {(leaver, "again"): again_count}

    on_target = target.client()  # the import made the pool in the target's first account
    where = dict(IdentityPoolId=pool, IdentityId=leaver)
    again = on_target.list_records(**where, DatasetName="again", LastSyncCount=again_count)
    assert again["DatasetDeletedAfterRequestedSyncCount"] is True
    gone = on_target.list_records(**where, DatasetName="gone", LastSyncCount=gone_count)
    assert gone["DatasetExists"] is False and gone["Records"] == []
    settings = on_target.list_records(IdentityPoolId=pool, IdentityId=merged_a,
                                      DatasetName="settings")
    assert settings["MergedDatasetNames"] == [f"settings.{merged_b}"]
    big_page = on_target.list_records(IdentityPoolId=pool, IdentityId=big, DatasetName="big",
                                      LastSyncCount=3)
    assert sorted((r["Key"], "Value" in r) for r in big_page["Records"]) == [
        ("key0-000", False), ("key1-050", False)]

    # --- the source changes; --since catches up ---------------------------------------
    source.put(phone, "prefs", {"lang": "fr"}, device="tablet-1")
    victim = source.generated[3]
    victim_count = int(source.sync.list_records(IdentityPoolId=pool, IdentityId=victim,
                                                DatasetName="profile")["DatasetSyncCount"])
    source.delete(victim, "profile")
    newcomer = source.developer_identity("newcomer")
    source.put(newcomer, "fresh", {"hello": "world"})
    source.identity.merge_developer_identities(
        SourceUserIdentifier="merge-d", DestinationUserIdentifier="merge-c",
        DeveloperProviderName=DEVELOPER, IdentityPoolId=pool)

    status, report, stderr = run_import(source, target, "--since", "--prune")
    assert status == 0, stderr
    assert report["pass"] == 2 and report["complete"]
    assert report["identities"]["gone_from_source"] == 1  # merge-d, merged into merge-c
    assert report["identities"]["pruned"] == 1
    assert report["datasets"]["deleted"] == 1 and report["deletions_recorded"] == 1
    # Unchanged datasets are passed over without reading their records.
    assert report["datasets"]["unchanged"] > IDENTITIES - 10
    assert report["records"]["written"] < 10
    assert_same_pool(source, target, tmp_path)
    assert deletions(read_lines(tmp_path / "target.jsonl")) == {
        (leaver, "again"): again_count, (victim, "profile"): victim_count}
    notes = on_target.list_records(IdentityPoolId=pool, IdentityId=later_a, DatasetName="notes")
    assert notes["MergedDatasetNames"] == [f"notes.{later_b}"]

    # --- the phone goes on against the target with a delta sync -----------------------
    delta = on_target.list_records(IdentityPoolId=pool, IdentityId=phone, DatasetName="prefs",
                                   LastSyncCount=phone_count)
    assert [(r["Key"], r["Value"]) for r in delta["Records"]] == [("lang", "fr")]
    assert delta["DatasetSyncCount"] == phone_count + 1
    written = on_target.update_records(
        IdentityPoolId=pool, IdentityId=phone, DatasetName="prefs", DeviceId="phone-1",
        SyncSessionToken=delta["SyncSessionToken"],
        RecordPatches=[{"Op": "replace", "Key": "theme", "Value": "blue",
                        "SyncCount": phone_records["theme"]}])
    assert written["Records"][0]["SyncCount"] == phone_count + 2
    removed = on_target.list_records(IdentityPoolId=pool, IdentityId=victim,
                                     DatasetName="profile", LastSyncCount=victim_count)
    assert removed["DatasetDeletedAfterRequestedSyncCount"] is True


def test_import_backs_off_when_throttled_and_resumes_after_ctrl_c(
        make_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    # 5 requests a second: the import takes seconds, so Ctrl-C comes while it runs
    source = prepare_source(make_server(env={"COGSYNC_RATE_LIMIT_POOL": "5"}), tmp_path, 30)
    target = new_target(tmp_path / "target")
    time.sleep(1.0)  # the pool's bucket refills after the writes of the set-up
    state = target.data_dir / f"import-{source.pool_id.replace(':', '_')}.state"
    first = subprocess.Popen(
        [sys.executable, "-m", "cogsync", "import", "--from", source.server.endpoint, "--pool",
         source.pool_id, "--concurrency", "1", "--json", "--no-progress",
         *target_args(target)],  # one at a time: still running when Ctrl-C comes
        env={**os.environ, **source_env(source.server)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    assert wait_until(lambda: done_in_state(state) >= 3 or first.poll() is not None,
                      timeout=120, interval=0.02)
    assert first.poll() is None, "the import finished before it could be interrupted"
    first.send_signal(signal.SIGINT)  # Ctrl-C
    out, err = first.communicate(timeout=120)
    assert first.returncode == 130, err
    stopped = json.loads(out)
    assert stopped["interrupted"] and not stopped["complete"]
    assert "run the same command again to resume" in err and "Traceback" not in err

    status, report, stderr = run_import(source, target, "--concurrency", "6")
    assert status == 0, stderr
    assert report["complete"]
    assert report["throttled"] > 0  # TooManyRequestsException, retried after a backoff
    assert report["seconds_waited"] > 0
    assert report["identities"]["already_imported"] >= 3
    assert report["identities"]["imported"] == 30 - report["identities"]["already_imported"]
    assert_same_pool(source, target, tmp_path)


def test_run_again_without_checkpoints_rewrites_nothing(small: Source, tmp_path: Path) -> None:
    source = small
    target = new_target(tmp_path / "target")
    status, first, stderr = run_import(source, target)
    assert status == 0, stderr
    assert first["records"]["written"] == 40 * 2 + 8 + 6 * 10  # profiles, tombstones, items
    assert first["records"]["tombstones_written"] == 8
    assert first["logins"]["carried"] == 14
    assert_same_pool(source, target, tmp_path)
    before = (tmp_path / "target.jsonl").read_bytes()

    # A finished import run again with its state: nothing to do.
    status, same, stderr = run_import(source, target)
    assert status == 0, stderr
    assert same["identities"]["already_imported"] == 40 and same["requests"] < 10

    # With a new state file every identity is looked at again, and nothing is rewritten.
    status, fresh, stderr = run_import(source, target, "--state", str(tmp_path / "new.state"))
    assert status == 0, stderr
    assert fresh["identities"]["imported"] == 40
    assert fresh["datasets"] == {"written": 0, "unchanged": 46, "deleted": 0, "skipped": 0,
                                 "merged": 0}
    assert fresh["records"]["written"] == 0 and fresh["deletions_recorded"] == 0
    assert fresh["pool_settings_written"] == 0
    assert pool_export(target, source.pool_id, tmp_path / "again.jsonl") == read_lines(
        tmp_path / "target.jsonl")
    assert (tmp_path / "again.jsonl").read_bytes() == before


def test_dry_run_writes_nothing(small: Source, tmp_path: Path) -> None:
    source = small
    target = new_target(tmp_path / "target")
    status, report, stderr = run_import(source, target, "--dry-run")
    assert status == 0, stderr
    assert report["dry_run"] and report["complete"]
    assert report["identities"]["imported"] == 40
    assert report["datasets"]["written"] == 46  # 40 profiles, 6 inventories
    assert report["records"]["written"] > 0
    found = cogsync_here("export", str(tmp_path / "x.jsonl"), "--pool", source.pool_id,
                         *target_args(target))
    assert found.returncode == 2 and "no identity pool" in found.stderr
    assert not list(target.data_dir.glob("import-*.state"))


def test_import_errors_are_one_line(small: Source, tmp_path: Path) -> None:
    target = new_target(tmp_path / "target")
    base = ["import", "--pool", small.pool_id, "--max-retries", "1", *target_args(target)]
    creds = source_env(small.server)

    def here(*args: str, env: dict[str, str] = creds) -> str:
        return one_error_line(cogsync_here(*args, env=env))

    assert "http://" in here(*base, "--from", "ftp://example")
    assert "cannot reach the source" in here(*base, "--from", "http://127.0.0.1:9")
    wrong = {**creds, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    # This one as the real command, in a process of its own.
    line = one_error_line(cogsync(*base, "--from", small.server.endpoint, env=wrong))
    assert "refused the credentials" in line
    unknown = "us-east-1:00000000-0000-4000-8000-000000000000"
    assert "has no identity pool" in here("import", "--pool", unknown, "--from",
                                          small.server.endpoint, *target_args(target))
    assert "no cogsync database" in here("import", "--from", small.server.endpoint, "--pool",
                                         small.pool_id, "--data-dir", str(tmp_path / "none"))
    assert "no identity pool" in here(*base, "--from", small.server.endpoint, "--into",
                                      "us-east-1:11111111-1111-4111-8111-111111111111")
    elsewhere = tmp_path / "other.state"
    done = cogsync_here(*base, "--from", small.server.endpoint,
                        "--state", str(elsewhere), "--json", env=creds)
    assert done.returncode == 0, done.stderr
    other = ["import", "--pool", small.pool_id, "--into", small.pool_id, "--max-retries", "1",
             *target_args(target)]
    assert "belongs to the import" in here(*other, "--from", "http://127.0.0.1:1",
                                           "--state", str(elsewhere))


@pytest.mark.parametrize("flag", ["--concurrency=0", "--page-size=2000", "--max-retries=-1"])
def test_import_flag_bounds(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    from cogsync.cli import build_parser

    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["import", "--from", "http://127.0.0.1:9", "--pool",
                                   "us-east-1:1", flag])
    assert stopped.value.code == 2
    assert flag.split("=")[0] in capsys.readouterr().err
