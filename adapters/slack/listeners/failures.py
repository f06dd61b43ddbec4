"""A listener that fails after the ack still owes the person an answer (never a silent failure)."""
from __future__ import annotations

import logging

from adapters.slack.replies import Responder, Target

log = logging.getLogger(__name__)

SORRY = ("Something went wrong on FlowPilot's side and your request was not completed. "
         "Please try again in a moment.")


async def report_crash(responder: Responder, target: Target | None, what: str) -> None:
    log.exception("slack: %s failed", what)
    if target is not None:
        try:
            await responder.ephemeral(target, SORRY)
        except Exception:
            log.exception("slack: could not report the failure")
