"""The anti-parrot guardrail (DOMAIN §4.7): the checks, kept apart from the tests that run them,
so a test can also prove that the checks catch a bad prompt."""
from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass, field

PROMPT_SUFFIXES = ("_PROMPT", "_SCHEMA", "_PROTOCOL", "_FORMAT", "_CONTEXT")

# Every token that leaked from a prompt into a real reply. Add each new production leak here:
# the list is the audit trail.
LEAKED_TOKENS = ("jsmith", "DC01", "ADSync", "Dnscache", "google.com", "Outlook keeps", "Teams drops")

MARKER_NAMES = (
    "QUESTIONS", "ACTIONS", "SUGGEST_FIX", "FIX_OUTCOME", "PROMOTE", "FORK",
    "TREE_UPDATE", "STEPS_UPDATE", "INTAKE_FORM", "METADATA", "DELTA",
)
MARKER_BLOCK_RE = re.compile(
    r"(?:^|\n)\[(" + "|".join(MARKER_NAMES) + r")\]\s*\n(\s*[\[{][\s\S]*?)\s*\n\[/\1\]"
)
# A quoted value: followed by , ] or }. Keys are followed by ":" and may be literal.
QUOTED_VALUE_RE = re.compile(r'"([^"<>][^"<>]{2,}?)"\s*(?=[,\]\}])')

ALLOWED_VALUES = frozenset({
    "text", "password", "select", "boolean", "number", "textarea", "multi_text",
    "powershell", "bash", "cmd", "python",
    "question", "diagnostic_check", "user_note", "ai_synthesis",
    "decision", "action", "solution", "procedure_step", "section_header", "procedure_end",
    "step", "warning",
})
_PLACEHOLDER_PARTS = ("...", "snake_case", "kebab-case", "<", "TODO")
_PIPE_ENUM_RE = re.compile(r"^[A-Za-z0-9_-]+(?:\|[A-Za-z0-9_-]+)+$")
_DOTS_AND_UNDERSCORES_RE = re.compile(r"^[._]+$")


@dataclass(frozen=True)
class Violation:
    marker: str
    value: str


def is_placeholder(value: str) -> bool:
    return (
        any(part in value for part in _PLACEHOLDER_PARTS)
        or bool(_PIPE_ENUM_RE.match(value))
        or bool(_DOTS_AND_UNDERSCORES_RE.match(value))
        or value in ALLOWED_VALUES
    )


def find_leaked_tokens(text: str) -> list[str]:
    lowered = text.lower()
    return [token for token in LEAKED_TOKENS if token.lower() in lowered]


@dataclass
class BlockReport:
    violations: list[Violation] = field(default_factory=list)
    markers_checked: list[str] = field(default_factory=list)  # one entry per block found
    values_checked: int = 0


def check_marker_blocks(text: str) -> BlockReport:
    """Test 2 of §4.7: every quoted value inside a marker-shaped block must be a placeholder."""
    report = BlockReport()
    for block in MARKER_BLOCK_RE.finditer(text):
        marker, body = block.group(1), block.group(2)
        report.markers_checked.append(marker)
        for match in QUOTED_VALUE_RE.finditer(body):
            report.values_checked += 1
            if not is_placeholder(match.group(1)):
                report.violations.append(Violation(marker, match.group(1)))
    return report


def collect_prompt_constants(package_name: str = "core.prompts") -> dict[str, str]:
    """Every UPPERCASE str constant with a prompt suffix in every importable module of the package,
    keyed "module.NAME". Modules that fail to import are skipped (§4.7)."""
    package = importlib.import_module(package_name)
    modules = [package]
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
        try:
            modules.append(importlib.import_module(info.name))
        except Exception:  # a broken module must not hide the others from the guardrail
            continue
    constants: dict[str, str] = {}
    for module in modules:
        for name, value in vars(module).items():
            if name.isupper() and name.endswith(PROMPT_SUFFIXES) and isinstance(value, str):
                constants[f"{module.__name__}.{name}"] = value
    return constants
