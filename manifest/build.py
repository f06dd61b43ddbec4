"""Render the Slack app manifest and build the Teams app package from the templates in this folder.

The templates (slack.yaml, teams/manifest.json) are the single source of truth: the constants below are
read from them at import time, so the commands, scopes and events the code relies on cannot drift from
what the manifests register.

Teams command menus: the 1.29 schema caps a command list at 12 commands and allows one list per scope
(three lists). The bot parses 14 commands, so each scope's menu leaves out the two that make no sense
there; every command still appears in at least one menu and typing any of them works everywhere:
  - team:      no `role` (admin setup, rare) and no `psa connect` (credentials belong in a 1:1 chat).
  - groupChat: no `seniors here` (escalation routes are channels) and no `psa connect`.
  - personal:  no `seniors here` (needs a channel) and no `role` (needs an @mention of another user).
"""

from __future__ import annotations

import ipaddress
import json
import re
import zipfile
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping
from urllib.parse import urlsplit

import yaml

MANIFEST_DIR = Path(__file__).resolve().parent
SLACK_TEMPLATE = MANIFEST_DIR / "slack.yaml"
TEAMS_DIR = MANIFEST_DIR / "teams"
TEAMS_TEMPLATE = TEAMS_DIR / "manifest.json"
TEAMS_ICON_FILES = ("color.png", "outline.png")

_BASE_URL = "{{BASE_URL}}"
_PLACEHOLDER = re.compile(r"\{\{[A-Z_]+\}\}")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
# The manifest schema's own semver pattern (no leading zeros, no pre-release tags).
_SEMVER = re.compile(r"^(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)$")
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# A zip entry's timestamp; fixed so the same inputs always produce byte-identical packages.
_ZIP_TIMESTAMP = (2020, 1, 1, 0, 0, 0)


def _load_slack_template() -> dict[str, Any]:
    return yaml.safe_load(SLACK_TEMPLATE.read_text(encoding="utf-8"))


def _load_teams_template() -> dict[str, Any]:
    return json.loads(TEAMS_TEMPLATE.read_text(encoding="utf-8"))


def _subcommands_from_usage_hint(hint: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in hint.split("|") if part.strip())


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


_slack = _load_slack_template()
_slash_commands = _slack["features"]["slash_commands"]

#: Slash commands registered with Slack, e.g. ("/flowpilot",).
SLACK_COMMANDS: tuple[str, ...] = tuple(c["command"] for c in _slash_commands)
#: Subcommands of /flowpilot, in the order of its usage hint ("seniors here" and "psa connect" are two words).
SLACK_SUBCOMMANDS: tuple[str, ...] = _subcommands_from_usage_hint(_slash_commands[0]["usage_hint"])
SLACK_BOT_SCOPES: tuple[str, ...] = tuple(_slack["oauth_config"]["scopes"]["bot"])
SLACK_BOT_EVENTS: tuple[str, ...] = tuple(_slack["settings"]["event_subscriptions"]["bot_events"])

_teams_bot = _load_teams_template()["bots"][0]

#: Command menu per Teams scope ("team", "groupChat", "personal"), as shown after @FlowPilot.
TEAMS_COMMAND_MENUS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        scope: tuple(c["title"] for c in command_list["commands"])
        for command_list in _teams_bot["commandLists"]
        for scope in command_list["scopes"]
    }
)
#: Every Teams text command found in any menu, in order of first appearance.
TEAMS_COMMANDS: tuple[str, ...] = _unique(
    [c["title"] for command_list in _teams_bot["commandLists"] for c in command_list["commands"]]
)
TEAMS_BOT_SCOPES: tuple[str, ...] = tuple(_teams_bot["scopes"])

del _slack, _slash_commands, _teams_bot


# --- validation -------------------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_base_url(base_url: str) -> str:
    """Return `base_url` without a trailing slash, or raise ValueError.

    Slack only calls https endpoints, so plain http is accepted for loopback hosts alone (local testing
    behind a tunnel or with a fake Slack). A path prefix is kept, for a bot served under a sub-path.
    """
    if not isinstance(base_url, str) or not base_url.strip():
        raise ValueError("base URL is empty; pass the public https URL of the bot, e.g. https://bot.example.com")
    text = base_url.strip()
    parts = urlsplit(text)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError(f"base URL must look like https://bot.example.com, got {base_url!r}")
    if parts.scheme == "http" and not _is_loopback(host):
        raise ValueError(
            f"base URL must use https (Slack only calls https endpoints); "
            f"http is allowed for localhost/127.0.0.1 only, got {base_url!r}"
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"base URL must not contain credentials, got {base_url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"base URL must not have a query string or fragment, got {base_url!r}")
    try:
        parts.port  # noqa: B018 - accessing it validates the port number
    except ValueError:
        raise ValueError(f"base URL has an invalid port, got {base_url!r}") from None
    return text.rstrip("/")


def validate_guid(value: str, what: str = "Teams app id") -> str:
    if not isinstance(value, str) or not _GUID.match(value.strip()):
        raise ValueError(
            f"{what} must be a GUID such as 00000000-0000-0000-0000-000000000000 "
            f"(the Microsoft App ID of the Azure Bot), got {value!r}"
        )
    return value.strip().lower()


def validate_domain(domain: str) -> str:
    """Return the bare host name (optionally with a port), lower-cased, or raise ValueError."""
    example = "a bare host name such as bot.example.com"
    if not isinstance(domain, str) or not domain.strip():
        raise ValueError(f"domain is empty; pass {example}")
    text = domain.strip().lower()
    if "://" in text or text.startswith("//"):
        raise ValueError(f"domain must be {example}, without a scheme (drop 'https://'), got {domain!r}")
    if any(ch in text for ch in "/?#"):
        raise ValueError(f"domain must be {example}, without a path, query or fragment, got {domain!r}")
    if any(ch in text for ch in "@ \t"):
        raise ValueError(f"domain must be {example}, got {domain!r}")
    host, _, port = text.partition(":")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"domain has an invalid port, got {domain!r}")
    labels = host.split(".")
    if len(host) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise ValueError(f"domain must be {example} (letters, digits, hyphens and dots), got {domain!r}")
    return text


