"""Markdown → the Adaptive Card elements Teams renders (PLATFORMS §2.6, DOMAIN §11.4).

A TextBlock understands a small markdown subset: **bold**, _italic_, `- ` / `1. ` lists and
[links](url). It has no headings and no code, and it cannot turn markdown off. So:
* `#`…`######` headings become a bold line;
* fenced code becomes a monospace RichTextBlock (TextRuns are literal: `*` in a command stays `*`);
* `*`, `+` and `•` bullets become `- `, `__bold__` becomes `**bold**`;
* each paragraph, list or heading is its own TextBlock, so spacing does not depend on how the
  client treats single newlines.
The original markdown is never changed for the PSA; this is display only."""
from __future__ import annotations

import re
from typing import Any

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_BULLET = re.compile(r"^(\s*)[*+•]\s+")
_UNDERSCORE_BOLD = re.compile(r"__(.+?)__")


def text_block(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def code_block(code: str) -> dict[str, Any]:
    """Literal monospace text (a TextRun is not parsed as markdown)."""
    return {"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": code, "fontType": "Monospace"}]}


def _inline(line: str) -> str:
    return _UNDERSCORE_BOLD.sub(r"**\1**", _BULLET.sub(r"\1- ", line))


def _heading(title: str) -> str:
    plain = title.strip().strip("*_").strip()
    return f"**{plain}**" if plain else ""


def to_elements(markdown: str) -> list[dict[str, Any]]:
    elements: list[dict[str, Any]] = []
    paragraph: list[str] = []
    code: list[str] | None = None

    def flush() -> None:
        if paragraph:
            elements.append(text_block("\n".join(paragraph)))
            paragraph.clear()

    for line in (markdown or "").splitlines():
        if code is not None:
            if _FENCE.match(line):
                elements.append(code_block("\n".join(code)))
                code = None
            else:
                code.append(line)
            continue
        if _FENCE.match(line):
            flush()
            code = []
            continue
        heading = _HEADING.match(line)
        if heading:
            flush()
            title = _heading(heading.group(1))
            if title:
                elements.append(text_block(title))
            continue
        if not line.strip():
            flush()
            continue
        paragraph.append(_inline(line.rstrip()))
    if code is not None:  # an unclosed fence still shows its content
        elements.append(code_block("\n".join(code)))
    flush()
    return elements
