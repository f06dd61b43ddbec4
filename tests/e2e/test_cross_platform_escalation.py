"""One account, two chat platforms (issue 6): an escalation raised from a Slack session reaches the
senior channels in Slack AND Teams, a Teams senior picks it up from the Teams copy, and the Slack
copy and session thread follow.

Both real adapters are mounted in ONE app (bot.app.create_app): bolt against FakeSlack with signed
requests, the CloudAdapter with JWT validation against FakeOpenIdIssuer and the Bot Connector
client against FakeBotConnector, real Postgres, real workers and FakeAnthropic as the model."""
from __future__ import annotations

import json
import uuid

import pytest

from adapters.teams.payloads import INVOKE_CARD
from tests.e2e.test_slack_escalation import open_modal, session_with_header
from tests.e2e.test_teams_channel import (  # noqa: F401  (issuer/connector are pytest fixtures)
    ADA_AAD, APP_ID, APP_PASSWORD, TENANT_ID, Running, World, card_text, connector, execute, issuer, walk,
)
from tests.fakes.slack_signing import DEFAULT_TEAM_ID
from tests.integration.slack_fixtures import has_button, slack_bot

SLACK_ADMIN = "U0SENIOR1"
SLACK_SENIORS = "C-SENIORS"
TEAMS_SENIORS = f"19:{uuid.uuid4().hex}@thread.tacv2"
TEAMS_SENIOR_NAME = "Ada Engineer"  # the Teams user the fake activities come from (aad ADA_AAD)
FIRST_TURN = """Let's narrow it down.
[QUESTIONS]
[{"text": "Is the printer on the network at all?", "context": "scope"}]
[/QUESTIONS]"""


@pytest.fixture
async def both(db, database_url, issuer, connector):
    """The one app with Slack and Teams mounted, and a World that speaks Teams to that same app."""
    teams_env = dict(MICROSOFT_APP_ID=APP_ID, MICROSOFT_APP_PASSWORD=APP_PASSWORD, MICROSOFT_APP_TENANT_ID=TENANT_ID,
                     TEAMS_OPENID_METADATA_URL=issuer.metadata_url, TEAMS_TOKEN_ISSUER=issuer.issuer,
                     TEAMS_TOKEN_ENDPOINT=connector.token_url(TENANT_ID))
    async with slack_bot(database_url, FLOWPILOT_ADMINS=f"{SLACK_ADMIN},{ADA_AAD}", **teams_env) as slack:
        slack.fake.add_user(SLACK_ADMIN, name="sam", real_name="Sam Senior")
        slack.fake.add_channel(SLACK_SENIORS, "escalations")
        assert set(slack.comps.runtime.senders) >= {"slack", "teams"}, "both adapters must be mounted"
        teams = World(Running(slack.comps, slack.ai), slack.http.server, slack.http.session, issuer, connector,
                      TEAMS_SENIORS)
        yield slack, teams


async def test_a_slack_escalation_is_claimed_from_teams_and_slack_follows(both) -> None:
    slack, teams = both

    # 1. The Slack admin makes #escalations a senior channel; that first contact creates the account.
    resp = await slack.command("seniors here", user_id=SLACK_ADMIN, channel_id=SLACK_SENIORS,
                               channel_name="escalations")
    assert resp.status == 200
    told = await slack.fake.wait_for(lambda: slack.fake.ephemerals(SLACK_ADMIN))
    assert "now receives escalations" in told[0]["text"]

    # 2. The Teams tenant is the same customer: link it before any Teams traffic.
    account = await slack.comps.store.account_for_workspace("slack", DEFAULT_TEAM_ID)
    assert account is not None
    await slack.comps.store.link_workspace("teams", TENANT_ID, account)

    # 3. The Teams admin makes a Teams channel a senior channel too.
    status, _ = await teams.post(teams.message("seniors here"))
    assert status == 201
    await teams.wait_posted(lambda p: "now receives escalations" in p.text)
    assert await teams.sql("SELECT count(*) FROM escalation_routes") == 2
    assert await teams.sql("SELECT count(DISTINCT account_id) FROM people") == 1

    # 4. An engineer starts a Slack session and escalates it from the header card's Escalate button.
    header = await session_with_header(slack, FIRST_TURN)
    await slack.fake.wait_for(lambda: any(has_button(m, "answer") for m in slack.thread(header["ts"])))
    reason_modal = await open_modal(slack, slack.fake.message(slack.channel, header["ts"]), "escalate", 1)
    closed = await slack.submit(reason_modal, "Customer is waiting")
    assert closed.status == 200 and await closed.text() == ""

    # 5. The card lands in BOTH senior channels: Slack #escalations and a new thread in the Teams channel.
    slack_card = (await slack.fake.wait_for(
        lambda: [m for m in slack.fake.messages(SLACK_SENIORS) if has_button(m, "claim")]))[0]
    assert "Printer queue stuck" in slack_card["text"]
    [teams_card] = await teams.wait_posted(
        lambda p: p.kind == "create" and p.conversation_id.startswith(TEAMS_SENIORS) and "Printer queue stuck" in p.text)
    assert teams_card.conversation_id == f"{TEAMS_SENIORS};messageid={teams_card.id}"  # its own reply chain
    pick_up = execute(teams_card.card, "claim")
    assert pick_up["title"] == "Pick up"

    # 6. A Teams senior picks it up from the Teams copy: the invoke answers with the claimed card.
    status, body = await teams.post(teams.invoke(pick_up, teams_card))
    assert status == 200
    assert body["type"] == INVOKE_CARD
    assert f"Claimed by {TEAMS_SENIOR_NAME}" in card_text(body["value"])
    assert not any(n.get("verb") == "claim" for n in walk(body["value"]))
    await teams.wait_posted(lambda p: p.id == teams_card.id and f"Claimed by {TEAMS_SENIOR_NAME}" in p.text)

    # 7. The Slack copy is edited in place (same ts) to the claim, without a Pick up button...
    claimed = await slack.fake.wait_for(lambda: [
        u for u in slack.fake.updates(slack_card["ts"], SLACK_SENIORS)
        if f"Claimed by {TEAMS_SENIOR_NAME}" in json.dumps(u["blocks"])])
    assert claimed[-1]["ts"] == slack_card["ts"]
    assert not has_button({"blocks": claimed[-1]["blocks"]}, "claim")
    assert len([m for m in slack.fake.messages(SLACK_SENIORS) if "Printer queue stuck" in m["text"]]) == 1

    # 8. ...and the handoff context card reaches the engineer's Slack session thread, naming the senior.
    context = await slack.fake.wait_for(lambda: [
        m for m in slack.thread(header["ts"]) if "Handoff context" in json.dumps(m.get("blocks"))])
    assert TEAMS_SENIOR_NAME in json.dumps(context[0]["blocks"])
    assert await teams.sql("SELECT status FROM ai_sessions") == "active"
    assert await teams.sql("SELECT p.display_name FROM session_handoffs h JOIN people p ON p.id = h.claimed_by") \
        == TEAMS_SENIOR_NAME
    # The engineer who escalated was the Slack user, not the Teams senior.
    assert await teams.sql("SELECT p.display_name FROM session_handoffs h JOIN people p ON p.id = h.handed_off_by") \
        == "erin"  # the Slack engineer (FakeSlack user U0ENGINEER)