def validate_version(version: str) -> str:
    if not isinstance(version, str) or not _SEMVER.match(version):
        raise ValueError(f"Teams app version must be MAJOR.MINOR.PATCH such as 1.0.0, got {version!r}")
    return version


# --- rendering --------------------------------------------------------------------------------------


def _substitute(node: Any, values: dict[str, str]) -> Any:
    """Replace {{NAME}} placeholders inside every string of a parsed template (structure stays intact)."""
    if isinstance(node, dict):
        return {key: _substitute(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [_substitute(item, values) for item in node]
    if isinstance(node, str):
        for placeholder, value in values.items():
            node = node.replace(placeholder, value)
        return node
    return node


def _leftover_placeholders(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [p for value in node.values() for p in _leftover_placeholders(value)]
    if isinstance(node, list):
        return [p for item in node for p in _leftover_placeholders(item)]
    if isinstance(node, str):
        return _PLACEHOLDER.findall(node)
    return []


def _ensure_rendered(document: Any, template: Path) -> None:
    leftovers = _leftover_placeholders(document)
    if leftovers:
        raise RuntimeError(f"{template} uses placeholders the builder does not fill: {sorted(set(leftovers))}")


def _strip_request_urls(manifest: dict[str, Any]) -> None:
    """Socket Mode delivers commands, events and interactions over the websocket: no URLs at all."""
    for command in manifest.get("features", {}).get("slash_commands", []):
        command.pop("url", None)
    manifest.get("oauth_config", {}).pop("redirect_urls", None)
    settings = manifest.setdefault("settings", {})
    settings.get("event_subscriptions", {}).pop("request_url", None)
    settings.get("interactivity", {}).pop("request_url", None)
    settings["socket_mode_enabled"] = True


def build_slack_manifest(base_url: str | None, socket_mode: bool = False) -> dict[str, Any]:
    """The Slack manifest as a dict. In Socket Mode `base_url` is not used and may be None."""
    manifest = _load_slack_template()
    if socket_mode:
        _strip_request_urls(manifest)
        # Any {{BASE_URL}} left now sits in a field the removal above missed: fail below, loudly.
    else:
        manifest = _substitute(manifest, {_BASE_URL: normalize_base_url(base_url or "")})
        manifest["settings"]["socket_mode_enabled"] = False
    _ensure_rendered(manifest, SLACK_TEMPLATE)
    return manifest


def render_slack_manifest(base_url: str | None, socket_mode: bool = False) -> str:
    """YAML text to paste into Slack's "Create app from manifest" (or send to apps.manifest.create)."""
    manifest = build_slack_manifest(base_url, socket_mode=socket_mode)
    mode = "Socket Mode" if socket_mode else "HTTP mode"
    header = f"# FlowPilot Slack app manifest ({mode}), generated from manifest/slack.yaml\n"
    body = yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True, width=1000)
    return header + body


def build_teams_manifest(
    app_id: str,
    domain: str,
    version: str = "1.0.0",
    *,
    bot_id: str | None = None,
) -> dict[str, Any]:
    """The Teams manifest.json content.

    `app_id` is the Teams app id; the bot id defaults to the same GUID (the usual setup, where the Teams
    app reuses the Azure Bot's Microsoft App ID). `domain` is the bot's public host, e.g. bot.example.com.
    """
    values = {
        "{{APP_ID}}": validate_guid(app_id, "Teams app id"),
        "{{BOT_ID}}": validate_guid(bot_id if bot_id is not None else app_id, "Teams bot id"),
        "{{DOMAIN}}": validate_domain(domain),
        "{{VERSION}}": validate_version(version),
    }
    manifest = _substitute(_load_teams_template(), values)
    _ensure_rendered(manifest, TEAMS_TEMPLATE)
    return manifest


def build_teams_package(
    app_id: str,
    domain: str,
    out_path: str | Path,
    version: str = "1.0.0",
    *,
    bot_id: str | None = None,
) -> Path:
    """Write the Teams app package (manifest.json, color.png, outline.png at the zip root) to `out_path`."""
    manifest = build_teams_manifest(app_id, domain, version, bot_id=bot_id)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    entries: list[tuple[str, bytes]] = [
        ("manifest.json", (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")),
    ]
    entries += [(name, (TEAMS_DIR / name).read_bytes()) for name in TEAMS_ICON_FILES]
    # Write next to the target and rename, so a failed build never leaves a half-written package.
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    partial.replace(out)
    return out
