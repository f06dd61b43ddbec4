"""What a Slack install means for FlowPilot (DOMAIN §11.1): the workspace is linked to an account
(created on the first install, kept on a reinstall) and the installing user becomes an admin."""
from __future__ import annotations

import logging
from typing import Any

from slack_sdk.oauth.installation_store import Installation

from adapters.slack.profiles import Profiles
from core.identity import identify
from core.model import Platform, Role

log = logging.getLogger(__name__)


async def link_installation(store: Any, profiles: Profiles, installation: Installation) -> None:
    team_id = installation.team_id or installation.enterprise_id
    if not team_id:
        raise ValueError("The Slack install carried no workspace id.")
    account_id = await store.ensure_workspace(Platform.SLACK.value, team_id, installation.team_name)
    profile = await profiles.lookup(team_id, installation.user_id, installation.bot_token)
    async with store.unit(account_id) as uow:
        person = await identify(uow, Platform.SLACK, team_id, installation.user_id, profile.display_name,
                                profile.email)
        await uow.people.set_role(person.id, Role.ADMIN)
    log.info("slack: installed", extra={"team_id": team_id, "account_id": str(account_id),
                                        "installer": installation.user_id})
