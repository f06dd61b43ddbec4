"""The dependency rule: core/ is plain Python (DESIGN §1). It imports nothing of ours but core,
and no platform, HTTP, model-SDK or SQL library."""
from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "core"
FORBIDDEN = ("slack_bolt", "slack_sdk", "botbuilder", "botframework", "aiohttp", "anthropic", "httpx", "httpx2",
             "sqlalchemy", "asyncpg", "alembic", "storage", "adapters", "bot", "prometheus_client", "PIL", "msal")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_core_imports_no_platform_http_or_sql_library():
    offenders = {}
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 10, "core/ should hold the session core"
    for path in files:
        bad = sorted(_imports(path) & set(FORBIDDEN))
        if bad:
            offenders[str(path.relative_to(CORE.parent))] = bad
    assert offenders == {}


def test_the_rule_itself_catches_a_forbidden_import(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("from sqlalchemy import select\nimport slack_sdk.web\n")
    assert _imports(sample) & set(FORBIDDEN) == {"sqlalchemy", "slack_sdk"}
