"""Layers import one direction: domain at the bottom, then the store, the services, and
the integrations that consume the sync service's changes; the HTTP edge on top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.server import independent_of_backend

pytestmark = independent_of_backend

PACKAGE = Path(__file__).resolve().parent.parent / "cogsync"

# package (or module) -> parts of cogsync it must never import
FORBIDDEN = {
    "domain": {"store", "sync", "identity", "integrations", "auth", "protocol", "app", "http",
               "runtime"},
    "store": {"sync", "identity", "integrations", "auth", "protocol", "app", "http",
              "runtime"},
    "sync": {"integrations", "identity", "app", "http", "runtime", "http_live"},
    "integrations": {"app", "http", "runtime", "http_live"},
    "console": {"app", "http", "runtime", "http_live"},  # the edge mounts it, not back
    # What every layer may count and log with: below them all.
    "metrics": {"domain", "store", "sync", "identity", "integrations", "auth", "protocol",
                "app", "http", "runtime", "console", "config"},
    "logs": {"domain", "store", "sync", "identity", "integrations", "auth", "protocol", "app",
             "http", "runtime", "console", "config"},
    "request_log": {"store", "sync", "identity", "integrations", "protocol", "app", "http",
                    "runtime", "console"},
}


def imported_parts(path: Path) -> set[str]:
    parts: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        parts.update(name.split(".")[1] for name in names if name.startswith("cogsync."))
    return parts


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_import_points_upward(layer: str) -> None:
    files = [PACKAGE / f"{layer}.py"] if (PACKAGE / f"{layer}.py").exists() else sorted(
        (PACKAGE / layer).rglob("*.py"))
    assert files
    wrong = {f"{path.relative_to(PACKAGE)} imports cogsync.{part}"
             for path in files for part in imported_parts(path) & FORBIDDEN[layer]}
    assert not wrong, sorted(wrong)
