"""Prompt text and input builders. Pure: no I/O.

- chat.py       the chat system prompt, the per-turn reminder and the per-turn session-state builder
- artifacts.py  prompts of the one-shot generators (resolution note, escalation package and summary,
                fact synthesis, audience variants, status update)
- bundles.py    the generator inputs, built from task-lane state (never the transcript)
- fallbacks.py  deterministic artifacts for when the model is unavailable
- schemas.py    structured-output models and the tolerant fact parser

Every prompt constant is an UPPERCASE str ending in _PROMPT, _SCHEMA, _PROTOCOL, _FORMAT or _CONTEXT,
uses <placeholder> values only, and is checked by tests/unit/test_prompt_guardrail.py.
"""
