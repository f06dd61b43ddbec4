import json
from tests.reliability.world import world
from tests.fakes.slack_signing import app_mention_event, message_event, new_message_ts

async def test_probe(db, database_url):
    async with world(database_url) as w:
        r = await w.slack.mention("printer \x00 stuck", ts=new_message_ts())
        print("STATUS mention", r.status, await r.text())
        r = await w.slack.command("new printer \x00 stuck")
        print("STATUS command", r.status, await r.text())
        st, body = await w.teams.post(w.teams.message("vpn \x00 drops", channel="19:x@thread.tacv2"))
        print("STATUS teams", st, body)
        r = await w.slack.mention("printer \ud800 stuck", ts=new_message_ts())
        print("STATUS surrogate", r.status, await r.text())
