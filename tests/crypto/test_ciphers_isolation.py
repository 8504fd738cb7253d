"""A token only opens in the row, column and organization it was sealed for."""

from __future__ import annotations

import base64

import pytest

from tests.support.databases import BOTH_BACKENDS
from tui_migrator.common.errors import DecryptionFailed
from tui_migrator.crypto.ciphers import RowContext
from tui_migrator.crypto.tokens import Token, parse_token
from tui_migrator.service.facade import MigratorService

pytestmark = BOTH_BACKENDS

ORG_A = "org_charite_berlin"
ORG_B = "org_karolinska_stockholm"
HOME = RowContext("demographics", "last_name", (42,), ORG_A)


@pytest.fixture
def sealed(service: MigratorService) -> str:
    return service.value_cipher().encrypt("Müller", HOME)


@pytest.mark.parametrize(
    "elsewhere",
    [
        RowContext("demographics", "last_name", (43,), ORG_A),  # another row
        RowContext("demographics", "first_name", (42,), ORG_A),  # another column
        RowContext("emergency_contacts", "last_name", (42,), ORG_A),  # another table
        RowContext("demographics", "last_name", ("42",), ORG_A),  # same key, other type
    ],
    ids=["row", "column", "table", "key-type"],
)
def test_token_copied_elsewhere_fails_to_decrypt(
    service: MigratorService, sealed: str, elsewhere: RowContext
) -> None:
    with pytest.raises(DecryptionFailed, match="does not decrypt"):
        service.value_cipher().decrypt(sealed, elsewhere)


def test_token_copied_to_another_organization_fails(service: MigratorService, sealed: str) -> None:
    with pytest.raises(DecryptionFailed, match="organizations cannot read each other"):
        service.value_cipher().decrypt(sealed, RowContext("demographics", "last_name", (42,), ORG_B))


def test_organizations_get_distinct_keys_and_cannot_open_each_others_tokens(service: MigratorService) -> None:
    cipher = service.value_cipher()
    token_a = parse_token(cipher.encrypt("same", HOME))
    token_b = parse_token(cipher.encrypt("same", RowContext("demographics", "last_name", (42,), ORG_B)))
    assert token_a is not None and token_b is not None
    assert token_a.key_id != token_b.key_id
    # Relabel organization B's ciphertext with organization A's key id: A's key cannot open it.
    forged = str(Token(key_id=token_a.key_id, nonce=token_b.nonce, ciphertext=token_b.ciphertext))
    with pytest.raises(DecryptionFailed):
        cipher.decrypt(forged, HOME)


def test_altered_ciphertext_fails(service: MigratorService, sealed: str) -> None:
    token = parse_token(sealed)
    assert token is not None
    flipped = bytes([token.ciphertext[0] ^ 1]) + token.ciphertext[1:]
    with pytest.raises(DecryptionFailed):
        service.value_cipher().decrypt(str(Token(token.key_id, token.nonce, flipped)), HOME)


def test_unknown_key_id_is_a_clear_error(service: MigratorService, sealed: str) -> None:
    token = parse_token(sealed)
    assert token is not None
    with pytest.raises(DecryptionFailed, match="dek_0000000000000000.*not in this database"):
        service.value_cipher().decrypt(
            str(Token("dek_0000000000000000", token.nonce, token.ciphertext)), HOME
        )


def test_same_value_gives_different_tokens(service: MigratorService) -> None:
    cipher = service.value_cipher()
    assert cipher.encrypt("Parkinson", HOME) != cipher.encrypt("Parkinson", HOME)


def test_digest_is_keyed_and_bound_to_its_row(service: MigratorService) -> None:
    cipher = service.value_cipher()
    birth_date = "1951-04-09"
    digest = cipher.digest(birth_date, HOME)
    assert digest == cipher.digest(birth_date, HOME)
    assert digest != cipher.digest(birth_date, RowContext("demographics", "last_name", (43,), ORG_A))
    import hashlib

    assert digest != hashlib.sha256(birth_date.encode()).hexdigest()
    assert len(base64.b16decode(digest.upper())) == 32
