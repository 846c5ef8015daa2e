"""The Steam error tree: messages name the endpoint and the data, and errors survive pickle."""

import pickle

import pytest

from shared.observability import SecretURL
from shared.steam import (
    EXCERPT_LIMIT,
    BadResponse,
    ItemNotFound,
    Proxy,
    ProxyAuthFailed,
    RateLimited,
    SteamError,
    Unavailable,
    body_excerpt,
    looks_like_html,
    proxy_label,
)

NAME = "AK-47 | Redline (Field-Tested)"

# (error, substrings its str() must contain)
CASES = [
    pytest.param(
        SteamError("socket closed", endpoint="priceoverview"),
        ["priceoverview", "socket closed"],
        id="base",
    ),
    pytest.param(
        RateLimited(endpoint="listings", proxy="de-3"),
        ["listings", "429", "de-3"],
        id="rate-limited",
    ),
    pytest.param(RateLimited(endpoint="listings"), ["listings", "429"], id="rate-limited-direct"),
    pytest.param(
        ItemNotFound(endpoint="priceoverview", appid=730, market_hash_name=NAME),
        ["priceoverview", "730", NAME],
        id="item-not-found",
    ),
    pytest.param(
        BadResponse(endpoint="orderbook", reason="body is JSON null", excerpt="null", status=200),
        ["orderbook", "body is JSON null", "'null'", "HTTP 200"],
        id="bad-response",
    ),
    pytest.param(
        BadResponse.from_body(
            "<html><body>Error</body></html>", endpoint="listings", reason="HTML page"
        ),
        ["listings", "HTML", "<html><body>Error</body></html>"],
        id="bad-response-html",
    ),
    pytest.param(
        Unavailable(endpoint="itemordershistogram", status=502, reason="Bad Gateway"),
        ["itemordershistogram", "502", "Bad Gateway"],
        id="unavailable",
    ),
    pytest.param(
        Unavailable(endpoint="priceoverview", reason="timed out after 10 s"),
        ["priceoverview", "timed out after 10 s"],
        id="unavailable-timeout",
    ),
    pytest.param(
        ProxyAuthFailed(endpoint="listings", proxy="us-1"),
        ["listings", "407", "us-1"],
        id="proxy-auth-failed",
    ),
]


@pytest.mark.parametrize(("error", "expected"), CASES)
def test_message_names_endpoint_and_data(error: SteamError, expected: list[str]) -> None:
    # Given an error, when I render it, I expect the endpoint and its data in the text.
    text = str(error)
    for part in expected:
        assert part in text
    assert isinstance(error, SteamError)


@pytest.mark.parametrize(("error", "expected"), CASES)
def test_survives_pickle(error: SteamError, expected: list[str]) -> None:
    # Given an error, when it crosses a process boundary, I expect the same type, text and data.
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)
    assert copy.args == error.args


def test_pickled_error_can_be_raised_and_caught_by_base() -> None:
    copy = pickle.loads(pickle.dumps(RateLimited(endpoint="listings", proxy="p1")))
    with pytest.raises(SteamError, match="rate limited"):
        raise copy


def test_message_follows_attribute_filled_in_later() -> None:
    # Given a parser's BadResponse, when the client adds the HTTP status, str() shows it.
    error = BadResponse(endpoint="listings", reason="HTML page instead of JSON", is_html=True)
    error.status = 200
    assert "HTTP 200" in str(error)


@pytest.mark.parametrize(
    ("given", "label"),
    [
        pytest.param("de-3", "de-3", id="plain-label"),
        pytest.param("10.0.0.1:3128", "10.0.0.1:3128", id="host-port"),
        pytest.param(
            "http://bob:s3cret@10.0.0.1:3128", "10.0.0.1:3128#81b637d8", id="url-with-creds"
        ),
        pytest.param(
            "socks5://bob:s3/cr@t@proxy.example:1080/",
            "proxy.example:1080#81b637d8",
            id="password-with-slash-and-at",
        ),
        pytest.param(
            "bob:s3cret@10.0.0.1:3128", "10.0.0.1:3128#81b637d8", id="creds-without-scheme"
        ),
    ],
)
def test_proxy_label_never_keeps_credentials(given: str, label: str) -> None:
    # The pool names a proxy the same way: one label per proxy everywhere.
    if "@" in given:
        assert (
            Proxy.from_url(SecretURL(given if "://" in given else f"http://{given}")).label == label
        )
    assert proxy_label(given) == label
    for error in (
        RateLimited(endpoint="listings", proxy=given),
        ProxyAuthFailed(endpoint="listings", proxy=given),
    ):
        assert error.proxy == label
        assert "bob" not in str(error)
        assert "s3" not in str(error)


def test_excerpt_collapses_whitespace_and_is_bounded() -> None:
    body = "<html>\n\t<head>  <title>Error</title>\r\n</head>" + " x" * 1000
    excerpt = body_excerpt(body)
    assert excerpt.startswith("<html> <head> <title>Error</title> </head> x x")
    assert len(excerpt) <= EXCERPT_LIMIT


def test_excerpt_of_undecodable_bytes_does_not_raise() -> None:
    assert body_excerpt(b'\xff\xfe{"success"') == '\ufffd\ufffd{"success"'


@pytest.mark.parametrize(
    ("body", "is_html"),
    [
        pytest.param("  \n<!DOCTYPE html><html>", True, id="doctype"),
        pytest.param(b"<html lang='en'>", True, id="bytes"),
        pytest.param("Error <HTML>oops</HTML>", True, id="html-inside"),
        pytest.param('{"success":false}', False, id="json"),
        pytest.param("null", False, id="null"),
    ],
)
def test_looks_like_html(body: bytes | str, is_html: bool) -> None:
    assert looks_like_html(body) is is_html
    assert BadResponse.from_body(body, endpoint="x", reason="r").is_html is is_html
