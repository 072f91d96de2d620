import pytest
from cryptography.fernet import Fernet, InvalidToken
from notifications.adapters.crypto import PiiVault
from pydantic import SecretStr

OLD, NEW = SecretStr(Fernet.generate_key().decode()), SecretStr(Fernet.generate_key().decode())
HASH = SecretStr("hash-key-of-sufficient-length-0123456789")


def test_encrypts_non_deterministically_but_indexes_deterministically() -> None:
    vault = PiiVault([OLD], HASH)
    a, b = vault.encrypt("+263771234567"), vault.encrypt("+263771234567")
    assert a != b
    assert "263771234567" not in a
    assert vault.decrypt(a) == "+263771234567"
    assert vault.blind_index("Head@School.example ") == vault.blind_index("head@school.example")
    assert vault.blind_index("+263771234567") != PiiVault([OLD], SecretStr("another-hash-key-000000000")).blind_index(
        "+263771234567"
    )


def test_rotation_moves_tokens_to_the_new_key() -> None:
    old_token = PiiVault([OLD], HASH).encrypt("secret")
    both = PiiVault([NEW, OLD], HASH)
    assert both.decrypt(old_token) == "secret"
    assert not both.is_current(old_token)
    rotated = both.rotate(old_token)
    assert both.is_current(rotated)
    assert PiiVault([NEW], HASH).decrypt(rotated) == "secret"
    with pytest.raises(InvalidToken):
        PiiVault([NEW], HASH).decrypt(old_token)
