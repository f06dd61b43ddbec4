"""Pure decisions of the Slack adapter: which mode runs (Socket Mode can only be checked this far
without a real Slack), how replies and errors are shown, which messages are chat turns, pacing."""
from __future__ import annotations

import pytest

from adapters.slack.config import DEFAULT_API_URL, SlackConfigError, slack_config
from adapters.slack.install import ENCRYPTED_PREFIX, TokenCipher
from adapters.slack.listeners.events import is_session_candidate, strip_bot_mention
from adapters.slack.mrkdwn import split_text
from adapters.slack.pacing import ChannelPacer
from adapters.slack.payloads import ModalContext
from adapters.slack.replies import notice_for
from core.commands import Reply
from core.errors import Conflict, Forbidden, InvalidInput, NotFound, UpstreamFailure
from storage.secrets import SecretBox, generate_key
from tests.harness import test_settings as make_settings

BOT = "xoxb-1-2-abc"


def config(**env):
    return slack_config(make_settings(**env))


def test_no_slack_settings_means_slack_is_off() -> None:
    assert config() is None


def test_single_workspace_over_http() -> None:
    cfg = config(SLACK_BOT_TOKEN=BOT, SLACK_SIGNING_SECRET="s")
    assert (cfg.mode, cfg.http_enabled, cfg.socket_mode, cfg.api_url) == ("single", True, False, DEFAULT_API_URL)


def test_oauth_distribution_needs_both_client_settings_and_a_signing_secret() -> None:
    cfg = config(SLACK_CLIENT_ID="1.2", SLACK_CLIENT_SECRET="c", SLACK_SIGNING_SECRET="s")
    assert cfg.mode == "oauth" and cfg.http_enabled
    with pytest.raises(SlackConfigError, match="both"):
        config(SLACK_CLIENT_ID="1.2", SLACK_SIGNING_SECRET="s")
    with pytest.raises(SlackConfigError, match="SIGNING_SECRET"):
        config(SLACK_CLIENT_ID="1.2", SLACK_CLIENT_SECRET="c", SLACK_APP_TOKEN="xapp-1")


def test_socket_mode_runs_without_a_public_url_or_signing_secret() -> None:
    cfg = config(SLACK_BOT_TOKEN=BOT, SLACK_APP_TOKEN="xapp-1-A1-2-abc")
    assert cfg.socket_mode and not cfg.http_enabled and cfg.mode == "single"
    both = config(SLACK_BOT_TOKEN=BOT, SLACK_APP_TOKEN="xapp-1", SLACK_SIGNING_SECRET="s")
    assert both.socket_mode and both.http_enabled
    with pytest.raises(SlackConfigError, match="xapp-"):
        config(SLACK_BOT_TOKEN=BOT, SLACK_APP_TOKEN=BOT)


def test_half_configured_slack_fails_loudly() -> None:
    with pytest.raises(SlackConfigError, match="SLACK_BOT_TOKEN"):
        config(SLACK_SIGNING_SECRET="s")
    with pytest.raises(SlackConfigError, match="SIGNING_SECRET"):
        config(SLACK_BOT_TOKEN=BOT)


def test_api_url_override_gets_the_trailing_slash_slack_sdk_needs() -> None:
    assert config(SLACK_BOT_TOKEN=BOT, SLACK_SIGNING_SECRET="s",
                  SLACK_API_URL="http://127.0.0.1:9999/api").api_url == "http://127.0.0.1:9999/api/"


@pytest.mark.parametrize("error, visibility", [
    (NotFound("gone"), "ephemeral"), (Forbidden("not your session"), "ephemeral"),
    (Conflict("superseded"), "ephemeral"), (InvalidInput("blank", field="notes"), "ephemeral"),
    (UpstreamFailure("ConnectWise refused the note"), "thread")])
def test_each_error_category_has_one_way_to_be_shown(error, visibility) -> None:
    notice = notice_for(Reply(error=error))
    assert notice.visibility == visibility and str(error) in notice.text


def test_texts_are_ephemeral_and_duplicates_or_ignored_say_nothing() -> None:
    assert notice_for(Reply(text="Added.")).visibility == "ephemeral"
    assert notice_for(Reply(duplicate=True, text="x")).visibility == "none"
    assert notice_for(Reply(ignored=True)).visibility == "none"
    assert notice_for(Reply()).visibility == "none"


def test_only_human_thread_replies_without_the_bot_mention_are_chat_turns() -> None:
    reply = {"type": "message", "user": "U1", "ts": "2.0", "thread_ts": "1.0", "text": "hi"}
    assert is_session_candidate(reply, "UBOT")
    assert not is_session_candidate({**reply, "thread_ts": None}, "UBOT")  # top level
    assert not is_session_candidate({**reply, "thread_ts": "2.0"}, "UBOT")  # the thread's root
    assert not is_session_candidate({**reply, "bot_id": "B1"}, "UBOT")
    assert not is_session_candidate({**reply, "subtype": "message_changed"}, "UBOT")
    assert is_session_candidate({**reply, "subtype": "file_share"}, "UBOT")
    assert not is_session_candidate({**reply, "text": "<@UBOT> help"}, "UBOT")  # handled as app_mention
    assert strip_bot_mention("<@UBOT> new VPN drops", "UBOT") == "new VPN drops"


def test_modal_context_round_trips() -> None:
    ctx = ModalContext(action="answer", value={"session_id": "s", "item_id": "i"}, team_id="T", channel_id="C",
                       thread_ts="1.2", user_id="U", input_name="text")
    assert ModalContext.decode(ctx.encode()) == ctx


def test_token_cipher_encrypts_with_a_key_and_reads_plain_legacy_rows() -> None:
    cipher = TokenCipher(SecretBox(generate_key()))
    sealed = cipher.seal(BOT)
    assert sealed.startswith(ENCRYPTED_PREFIX) and BOT not in sealed
    assert cipher.open(sealed) == BOT and cipher.seal(sealed) == sealed and cipher.open(BOT) == BOT
    assert TokenCipher(None).seal(BOT) == BOT
    with pytest.raises(RuntimeError, match="FLOWPILOT_SECRET_KEY"):
        TokenCipher(None).open(sealed)


async def test_pacer_spaces_posts_to_one_channel_and_not_across_channels() -> None:
    now = [100.0]
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(round(seconds, 3))
        now[0] += seconds

    pacer = ChannelPacer(interval_s=1.0, clock=lambda: now[0], sleep=fake_sleep)
    async with pacer.turn("T:C1"):
        now[0] += 0.2
    async with pacer.turn("T:C2"):
        pass
    async with pacer.turn("T:C1"):
        pass
    assert waits == [1.0]


def test_split_text_keeps_code_blocks_renderable() -> None:
    text = "intro\n```\n" + "a line of code\n" * 500 + "```\nend"
    pieces = split_text(text, 3000)
    assert len(pieces) > 1 and all(len(p) <= 3000 for p in pieces)
    assert all(p.count("```") % 2 == 0 for p in pieces)
    assert "".join(pieces).count("a line of code") == 500
