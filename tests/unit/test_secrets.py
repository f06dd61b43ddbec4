"""Secrets at rest: PSA credentials are stored encrypted and only the right key opens them."""
from __future__ import annotations

import base64
import json

import pytest
from cryptography.fernet import Fernet

from storage.secrets import SecretBox, SecretKeyError, generate_key, is_fernet_key

CREDENTIALS = {
    "company_id": "contoso",
    "public_key": "pUbL1cK3y",
    "private_key": "s3cr3t-Priv4te-KEY",
    "note": "Zürich office — ключ",
}


def test_round_trip_returns_the_same_credentials():
    box = SecretBox(generate_key())

    assert box.decrypt_json(box.encrypt_json(CREDENTIALS)) == CREDENTIALS


def test_ciphertext_reveals_no_plaintext_and_differs_each_time():
    box = SecretBox(generate_key())

    first, second = box.encrypt_json(CREDENTIALS), box.encrypt_json(CREDENTIALS)

    assert first != second  # a random IV per token: equal secrets are not recognisable
    decoded = base64.urlsafe_b64decode(first.encode())
    for value in (*CREDENTIALS.values(), json.dumps(CREDENTIALS)):
        assert value not in first
        assert value.encode() not in decoded


def test_a_wrong_key_fails_with_a_clear_message():
    token = SecretBox(generate_key()).encrypt_json(CREDENTIALS)

    with pytest.raises(SecretKeyError) as error:
        SecretBox(generate_key()).decrypt_json(token)

    assert "FLOWPILOT_SECRET_KEY is not the key it was encrypted with" in str(error.value)


def test_an_altered_token_is_refused():
    box = SecretBox(generate_key())
    token = box.encrypt_json(CREDENTIALS)
    raw = bytearray(base64.urlsafe_b64decode(token))
    raw[40] ^= 0x01
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode()

    with pytest.raises(SecretKeyError):
        box.decrypt_json(tampered)
    with pytest.raises(SecretKeyError):
        box.decrypt_json("not a token at all")


def test_a_fernet_key_is_used_as_is():
    key = generate_key()

    token = SecretBox(key).encrypt_json(CREDENTIALS)

    assert is_fernet_key(key)
    assert json.loads(Fernet(key.encode()).decrypt(token.encode())) == CREDENTIALS


def test_a_passphrase_works_and_every_replica_derives_the_same_key():
    passphrase = "correct horse battery staple"

    token = SecretBox(passphrase).encrypt_json(CREDENTIALS)

    assert not is_fernet_key(passphrase)
    assert SecretBox(passphrase).decrypt_json(token) == CREDENTIALS
    assert SecretBox(f"  {passphrase}\n").decrypt_json(token) == CREDENTIALS  # env-file newline
    with pytest.raises(SecretKeyError):
        SecretBox("correct horse battery stapler").decrypt_json(token)


def test_values_written_before_a_key_rotation_still_open():
    old_key, new_key = generate_key(), "new deployment passphrase"
    old_token = SecretBox(old_key).encrypt_json(CREDENTIALS)
    rotated_box = SecretBox(new_key, previous_keys=[old_key])

    rotated = rotated_box.rotate(old_token)

    assert rotated_box.decrypt_json(old_token) == CREDENTIALS
    assert SecretBox(new_key).decrypt_json(rotated) == CREDENTIALS


def test_an_empty_key_is_refused_and_the_key_is_never_shown():
    with pytest.raises(ValueError, match="FLOWPILOT_SECRET_KEY is empty"):
        SecretBox("   ")

    key = generate_key()
    assert key not in repr(SecretBox(key))


def test_only_json_objects_are_stored():
    box = SecretBox(generate_key())

    with pytest.raises(TypeError):
        box.encrypt_json(["company", "key"])  # type: ignore[arg-type]
