"""Encryption at rest: sealed codes open only with the right key, the right row, intact bytes."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.exceptions import InvalidTag

from codeshelf.kit.vault import UnknownKeyError, Vault

CODE = "ABCD-EFGH-IJ12"
OLD_SECRET = "the-secret-before-rotation"
NEW_SECRET = "the-secret-after-rotation"


def sealed_row(vault: Vault, code: str = CODE) -> tuple[bytes, bytes, str]:
    """What the codes table stores for one code: sealed bytes, fingerprint, key id."""
    fingerprint = vault.fingerprint(code)
    return vault.seal(code, fingerprint), fingerprint, vault.key_id


def test_a_sealed_code_opens_to_the_same_code() -> None:
    vault = Vault(NEW_SECRET)
    sealed, fingerprint, key_id = sealed_row(vault)
    assert vault.open(sealed, fingerprint, key_id) == CODE


def test_a_vault_built_again_from_the_same_secret_opens_earlier_rows() -> None:
    sealed, fingerprint, key_id = sealed_row(Vault(NEW_SECRET))
    assert Vault(NEW_SECRET).open(sealed, fingerprint, key_id) == CODE


def test_the_sealed_bytes_hold_no_plaintext() -> None:
    sealed, _, _ = sealed_row(Vault(NEW_SECRET))
    for form in (CODE, CODE.replace("-", ""), CODE.lower()):
        assert form.encode() not in sealed
    assert b"IJ12" not in sealed


def test_sealing_the_same_code_twice_gives_different_ciphertexts() -> None:
    vault = Vault(NEW_SECRET)
    fingerprint = vault.fingerprint(CODE)
    assert vault.seal(CODE, fingerprint) != vault.seal(CODE, fingerprint)


def test_an_unknown_key_id_is_refused() -> None:
    vault = Vault(NEW_SECRET)
    sealed, fingerprint, _ = sealed_row(vault)
    with pytest.raises(UnknownKeyError):
        vault.open(sealed, fingerprint, "000000000000")


def test_rows_sealed_under_another_secret_do_not_open() -> None:
    sealed, fingerprint, key_id = sealed_row(Vault(OLD_SECRET))
    with pytest.raises(UnknownKeyError):
        Vault(NEW_SECRET).open(sealed, fingerprint, key_id)


@pytest.mark.parametrize("position", [0, 12, 20, -1])  # nonce, ciphertext, ..., GCM tag
def test_tampered_ciphertext_is_refused(position: int) -> None:
    vault = Vault(NEW_SECRET)
    sealed, fingerprint, key_id = sealed_row(vault)
    tampered = bytearray(sealed)
    tampered[position] ^= 0x01
    with pytest.raises(InvalidTag):
        vault.open(bytes(tampered), fingerprint, key_id)


def test_truncated_ciphertext_is_refused() -> None:
    vault = Vault(NEW_SECRET)
    sealed, fingerprint, key_id = sealed_row(vault)
    with pytest.raises(InvalidTag):
        vault.open(sealed[:-1], fingerprint, key_id)


def test_a_sealed_code_does_not_open_under_another_rows_fingerprint() -> None:
    """The fingerprint is bound as associated data: two rows cannot swap their ciphertexts."""
    vault = Vault(NEW_SECRET)
    sealed_a, fingerprint_a, key_id = sealed_row(vault, "AAAA-AAAA-AAAA")
    sealed_b, fingerprint_b, _ = sealed_row(vault, "BBBB-BBBB-BBBB")
    with pytest.raises(InvalidTag):
        vault.open(sealed_a, fingerprint_b, key_id)
    with pytest.raises(InvalidTag):
        vault.open(sealed_b, fingerprint_a, key_id)


def test_after_rotation_rows_sealed_under_the_previous_secret_still_open() -> None:
    old = Vault(OLD_SECRET)
    old_row = sealed_row(old, "OLDO-LDOL-DOLD")
    rotated = Vault(NEW_SECRET, previous_secrets=[OLD_SECRET])
    new_row = sealed_row(rotated, "NEWN-EWNE-WNEW")
    assert rotated.key_id != old.key_id
    assert new_row[2] == rotated.key_id  # new rows are sealed with the new secret
    assert rotated.open(*old_row) == "OLDO-LDOL-DOLD"
    assert rotated.open(*new_row) == "NEWN-EWNE-WNEW"
    with pytest.raises(UnknownKeyError):
        old.open(*new_row)


def test_a_vault_knows_whether_earlier_secrets_may_have_fingerprinted_stock() -> None:
    assert not Vault(NEW_SECRET).rotated
    assert Vault(NEW_SECRET).earlier_fingerprints(CODE) == []
    rotated = Vault(NEW_SECRET, previous_secrets=[OLD_SECRET])
    assert rotated.rotated
    assert rotated.earlier_fingerprints(CODE) == [Vault(OLD_SECRET).fingerprint(CODE)]


def test_the_key_id_names_the_secret_without_revealing_it() -> None:
    assert Vault(NEW_SECRET).key_id == Vault(NEW_SECRET).key_id
    assert Vault(NEW_SECRET).key_id != Vault(OLD_SECRET).key_id
    assert NEW_SECRET[:8] not in Vault(NEW_SECRET).key_id


def test_fingerprints_are_stable_for_one_secret() -> None:
    assert Vault(NEW_SECRET).fingerprint(CODE) == Vault(NEW_SECRET).fingerprint(CODE)
    assert Vault(NEW_SECRET).fingerprint(CODE) != Vault(NEW_SECRET).fingerprint("ABCD-EFGH-IJ13")


def test_fingerprints_are_keyed_by_the_secret() -> None:
    """Without the secret, nobody can confirm a guessed code against the fingerprint column."""
    fingerprint = Vault(NEW_SECRET).fingerprint(CODE)
    assert fingerprint != Vault(OLD_SECRET).fingerprint(CODE)
    assert CODE.encode() not in fingerprint
    assert fingerprint != hashlib.sha256(CODE.encode()).digest()
    assert fingerprint != hashlib.sha256(CODE.replace("-", "").encode()).digest()
    assert len(fingerprint) == 32


def test_open_any_tries_every_configured_key_and_says_which_opened() -> None:
    """What is sealed apart from its record (an evidence file) may be under another configured
    key than the record names, for a moment of a rotation: it still opens."""
    rotated = Vault(NEW_SECRET, previous_secrets=[OLD_SECRET])
    old = Vault(OLD_SECRET)
    sealed = rotated.seal_bytes(b"screenshot", b"sha")
    assert rotated.open_bytes_any(sealed, b"sha", old.key_id) == (b"screenshot", rotated.key_id)
    assert rotated.previous_key_ids == {old.key_id}
    with pytest.raises(InvalidTag):  # bound to other data: no key opens it
        rotated.open_bytes_any(sealed, b"other", old.key_id)
    with pytest.raises(UnknownKeyError):  # no configured key opens it, and the named one is gone
        Vault(NEW_SECRET).open_bytes_any(old.seal_bytes(b"x", b"sha"), b"sha", old.key_id)
