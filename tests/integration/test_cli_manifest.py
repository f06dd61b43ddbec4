"""`flowpilot manifest …` as an operator runs it (docs/deploy.md §3 and §4): the installed command in a
subprocess, with a clean environment."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml
from PIL import Image

from manifest.build import TEAMS_COMMANDS

REPO = Path(__file__).resolve().parents[2]
FLOWPILOT = Path(sys.executable).parent / "flowpilot"
APP_ID = "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f"


def flowpilot(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER")}
    return subprocess.run([str(FLOWPILOT), *args], cwd=str(cwd), env=env, capture_output=True, text=True,
                          timeout=60)


def test_manifest_teams_writes_a_package_with_the_manifest_and_both_icons(tmp_path):
    out = tmp_path / "dist" / "app.zip"

    done = flowpilot("manifest", "teams", "--app-id", APP_ID, "--domain", "bot.example.com", "--out", str(out))

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote {out}"
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(archive.read("manifest.json"))
        color = Image.open(io.BytesIO(archive.read("color.png")))
        outline = Image.open(io.BytesIO(archive.read("outline.png")))
    assert manifest["id"] == APP_ID and manifest["bots"][0]["botId"] == APP_ID
    assert manifest["validDomains"] == ["bot.example.com"]
    assert manifest["version"] == "1.0.0"
    assert {c["title"] for menu in manifest["bots"][0]["commandLists"] for c in menu["commands"]} == set(TEAMS_COMMANDS)
    assert (color.size, outline.size) == ((192, 192), (32, 32))


def test_manifest_teams_defaults_to_flowpilot_teams_zip_in_the_current_folder(tmp_path):
    done = flowpilot("manifest", "teams", "--app-id", APP_ID, "--domain", "bot.example.com", "--version", "2.0.1",
                     cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(tmp_path / "flowpilot-teams.zip") as archive:
        assert json.loads(archive.read("manifest.json"))["version"] == "2.0.1"


def test_manifest_teams_refuses_a_non_guid_app_id_without_writing_anything(tmp_path):
    done = flowpilot("manifest", "teams", "--app-id", "flowpilot", "--domain", "bot.example.com",
                     "--out", str(tmp_path / "app.zip"))

    assert done.returncode == 2
    assert "Teams app id must be a GUID" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_manifest_slack_prints_a_manifest_pointing_at_the_url():
    done = flowpilot("manifest", "slack", "--url", "https://bot.example.com/")

    assert done.returncode == 0, done.stderr
    assert "https://bot.example.com/slack/events" in done.stdout
    manifest = yaml.safe_load(done.stdout)
    assert manifest["settings"]["event_subscriptions"]["request_url"] == "https://bot.example.com/slack/events"
    assert manifest["features"]["slash_commands"][0]["url"] == "https://bot.example.com/slack/events"
    assert manifest["oauth_config"]["redirect_urls"] == ["https://bot.example.com/slack/oauth_redirect"]
    assert manifest["settings"]["socket_mode_enabled"] is False


def test_manifest_slack_in_socket_mode_needs_no_url():
    done = flowpilot("manifest", "slack", "--socket-mode")

    assert done.returncode == 0, done.stderr
    manifest = yaml.safe_load(done.stdout)
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert "://" not in done.stdout.replace("# ", "")


def test_manifest_slack_without_a_url_says_what_to_pass():
    done = flowpilot("manifest", "slack")

    assert done.returncode == 2
    assert "--url" in done.stderr and "--socket-mode" in done.stderr
    assert done.stdout == ""
