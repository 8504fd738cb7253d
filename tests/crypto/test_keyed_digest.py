"""Row and value digests are HMAC-SHA-256, made from a keyed prototype copied per message
(ciphers.keyed_sha256) rather than the one-shot ``hmac.digest``, which lets go of the GIL for
every message and then waits out other threads for it. The bytes must not change: every row
sealed before is verified against them."""

from __future__ import annotations

import hmac
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui_migrator.crypto.ciphers import ValueCipher, _hex_mac, keyed_sha256
from tui_migrator.crypto.codec import pack_values
from tui_migrator.crypto.data_keys import ThrowawayKeys
from tui_migrator.crypto.keys import MasterKey, Purpose

MASTER = MasterKey(os.urandom(32), "test")


def test_it_is_hmac_sha256_as_published() -> None:
    # RFC 4231, test case 2.
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert _hex_mac(keyed_sha256(b"Jefe"), b"what do ya want for nothing?") == expected


# Messages past 2 KiB too, where hashlib hashes without the GIL.
@given(key=st.binary(min_size=1, max_size=80), messages=st.lists(st.binary(max_size=5000), max_size=4))
def test_each_message_gets_the_one_shot_digest_whatever_came_before(
    key: bytes, messages: list[bytes]
) -> None:
    keyed = keyed_sha256(key)
    for message in messages:
        assert _hex_mac(keyed, message) == hmac.digest(key, message, "sha256").hex()


def test_no_digest_of_a_row_uses_the_one_shot_form(monkeypatch: pytest.MonkeyPatch) -> None:
    cipher = ValueCipher(ThrowawayKeys(), MASTER, actor="test")
    key, organization = (7,), "org_1"

    def one_shot(*_args: object, **_kwargs: object) -> bytes:
        raise AssertionError("hmac.digest: lets go of the GIL for every message")

    monkeypatch.setattr(hmac, "digest", one_shot)
    cipher.digest_row("t", key, organization, ["a", None, 3])
    cipher.digest_encoded_cells("t", key, organization, {"c": b"v"})
    cipher.digest_tokens("t", key, organization, {"c": "tok"})
    cipher.table_sealer("t").seal(key, organization, pack_values(key), [("c", b"sv")], digests=True)


def test_a_worker_processes_cipher_digests_as_the_run_does() -> None:
    cipher = ValueCipher(ThrowawayKeys(), MASTER, actor="test")
    worker = ValueCipher.with_digest_key(ThrowawayKeys(), MASTER.derive(Purpose.VALUE_DIGEST), actor="test")
    assert worker.digest_row("t", (1,), None, ["x"]) == cipher.digest_row("t", (1,), None, ["x"])
    # Sealed in a worker process (its keys as the run hands them over), digested as the run does.
    cipher.prepare(["org_1"])
    sealing_worker = cipher.worker_keys(["org_1"], None).cipher()
    sealed = sealing_worker.table_sealer("t").seal(
        (1,), "org_1", pack_values((1,)), [("c", b"sv")], digests=True
    )
    assert sealed.digest == cipher.digest_encoded_cells("t", (1,), "org_1", {"c": b"sv"})
    assert sealed.tokens_digest == cipher.digest_tokens("t", (1,), "org_1", {"c": sealed.tokens[0]})
