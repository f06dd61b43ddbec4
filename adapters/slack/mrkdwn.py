"""Markdown (what the AI and the core write) → Slack mrkdwn, and splitting long text into pieces
that fit a section block. Pure functions.

Slack mrkdwn has no headings, uses single `*` for bold, writes links as `<url|text>`, and needs
`&`, `<` and `>` escaped (otherwise `<placeholder>` would vanish or turn into a broken link). Code
spans and fenced blocks are kept as they are (escaped only). A single-star `*word*` is left alone:
the core's own notices use it for bold (Slack style), and for AI text (markdown italics) bold is
a harmless reading."""
from __future__ import annotations

import re

SECTION_LIMIT = 3000
_FENCE = "```"

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[*+-]\s+")
_BOLD_STARS = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_BOLD_UNDERSCORES = re.compile(r"(?<!\w)__(?=\S)(.+?)(?<=\S)__(?!\w)")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(([^)\s]+)\)")
_LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s]+)\)")
_INLINE_CODE = re.compile(r"(`[^`\n]+`)")


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(url: str, label: str) -> str:
    label = label.replace("|", "¦").replace("*", "").strip() or url
    return f"<{url}|{label}>"


def _inline(text: str) -> str:
    """One line of prose (no code): escape, then rewrite the markdown we know."""
    text = escape(text)
    text = _IMAGE.sub(lambda m: _link(m.group(2), m.group(1) or "image"), text)
    text = _LINK.sub(lambda m: _link(m.group(2), m.group(1)), text)
    text = _BOLD_STARS.sub(r"*\1*", text)
    text = _BOLD_UNDERSCORES.sub(r"*\1*", text)
    return _STRIKE.sub(r"~\1~", text)


def _prose_line(line: str) -> str:
    heading = _HEADING.match(line)
    if heading:
        inner = heading.group(1).replace("**", "").replace("__", "")
        return f"*{_inline(inner).strip('*')}*"
    bullet = _BULLET.match(line)
    if bullet:
        line = bullet.group(1) + "• " + line[bullet.end():]
    parts = _INLINE_CODE.split(line)
    return "".join(escape(p) if i % 2 else _inline(p) for i, p in enumerate(parts))


def to_mrkdwn(markdown: str) -> str:
    out: list[str] = []
    in_code = False
    for line in (markdown or "").replace("\r\n", "\n").split("\n"):
        if line.strip().startswith(_FENCE):
            in_code = not in_code
            out.append(_FENCE)  # Slack ignores a language tag after the fence: drop it
            continue
        out.append(escape(line) if in_code else _prose_line(line))
    if in_code:
        out.append(_FENCE)
    return "\n".join(out)


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, with an ellipsis when cut."""
    text = text or ""
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + "…"


def split_text(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Pieces of at most `limit` characters, cut at line ends where possible. A piece cut inside
    a code block is closed and the next one reopens it, so every piece renders on its own."""
    if len(text) <= limit:
        return [text] if text else []
    budget = limit - len(_FENCE) - 1  # room to close a fence
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    in_code = False

    def flush() -> None:
        nonlocal current, size
        if _has_content(current):
            pieces.append("\n".join(current) + ("\n" + _FENCE if in_code else ""))
        current = [_FENCE] if in_code else []
        size = len(_FENCE) + 1 if in_code else 0

    for line in text.split("\n"):
        while len(line) > budget - size:
            room = budget - size
            if room < 200 and current:  # start a fresh piece rather than splitting a line finely
                flush()
                continue
            cut = line.rfind(" ", 0, room)
            cut = cut if cut > room // 2 else room
            current.append(line[:cut])
            line = line[cut:].lstrip(" ")
            flush()
        current.append(line)
        size += len(line) + 1
        if line.strip().startswith(_FENCE):
            in_code = not in_code
    if _has_content(current):
        pieces.append("\n".join(current))
    return pieces


def _has_content(lines: list[str]) -> bool:
    """More than fences and blank lines (a piece that would render as an empty code block)."""
    return any(line.strip() and line.strip() != _FENCE for line in lines)
