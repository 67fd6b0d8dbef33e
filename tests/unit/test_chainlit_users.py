"""Password hashes of the reference app: what login relies on."""

from __future__ import annotations

import subprocess
import sys

import pytest
from chainlit_users import (
    HashFormatError,
    authenticate,
    hash_password,
    load_users,
    parse_hash,
    parse_users,
    verify_password,
)
from conftest import APP_DIR

# Cheap parameters keep the tests fast; the format is the same.
FAST = {"n": 2**10, "r": 8, "p": 1}


def test_hash_then_verify_round_trip() -> None:
    encoded = hash_password("correct horse", **FAST)
    assert encoded.startswith("scrypt$1024$8$1$")
    assert verify_password("correct horse", encoded)


def test_wrong_password_is_refused() -> None:
    encoded = hash_password("correct horse", **FAST)
    assert not verify_password("correct horse ", encoded)
    assert not verify_password("", encoded)


def test_same_password_gets_a_new_salt_each_time() -> None:
    assert hash_password("pw", **FAST) != hash_password("pw", **FAST)


def test_default_parameters_are_the_strong_ones() -> None:
    stored = parse_hash(hash_password("pw"))
    assert (stored.n, stored.r, stored.p) == (2**15, 8, 1)
    assert len(stored.salt) == 16 and len(stored.key) == 32


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "plaintext-password",
        "bcrypt$10$8$1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5aw",
        "scrypt$1024$8$1$c2FsdHNhbHQ",
        "scrypt$1000$8$1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5aw",
        "scrypt$abc$8$1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5aw",
        f"scrypt${2**22}$8$1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5aw",
        "scrypt$1024$0$1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5aw",
        "scrypt$1024$8$1$not base64!$a2V5a2V5a2V5a2V5a2V5aw",
        "scrypt$1024$8$1$c2FsdA$a2V5a2V5a2V5a2V5a2V5aw",
    ],
)
def test_malformed_hashes_are_refused(encoded: str) -> None:
    with pytest.raises(HashFormatError):
        parse_hash(encoded)
    with pytest.raises(HashFormatError):
        verify_password("anything", encoded)


def test_empty_password_cannot_be_hashed() -> None:
    with pytest.raises(ValueError, match="empty"):
        hash_password("")


def test_users_variable_maps_names_to_hashes() -> None:
    alice, bob = hash_password("a-pw", **FAST), hash_password("b-pw", **FAST)
    users = parse_users(f" alice:{alice} ,bob:{bob},")
    assert users == {"alice": alice, "bob": bob}
    assert authenticate(users, "alice", "a-pw")
    assert not authenticate(users, "alice", "b-pw")
    assert not authenticate(users, "carol", "a-pw")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alice", "not NAME:HASH"),
        ("alice:", "not NAME:HASH"),
        ("alice:secret", "bad password hash"),
    ],
)
def test_bad_user_entries_fail_at_startup(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_users(text)


def test_bad_entry_error_does_not_echo_the_value() -> None:
    with pytest.raises(ValueError) as info:
        parse_users("alice:my-plain-password")
    assert "my-plain-password" not in str(info.value)


def test_duplicate_user_is_refused() -> None:
    encoded = hash_password("pw", **FAST)
    with pytest.raises(ValueError, match="twice"):
        parse_users(f"alice:{encoded},alice:{encoded}")


def test_users_come_from_variable_and_file(tmp_path) -> None:
    alice, bob = hash_password("a-pw", **FAST), hash_password("b-pw", **FAST)
    users_file = tmp_path / "users"
    users_file.write_text(f"# one per line\nbob:{bob}\n", encoding="utf-8")
    users = load_users({"CHAINLIT_USERS": f"alice:{alice}", "CHAINLIT_USERS_FILE": str(users_file)})
    assert set(users) == {"alice", "bob"}


def test_cli_prints_a_hash_that_verifies() -> None:
    result = subprocess.run(
        [sys.executable, str(APP_DIR / "chainlit_users.py")],
        input="from stdin\n",
        capture_output=True,
        text=True,
        check=True,
    )
    encoded = result.stdout.strip()
    assert verify_password("from stdin", encoded)
    assert "from stdin" not in result.stdout


def test_cli_refuses_an_empty_password() -> None:
    result = subprocess.run(
        [sys.executable, str(APP_DIR / "chainlit_users.py")],
        input="",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert result.stdout == ""
