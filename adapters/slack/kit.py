"""A small Block Kit builder over slack_sdk's block classes that keeps every Slack limit: text is
split or clipped before it reaches a block, button labels are cut to 75 characters, action ids
are unique within a message, and `finish()` validates every block and caps the count."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock, Block, ButtonElement, ContextBlock, DividerBlock, HeaderBlock, MarkdownTextObject,
    PlainTextObject, SectionBlock,
)

from adapters.slack.mrkdwn import SECTION_LIMIT, clip, split_text
from adapters.slack.payloads import action_id, encode_button
from core.views import Button

MAX_BLOCKS = 50
HEADER_LIMIT = 150
CONTEXT_LIMIT = 2000
BUTTON_TEXT_LIMIT = 75
ACTIONS_PER_BLOCK = 25
FALLBACK_TEXT_LIMIT = 3000


@dataclass
class Rendered:
    """A message: `blocks` for display, `text` for notifications and as the fallback."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


class Kit:
    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self._actions = 0

    def __len__(self) -> int:
        return len(self.blocks)

    def header(self, text: str) -> None:
        self.blocks.append(HeaderBlock(text=PlainTextObject(text=clip(text.strip() or "FlowPilot", HEADER_LIMIT))))

    def section(self, mrkdwn: str) -> None:
        for piece in split_text(mrkdwn, SECTION_LIMIT):
            self.blocks.append(SectionBlock(text=MarkdownTextObject(text=piece)))

    def context(self, mrkdwn: str) -> None:
        if mrkdwn.strip():
            self.blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip(mrkdwn, CONTEXT_LIMIT))]))

    def divider(self) -> None:
        self.blocks.append(DividerBlock())

    def buttons(self, buttons: list[Button], labels: list[str] | None = None) -> None:
        """One actions block per 25 buttons; `labels` overrides the shown text (compact layouts)."""
        elements = []
        for pos, button in enumerate(buttons):
            self._actions += 1
            label = labels[pos] if labels is not None else button.label
            elements.append(ButtonElement(text=PlainTextObject(text=clip(label, BUTTON_TEXT_LIMIT)),
                                          action_id=action_id(button.action.value, self._actions),
                                          value=encode_button(button), style=button.style))
        for start in range(0, len(elements), ACTIONS_PER_BLOCK):
            self.blocks.append(ActionsBlock(elements=elements[start:start + ACTIONS_PER_BLOCK]))

    def finish(self, text: str, limit: int = MAX_BLOCKS) -> Rendered:
        """`text` is mrkdwn (Slack formats the fallback too): callers escape what they did not write."""
        blocks = self.blocks
        if len(blocks) > limit:  # last resort: the renderers choose compact layouts long before this
            hidden = len(blocks) - (limit - 1)
            blocks = blocks[: limit - 1] + [ContextBlock(elements=[MarkdownTextObject(
                text=f"_…{hidden} more block(s) not shown: Slack shows at most {limit} per message._")])]
        return Rendered(text=clip(text.strip() or "FlowPilot", FALLBACK_TEXT_LIMIT),
                        blocks=[b.to_dict() for b in blocks])
