"""OAuth distribution against FakeSlack's oauth.v2.access: the install is stored in our database
(token encrypted with FLOWPILOT_SECRET_KEY), links the workspace to an account, makes the
installer an admin, and later requests from that workspace are answered with its own token."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from storage.secrets import generate_key
from tests.fakes.slack_signing import app_mention_event
from tests.integration.slack_fixtures import slack_bot

TEAM = "T0FPTEAM2"
INSTALLER = "U0INSTALL1"


@pytest.fixture
async def bot(db, database_url):
    async with slack_bot(database_url, oauth=True, FLOWPILOT_SECRET_KEY=generate_key()) as bot:
        yield bot


async def install(bot) -> str:
    """The browser's round trip: /slack/install sets the state cookie, Slack redirects back with a code."""
    page = await bot.http.get("/slack/install", allow_redirects=False)
    assert page.status == 200
    state = re.search(r"state=([0-9a-f-]+)", await page.text()).group(1)
    cookie = page.headers["Set-Cookie"].split(";")[0]
    assert cookie == f"slack-app-oauth-state={state}"
    code = bot.fake.issue_oauth_code(team_id=TEAM, team_name="Installed MSP", installer_user_id=INSTALLER)
    done = await bot.http.get("/slack/oauth_redirect", params={"code": code, "state": state},
                              headers={"Cookie": cookie}, allow_redirects=False)
    assert done.status == 200, await done.text()
    return bot.fake.calls_to("oauth.v2.access")[0].response["access_token"]


async def test_install_stores_an_encrypted_token_and_makes_the_installer_admin(bot) -> None:
    bot.fake.add_user(INSTALLER, name="ivy", real_name="Ivy Installer", email="ivy@example.com", team_id=TEAM)
    token = await install(bot)

    async with bot.comps.db.admin.connect() as conn:
        stored = (await conn.execute(text("SELECT team_id, bot_token FROM slack_bots"))).all()
        installs = (await conn.execute(text("SELECT team_id, user_id, bot_token FROM slack_installations"))).all()
        admin = (await conn.execute(text(
            "SELECT p.role, p.display_name, p.email FROM people p JOIN identities i ON i.person_id = p.id "
            "WHERE i.platform = 'slack' AND i.external_user_id = :u"), {"u": INSTALLER})).one()
        account = (await conn.execute(text(
            "SELECT a.name FROM workspaces w JOIN accounts a ON a.id = w.account_id "
            "WHERE w.platform = 'slack' AND w.external_id = :t"), {"t": TEAM})).scalar_one()
    assert [row.team_id for row in stored] == [TEAM] and [row.user_id for row in installs] == [INSTALLER]
    for row in stored + installs:
        assert row.bot_token != token and token not in row.bot_token
        assert row.bot_token.startswith("fp-enc:v1:")
    assert tuple(admin) == ("admin", "ivy", "ivy@example.com")
    assert account == "Installed MSP"


async def test_requests_from_an_installed_workspace_use_its_token(bot) -> None:
    token = await install(bot)
    bot.ai.reply_text("Let's look at the VPN logs.")
    resp = await bot.command("new VPN drops every hour", team_id=TEAM, user_id=INSTALLER)
    assert resp.status == 200
    header = (await bot.fake.wait_for(lambda: bot.roots()))[0]
    assert "VPN drops every hour" in header["text"]
    posts = bot.fake.calls_to("chat.postMessage")
    assert posts[0].headers["Authorization"] == f"Bearer {token}"
    ephemeral = await bot.fake.wait_for(lambda: bot.fake.calls_to("chat.postEphemeral"))
    assert ephemeral[0].headers["Authorization"] == f"Bearer {token}"


async def test_an_unknown_workspace_is_refused_without_a_session(bot) -> None:
    await install(bot)
    before = await bot.counts()
    resp = await bot.command("new VPN drops", team_id="T0NOTINST1")
    assert resp.status == 200  # bolt tells Slack it is not installed; nothing reaches the core
    assert (await bot.counts())["ai_sessions"] == before["ai_sessions"] == 0


async def test_installation_tables_are_migrated_outside_the_app_role(database) -> None:
    async with database.admin.connect() as conn:
        types = dict((await conn.execute(text(
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
            "WHERE table_name IN ('slack_bots', 'slack_installations') AND column_name = 'bot_token'"))).all())
        readable = (await conn.execute(text(
            "SELECT has_table_privilege('flowpilot_app', 'slack_bots', 'SELECT')"))).scalar_one()
        states = (await conn.execute(text("SELECT to_regclass('slack_oauth_states') IS NOT NULL"))).scalar_one()
    assert types == {"slack_bots.bot_token": "text", "slack_installations.bot_token": "text"}
    assert readable is False  # tenant code (the app role) cannot read bot tokens
    assert states is True


async def test_an_event_is_redelivered_not_lost_when_slack_cannot_authorize_it(bot) -> None:
    """bolt answers 200 (never retried by Slack) when auth.test fails; we answer 503 so Slack
    redelivers, and the redelivery is handled once Slack's API is back."""
    await install(bot)
    bot.fake.fail_next("auth.test", status=500, times=20)
    mention = app_mention_event(text="new Printer jammed on floor 2", channel=bot.channel, user=INSTALLER, team=TEAM)
    first = await bot.event(mention, event_id="Ev0AUTHFAIL1", team_id=TEAM)
    assert first.status == 503
    assert (await bot.counts())["ai_sessions"] == 0
    bot.fake._faults.clear()  # Slack's API is back
    retried = await bot.event(mention, event_id="Ev0AUTHFAIL1", team_id=TEAM, retry_num=1)
    assert retried.status == 200
    assert (await bot.counts())["ai_sessions"] == 1
