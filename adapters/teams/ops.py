"""Bot Connector operations the channel adapter needs beyond `TeamsSender`: opening a 1:1 chat.

Same retry rules as the other operations (sender.py); creating a 1:1 conversation that already
exists returns the existing one, so a retried create is harmless."""
from __future__ import annotations

from typing import Any

from botbuilder.core import TurnContext
from botbuilder.schema import ChannelAccount, ConversationParameters

from adapters.teams.sender import TEAMS_CHANNEL, TeamsSender


class TeamsOps(TeamsSender):
    @property
    def app_id(self) -> str:
        return self._app_id

    async def create_personal_conversation(self, service_url: str, tenant_id: str, user_id: str) -> dict[str, Any]:
        """The bot's 1:1 chat with `user_id` (a `29:` channel account id); returns its reference dict.

        Works when the app is installed for that person (Teams answers 403 otherwise)."""
        if not (service_url and tenant_id and user_id):
            raise ValueError("service_url, tenant_id and user_id are all required to open a 1:1 chat")

        async def create() -> dict[str, Any]:
            captured: dict[str, Any] = {}

            async def on_created(turn_context: TurnContext) -> None:
                captured["reference"] = TurnContext.get_conversation_reference(turn_context.activity)

            parameters = ConversationParameters(
                is_group=False,
                bot=ChannelAccount(id=f"28:{self._app_id}"),
                members=[ChannelAccount(id=user_id)],
                channel_data={"tenant": {"id": tenant_id}},
                tenant_id=tenant_id,
            )
            await self._adapter.create_conversation(
                self._app_id, on_created, parameters, channel_id=TEAMS_CHANNEL, service_url=service_url
            )
            reference = captured["reference"]
            reference.activity_id = None  # the create result's id is not a message to reply to
            reference.user = ChannelAccount(id=user_id)
            serialized = reference.serialize()
            serialized.setdefault("conversation", {})["conversationType"] = "personal"
            return serialized

        return await self._with_retries("create_personal", create)
