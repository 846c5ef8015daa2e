from __future__ import annotations

import pytest

from shared.observability import SecretURL, redact_text, redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@db:5432/x", "postgresql://u:***@db:5432/x"),
        ("redis://:pw@cache:6379/0", "redis://:***@cache:6379/0"),
        ("redis://token@cache:6379", "redis://***@cache:6379"),
        ("http://user:p%40ss@[::1]:3128", "http://user:***@[::1]:3128"),
        ("http://host:3128", "http://host:3128"),
        ("direct", "direct"),
    ],
)
def test_redact_url_masks_only_the_secret(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_text_masks_urls_inside_free_text() -> None:
    line = "cannot connect to http://bob:s3cret@proxy:8080 (refused); retry via redis://:pw2@r:1"
    out = redact_text(line)
    assert "s3cret" not in out and "pw2" not in out
    assert "http://bob:***@proxy:8080" in out


def test_secret_url_reveals_only_on_request() -> None:
    url = SecretURL("postgresql://u:pw@db/x")
    assert "pw" not in str(url) and "pw" not in repr(url) and "pw" not in f"{url}"
    assert url.reveal() == "postgresql://u:pw@db/x"
    assert url.has_credentials and url.scheme == "postgresql"
