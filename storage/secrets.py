"""Encryption of secrets at rest (PSA credentials) with Fernet (AES-128-CBC + HMAC-SHA256).

`FLOWPILOT_SECRET_KEY` may be either
- a Fernet key (44 characters of url-safe base64 encoding 32 bytes, as printed by
  `generate_key()`): used as is; this is the recommended form, or
- any other non-empty passphrase: stretched into a Fernet key with **scrypt** (n=2**15, r=8,
  p=1; about 32 MiB and ~0.1 s, once per process).

Why scrypt rather than HKDF: HKDF only expands keys that are already high-entropy; an operator's
passphrase may not be, and whoever holds a database dump could then try guesses at full hash
speed. scrypt makes every guess cost memory and time.

Why a fixed application salt: the key must be re-derivable from the environment variable alone
in every replica and after every restart, and there is one key per deployment, so a per-record
salt has nowhere to live. Fernet itself adds a random IV to every token, so equal plaintexts
still encrypt differently. The salt is application-specific so generic precomputed tables do not
apply.

Leading and trailing whitespace of the key is ignored (environment files often add a newline).
Old keys can be listed in `previous_keys` to decrypt values written before a key rotation; new
values are always encrypted with the first key.
"""
from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

_APP_SALT = b"flowpilot-chat/secret-box/v1"
_SCRYPT_N = 2**15
_SCRYPT_R = 8
_SCRYPT_P = 1


class SecretKeyError(ValueError):
    """A stored secret could not be decrypted: wrong key, or the value was altered."""


def generate_key() -> str:
    """A fresh random Fernet key, suitable for FLOWPILOT_SECRET_KEY."""
    return Fernet.generate_key().decode("ascii")


def is_fernet_key(key: str) -> bool:
    candidate = key.strip()
    if len(candidate) != 44:
        return False
    try:
        raw = base64.urlsafe_b64decode(candidate.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return False
    # Only the canonical encoding counts, so a passphrase that merely decodes is not mistaken.
    return len(raw) == 32 and base64.urlsafe_b64encode(raw).decode("ascii") == candidate


def derive_fernet_key(key: str) -> bytes:
    """The Fernet key for a FLOWPILOT_SECRET_KEY value (see the module docstring)."""
    candidate = key.strip() if isinstance(key, str) else ""
    if not candidate:
        raise ValueError("FLOWPILOT_SECRET_KEY is empty; set it to a key from generate_key() or a passphrase.")
    if is_fernet_key(candidate):
        return candidate.encode("ascii")
    stretched = Scrypt(salt=_APP_SALT, length=32, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P).derive(
        candidate.encode("utf-8")
    )
    return base64.urlsafe_b64encode(stretched)


class SecretBox:
    """Encrypts JSON objects to opaque text tokens and back."""

    def __init__(self, key: str, *, previous_keys: Sequence[str] = ()) -> None:
        current = Fernet(derive_fernet_key(key))
        older = [Fernet(derive_fernet_key(old)) for old in previous_keys]
        self._fernet = MultiFernet([current, *older])

    def __repr__(self) -> str:
        return "SecretBox(key=<hidden>)"

    def encrypt_json(self, data: Mapping[str, Any]) -> str:
        if not isinstance(data, Mapping):
            raise TypeError("encrypt_json takes a JSON object (a mapping)")
        plaintext = json.dumps(dict(data), separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt_json(self, token: str) -> dict[str, Any]:
        try:
            plaintext = self._fernet.decrypt(token.encode("ascii") if isinstance(token, str) else token)
        except (InvalidToken, UnicodeEncodeError, TypeError):
            raise SecretKeyError(
                "Could not decrypt a stored secret: FLOWPILOT_SECRET_KEY is not the key it was "
                "encrypted with (or the stored value was altered). Restore the original key, or "
                "re-enter the PSA credentials."
            ) from None
        value = json.loads(plaintext.decode("utf-8"))
        if not isinstance(value, dict):
            raise SecretKeyError("The stored secret is not a JSON object.")
        return value

    def rotate(self, token: str) -> str:
        """Re-encrypt a token (possibly made with a previous key) under the current key."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise SecretKeyError(
                "Could not re-encrypt a stored secret: none of the configured keys opens it."
            ) from None
