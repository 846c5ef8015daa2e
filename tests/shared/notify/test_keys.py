"""Destination URLs sealed at rest, opened with any configured key, resealed on rotation."""

from __future__ import annotations

import pytest

from shared.notify import SealedURLUnreadable, SecretBox, SecretKeyError, generate_key, parse_keys

URL = "tgram://123456789:AAH-secret/-100123"


def test_a_sealed_url_does_not_show_it_and_opens_again() -> None:
    box = SecretBox([generate_key()])
    sealed = box.seal(URL)
    assert "secret" not in sealed and "123456789" not in sealed
    assert box.open(sealed) == URL
    assert "AAH" not in repr(box)


def test_rotation_new_key_first_old_still_opens_rekey_moves_to_new() -> None:
    old, new = generate_key(), generate_key()
    sealed_old = SecretBox([old]).seal(URL)
    rotating = SecretBox([new, old])
    assert rotating.open(sealed_old) == URL
    resealed = rotating.reseal(sealed_old)
    assert SecretBox([new]).open(resealed) == URL
    with pytest.raises(SealedURLUnreadable, match="none of the keys"):
        SecretBox([new]).open(sealed_old)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "is empty"),
        (" , ", "is empty"),
        ("not-a-key", "key 1 of 1 is not a Fernet key"),
        (f"{'A' * 44},nope", "key 1 of 2 is not a Fernet key"),
    ],
)
def test_a_bad_key_setting_says_which_key_and_not_its_value(text: str, says: str) -> None:
    with pytest.raises(SecretKeyError, match=says) as caught:
        parse_keys(text)
    assert "nope" not in str(caught.value)


def test_the_same_key_twice_is_refused() -> None:
    key = generate_key()
    with pytest.raises(SecretKeyError, match="same key twice"):
        parse_keys(f"{key},{key}")
