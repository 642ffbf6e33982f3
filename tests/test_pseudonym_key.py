"""Where the pseudonymisation key comes from: the environment, or a Prefect Secret block."""

from __future__ import annotations

import pytest

from transforms.pseudonymise import BLOCK_VARIABLE, KEY_VARIABLE, PseudonymKeyError, pseudonym_key_from_env


def test_key_from_a_prefect_secret_block(prefect_backend, monkeypatch):
    from prefect.blocks.system import Secret

    Secret(value="k" * 40).save("pseudonym-key-test", overwrite=True)
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    monkeypatch.setenv(BLOCK_VARIABLE, "pseudonym-key-test")
    assert pseudonym_key_from_env() == b"k" * 40


def test_missing_block_is_a_clear_error(prefect_backend, monkeypatch):
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    monkeypatch.setenv(BLOCK_VARIABLE, "no-such-block")
    with pytest.raises(PseudonymKeyError, match="'no-such-block'"):
        pseudonym_key_from_env()


def test_no_key_anywhere_stops(monkeypatch):
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    monkeypatch.delenv(BLOCK_VARIABLE, raising=False)
    with pytest.raises(PseudonymKeyError, match="not set"):
        pseudonym_key_from_env()
