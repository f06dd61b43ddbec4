"""The Slack manifest and the Teams app package that operators upload must be accepted by the platforms.

The Teams manifest is checked against the official 1.29 JSON schema, vendored under tests/data/schemas; the Slack manifest against the facts of what the bot registers (one command, fixed scopes
and events, every URL on the operator's base URL).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from PIL import Image, ImageChops

from manifest import build
from manifest.build import (
    SLACK_BOT_EVENTS,
    SLACK_BOT_SCOPES,
    SLACK_COMMANDS,
    SLACK_SUBCOMMANDS,
    TEAMS_COMMAND_MENUS,
    TEAMS_COMMANDS,
    build_teams_manifest,
    build_teams_package,
    render_slack_manifest,
)

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "data" / "schemas"  # vendored: see tests/data/schemas/NOTICE.md
TEAMS_SCHEMA = SCHEMA_DIR / "teams-manifest-1.29.schema.json"

APP_ID = "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
BOT_ID = "0a1b2c3d-4e5f-4a6b-9c8d-7e6f5a4b3c2d"
DOMAIN = "flowpilot.example.com"
BASE_URL = "https://flowpilot.example.com"

ALL_COMMANDS = {
    "new", "note", "resolve", "escalate", "update", "pause", "close", "status", "queue", "metrics",
    "seniors here", "role", "psa connect", "help",
}
EXPECTED_SCOPES = {
    "commands", "chat:write", "app_mentions:read", "channels:history", "groups:history", "im:history",
    "im:write", "users:read", "users:read.email", "files:read",
}
EXPECTED_EVENTS = {"app_mention", "message.channels", "message.groups", "message.im"}
# Slack refuses to deliver an event unless the app holds the scope that covers it.
SCOPE_FOR_EVENT = {
    "app_mention": "app_mentions:read",
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "message.im": "im:history",
}


@pytest.fixture(scope="module")
def teams_validator() -> jsonschema.protocols.Validator:
    if not TEAMS_SCHEMA.is_file():
        pytest.fail(
            f"Teams manifest schema not found at {TEAMS_SCHEMA}: it is vendored in the repository "
            f"(tests/data/schemas/); restore it from git.",
            pytrace=False,
        )
    schema = json.loads(TEAMS_SCHEMA.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    # The schema holds ECMAScript patterns such as `\p{L}` (Office add-in extensions) that Python's `re`
    # cannot compile, so the meta-schema check runs without its "regex" format check. Our manifest never
    # reaches those branches; a pattern it does reach is still compiled and applied during validation.
    validator_class.check_schema(schema, format_checker=None)
    return validator_class(schema)


def assert_valid_teams_manifest(validator: jsonschema.protocols.Validator, manifest: dict) -> None:
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(e.absolute_path))
    problems = "\n".join(f"  {'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors)
    assert not errors, f"Teams manifest violates the 1.29 schema:\n{problems}"


def collect_urls(node) -> list[str]:
    if isinstance(node, dict):
        return [url for value in node.values() for url in collect_urls(value)]
    if isinstance(node, list):
        return [url for item in node for url in collect_urls(item)]
    if isinstance(node, str) and "://" in node:
        return [node]
    return []


# --- Teams ------------------------------------------------------------------------------------------


def test_built_teams_manifest_validates_against_the_1_29_schema(teams_validator):
    manifest = build_teams_manifest(APP_ID, DOMAIN, "2.3.4")

    assert_valid_teams_manifest(teams_validator, manifest)
    assert manifest["manifestVersion"] == "1.29"
    assert manifest["$schema"].endswith("/teams/v1.29/MicrosoftTeams.schema.json")
    assert manifest["id"] == APP_ID
    assert manifest["version"] == "2.3.4"
    assert manifest["name"]["short"] == "FlowPilot"
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}
    assert manifest["validDomains"] == [DOMAIN]
    assert {urlsplit(u).netloc for u in manifest["developer"].values() if "://" in u} == {DOMAIN}


def test_teams_bot_registration_matches_what_the_bot_handles(teams_validator):
    manifest = build_teams_manifest(APP_ID, DOMAIN, bot_id=BOT_ID)
    assert_valid_teams_manifest(teams_validator, manifest)

    (bot,) = manifest["bots"]
    assert bot["botId"] == BOT_ID
    assert manifest["id"] == APP_ID
    assert set(bot["scopes"]) == {"personal", "team", "groupChat"}
    assert bot["supportsFiles"] is False
    # One menu per scope, as Teams requires, and each within the schema's cap.
    menu_scopes = [scope for command_list in bot["commandLists"] for scope in command_list["scopes"]]
    assert sorted(menu_scopes) == sorted(bot["scopes"])


def test_schema_check_catches_an_overfull_command_menu(teams_validator):
    # Guards against a vacuous validator: the 12-command cap is why the menus are split per scope.
    manifest = build_teams_manifest(APP_ID, DOMAIN)
    menu = manifest["bots"][0]["commandLists"][0]["commands"]
    menu.append({"title": "ticket", "description": "ticket <CW#>: start from a PSA ticket"})

    assert list(teams_validator.iter_errors(manifest)), "a 13-command menu passed the 1.29 schema"


def test_bot_id_defaults_to_the_app_id():
    manifest = build_teams_manifest(APP_ID, DOMAIN)
    assert manifest["bots"][0]["botId"] == APP_ID


def test_every_teams_command_is_offered_in_some_menu_and_menus_fit_the_schema(teams_validator):
    command_cap = teams_validator.schema["properties"]["bots"]["items"]["properties"]["commandLists"]["items"][
        "properties"
    ]["commands"]["maxItems"]

    assert set(TEAMS_COMMANDS) == ALL_COMMANDS
    assert set(TEAMS_COMMAND_MENUS) == {"personal", "team", "groupChat"}
    assert all(len(menu) <= command_cap for menu in TEAMS_COMMAND_MENUS.values())
    # Commands that only make sense in one kind of conversation are offered there.
    assert "seniors here" in TEAMS_COMMAND_MENUS["team"]
    assert "psa connect" in TEAMS_COMMAND_MENUS["personal"]
    assert "role" in TEAMS_COMMAND_MENUS["groupChat"]
    assert all("help" in menu and "new" in menu for menu in TEAMS_COMMAND_MENUS.values())


def test_teams_command_texts_fit_the_localisation_limits():
    # Localised manifests cap titles at 32 and descriptions at 128 characters; stay inside so a later
    # translation never needs shorter English texts.
    manifest = build_teams_manifest(APP_ID, DOMAIN)
    for command_list in manifest["bots"][0]["commandLists"]:
        for command in command_list["commands"]:
            assert len(command["title"]) <= 32, command
            assert 0 < len(command["description"]) <= 128, command


def test_slack_and_teams_offer_the_same_commands():
    assert set(SLACK_SUBCOMMANDS) == set(TEAMS_COMMANDS) == ALL_COMMANDS


def test_teams_package_holds_exactly_the_manifest_and_correctly_sized_icons(tmp_path, teams_validator):
    out = build_teams_package(APP_ID, DOMAIN, tmp_path / "dist" / "flowpilot-teams.zip")

    assert out == tmp_path / "dist" / "flowpilot-teams.zip"
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(archive.read("manifest.json"))
        color = Image.open(io.BytesIO(archive.read("color.png")))
        outline = Image.open(io.BytesIO(archive.read("outline.png")))

    assert_valid_teams_manifest(teams_validator, manifest)
    assert manifest == build_teams_manifest(APP_ID, DOMAIN)
    assert color.format == "PNG" and color.size == (192, 192)
    assert outline.format == "PNG" and outline.size == (32, 32)


def test_outline_icon_is_white_on_transparent(tmp_path):
    out = build_teams_package(APP_ID, DOMAIN, tmp_path / "app.zip")
    with zipfile.ZipFile(out) as archive:
        outline = Image.open(io.BytesIO(archive.read("outline.png"))).convert("RGBA")

    pixels = [outline.getpixel((x, y)) for y in range(outline.height) for x in range(outline.width)]
    visible = [p for p in pixels if p[3] > 0]
    assert visible, "outline icon is fully transparent"
    assert any(p[3] == 0 for p in pixels), "outline icon has no transparent background"
    assert {p[:3] for p in visible} == {(255, 255, 255)}


def test_color_icon_is_opaque_and_uses_the_accent_color(tmp_path):
    out = build_teams_package(APP_ID, DOMAIN, tmp_path / "app.zip")
    with zipfile.ZipFile(out) as archive:
        accent = json.loads(archive.read("manifest.json"))["accentColor"]
        color = Image.open(io.BytesIO(archive.read("color.png"))).convert("RGBA")

    accent_rgba = tuple(int(accent[i : i + 2], 16) for i in (1, 3, 5)) + (255,)
    assert color.getpixel((0, 0)) == accent_rgba
    assert color.getextrema()[3] == (255, 255)


def test_committed_icons_match_the_drawing_script():
    # A changed drawing script without regenerated PNGs would ship stale artwork.
    from manifest import make_icons

    for name, draw in (("color.png", make_icons.draw_color_icon), ("outline.png", make_icons.draw_outline_icon)):
        committed = Image.open(build.TEAMS_DIR / name).convert("RGBA")
        redrawn = draw()
        assert committed.size == redrawn.size, f"{name} is stale: run python -m manifest.make_icons"
        # Tolerate off-by-a-few antialiasing differences between Pillow releases, not a changed drawing.
        worst = max(high for _, high in ImageChops.difference(committed, redrawn).getextrema())
        assert worst <= 8, f"{name} is stale: run python -m manifest.make_icons"


def test_teams_package_is_reproducible(tmp_path):
    first = build_teams_package(APP_ID, DOMAIN, tmp_path / "a.zip").read_bytes()
    second = build_teams_package(APP_ID, DOMAIN, tmp_path / "b.zip").read_bytes()
    assert first == second


def test_failed_package_build_leaves_no_file(tmp_path):
    target = tmp_path / "app.zip"
    with pytest.raises(ValueError):
        build_teams_package("not-a-guid", DOMAIN, target)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "app_id",
    ["", "flowpilot", "6f1c2d3e4a5b4c6d8e7f9a0b1c2d3e4f", "{6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f}",
     "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4g"],
)
def test_non_guid_app_id_is_rejected_with_a_clear_message(app_id):
    with pytest.raises(ValueError, match="Teams app id must be a GUID"):
        build_teams_manifest(app_id, DOMAIN)


def test_non_guid_bot_id_is_rejected():
    with pytest.raises(ValueError, match="Teams bot id must be a GUID"):
        build_teams_manifest(APP_ID, DOMAIN, bot_id="my-bot")


@pytest.mark.parametrize(
    ("domain", "complaint"),
    [
        ("https://flowpilot.example.com", "without a scheme"),
        ("flowpilot.example.com/api/messages", "without a path"),
        ("flowpilot.example.com?x=1", "without a path"),
        ("", "domain is empty"),
        ("flow pilot.example.com", "bare host name"),
        ("*.example.com", "bare host name"),
        ("flowpilot.example.com:99999", "invalid port"),
    ],
)
def test_bad_domain_is_rejected_with_a_clear_message(domain, complaint):
    with pytest.raises(ValueError, match=complaint):
        build_teams_manifest(APP_ID, domain)


def test_domain_with_port_and_upper_case_is_accepted_and_normalised(teams_validator):
    manifest = build_teams_manifest(APP_ID, "FlowPilot.Example.com:8443")
    assert manifest["validDomains"] == ["flowpilot.example.com:8443"]
    assert manifest["developer"]["privacyUrl"] == "https://flowpilot.example.com:8443/privacy"
    assert_valid_teams_manifest(teams_validator, manifest)


@pytest.mark.parametrize("version", ["1.0", "v1.0.0", "01.0.0", "1.0.0-beta"])
def test_non_semver_version_is_rejected(version):
    with pytest.raises(ValueError, match="MAJOR.MINOR.PATCH"):
        build_teams_manifest(APP_ID, DOMAIN, version)


# --- Slack ------------------------------------------------------------------------------------------


def test_slack_manifest_points_every_url_at_the_base_url():
    manifest = yaml.safe_load(render_slack_manifest(BASE_URL + "/"))

    urls = collect_urls(manifest)
    assert urls, "HTTP-mode manifest has no URLs"
    assert all(url.startswith(BASE_URL + "/slack/") for url in urls), urls
    (command,) = manifest["features"]["slash_commands"]
    assert command["url"] == f"{BASE_URL}/slack/events"
    assert manifest["settings"]["event_subscriptions"]["request_url"] == f"{BASE_URL}/slack/events"
    assert manifest["settings"]["interactivity"] == {"is_enabled": True, "request_url": f"{BASE_URL}/slack/events"}
    assert manifest["oauth_config"]["redirect_urls"] == [f"{BASE_URL}/slack/oauth_redirect"]
    assert manifest["settings"]["socket_mode_enabled"] is False
    assert "{{" not in render_slack_manifest(BASE_URL)


def test_slack_manifest_keeps_a_path_prefix():
    manifest = yaml.safe_load(render_slack_manifest("https://example.com/tools/flowpilot"))
    assert manifest["settings"]["event_subscriptions"]["request_url"] == (
        "https://example.com/tools/flowpilot/slack/events"
    )


def test_slack_manifest_registers_the_flowpilot_command_with_all_subcommands():
    manifest = yaml.safe_load(render_slack_manifest(BASE_URL))

    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/flowpilot"
    assert SLACK_COMMANDS == ("/flowpilot",)
    assert set(SLACK_SUBCOMMANDS) == ALL_COMMANDS
    assert all(sub in command["usage_hint"] for sub in ALL_COMMANDS)
    # Escaped mentions give `role @user <role>` a user id rather than a display name.
    assert command["should_escape"] is True
    assert manifest["display_information"]["name"] == "FlowPilot"
    assert manifest["features"]["bot_user"]["display_name"] == "FlowPilot"


def test_slack_manifest_has_exactly_the_expected_scopes_and_events():
    manifest = yaml.safe_load(render_slack_manifest(BASE_URL))

    scopes = manifest["oauth_config"]["scopes"]["bot"]
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert sorted(scopes) == sorted(EXPECTED_SCOPES) and len(scopes) == len(EXPECTED_SCOPES)
    assert sorted(events) == sorted(EXPECTED_EVENTS) and len(events) == len(EXPECTED_EVENTS)
    assert "app_home_opened" not in events
    assert "user" not in manifest["oauth_config"]["scopes"]
    assert set(SLACK_BOT_SCOPES) == EXPECTED_SCOPES
    assert set(SLACK_BOT_EVENTS) == EXPECTED_EVENTS
    assert all(SCOPE_FOR_EVENT[event] in scopes for event in events)


def test_slack_manifest_fits_slack_display_limits():
    info = yaml.safe_load(render_slack_manifest(BASE_URL))["display_information"]
    assert len(info["name"]) <= 35
    assert len(info["description"]) <= 140
    assert 174 <= len(info["long_description"]) <= 4000
    # DMs to seniors need a writable messages tab.
    app_home = yaml.safe_load(render_slack_manifest(BASE_URL))["features"]["app_home"]
    assert app_home["messages_tab_enabled"] is True
    assert app_home["messages_tab_read_only_enabled"] is False


def test_socket_mode_manifest_has_no_request_urls():
    text = render_slack_manifest(None, socket_mode=True)
    manifest = yaml.safe_load(text)

    assert manifest["settings"]["socket_mode_enabled"] is True
    assert collect_urls(manifest) == []
    assert "{{" not in text
    assert "url" not in manifest["features"]["slash_commands"][0]
    assert "request_url" not in manifest["settings"]["event_subscriptions"]
    assert "request_url" not in manifest["settings"]["interactivity"]
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    # Same command, scopes and events as HTTP mode: only the transport differs.
    assert manifest["features"]["slash_commands"][0]["command"] == "/flowpilot"
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == EXPECTED_SCOPES
    assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) == EXPECTED_EVENTS


@pytest.mark.parametrize(
    "base_url", ["http://localhost:3000", "http://127.0.0.1:8080/", "http://[::1]:3000"]
)
def test_plain_http_is_allowed_for_loopback_only(base_url):
    manifest = yaml.safe_load(render_slack_manifest(base_url))
    assert manifest["settings"]["event_subscriptions"]["request_url"] == base_url.rstrip("/") + "/slack/events"


@pytest.mark.parametrize(
    ("base_url", "complaint"),
    [
        ("http://flowpilot.example.com", "must use https"),
        ("flowpilot.example.com", "must look like https://"),
        ("ftp://flowpilot.example.com", "must look like https://"),
        ("https://flowpilot.example.com/?a=1", "query string"),
        ("https://user:pw@flowpilot.example.com", "credentials"),
        ("", "base URL is empty"),
        (None, "base URL is empty"),
    ],
)
def test_bad_base_url_is_rejected_with_a_clear_message(base_url, complaint):
    with pytest.raises(ValueError, match=complaint):
        render_slack_manifest(base_url)
