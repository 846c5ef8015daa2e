"""The bad-input table for a subscription: each problem names its field, and never the URL."""

from __future__ import annotations

import pytest

from shared.notify import (
    NOTIFY_KINDS,
    DestinationRefused,
    SubscriptionError,
    check_outside,
    parse_destination,
    parse_kinds,
    parse_subscription,
)

TOKEN = "123456789:AAH-secret-bot-token"
TELEGRAM = f"tgram://{TOKEN}/-100123"


@pytest.mark.parametrize(
    ("url", "kinds", "template", "owner", "field", "says"),
    [
        ("bogus://x", "all", None, "alice", "url", "scheme 'bogus', which Apprise does not know"),
        ("json://", "all", None, "alice", "url", "not a valid json:// URL"),
        ("not a url", "all", None, "alice", "url", "whitespace"),
        ("hook.example", "all", None, "alice", "url", "not an Apprise URL"),
        ("", "all", None, "alice", "url", "is empty"),
        ("syslog://", "all", None, "alice", "url", "the notifier's own machine"),
        (TELEGRAM, "", None, "alice", "kinds", "is empty"),
        (TELEGRAM, " , ", None, "alice", "kinds", "is empty"),
        (TELEGRAM, "price", None, "alice", "kinds", "'price' is not an event kind"),
        (TELEGRAM, "all", "{item.__class__}", "alice", "template", "{item.__class__}"),
        (TELEGRAM, "all", "{nope}", "alice", "template", "{nope}, which is not a known name"),
        (TELEGRAM, "all", "{price!r}", "alice", "template", "spec or conversion"),
        (TELEGRAM, "all", "{", "alice", "template", "not a valid template"),
        (TELEGRAM, "all", "   ", "alice", "template", "is empty"),
        (TELEGRAM, "all", "a\x00{item}", "alice", "template", "control character (U+0000)"),
        (TELEGRAM, "all", None, "", "owner", "is not an owner name"),
        (TELEGRAM, "all", None, "a b", "owner", "is not an owner name"),
    ],
)
def test_each_bad_field_is_named_and_the_url_never_repeated(
    url: str, kinds: str, template: str | None, owner: str, field: str, says: str
) -> None:
    with pytest.raises(SubscriptionError) as caught:
        parse_subscription(owner=owner, url=url, kinds=kinds, template=template)
    assert caught.value.field == field
    assert says in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_a_good_subscription_reads_its_destination_masked() -> None:
    spec = parse_subscription(owner="alice", url=TELEGRAM, kinds="new_listing, price_at_or_below")
    assert spec.kinds == ("new_listing", "price_at_or_below")
    assert spec.destination.service == "Telegram"
    assert spec.destination.scheme == "tgram"
    assert TOKEN not in spec.destination.masked and TOKEN not in repr(spec)
    assert TOKEN not in str(spec.destination)
    assert spec.destination.hosts == ()  # Telegram's own cloud: nothing of ours to check


def test_all_means_every_kind_and_a_negative_watch_id_is_refused() -> None:
    assert parse_kinds("all") == NOTIFY_KINDS
    assert "subscription_paused" in NOTIFY_KINDS
    with pytest.raises(SubscriptionError, match="task: -3 is not a watch id"):
        parse_subscription(owner="a", url=TELEGRAM, kinds="all", task_id=-3)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("json://127.0.0.1:6379/x", "loopback"),
        ("json://localhost/x", "loopback"),
        ("json://[::1]/x", "loopback"),
        ("jsons://10.0.0.5/hook", "private"),
        ("json://192.168.1.1/hook", "private"),
        ("json://172.16.0.9/hook", "private"),
        ("json://169.254.169.254/latest/meta-data", "link-local"),
        ("json://[::ffff:10.0.0.1]/x", "private"),
        ("json://0.0.0.0/x", "not a public"),
        ("json://100.64.0.1/x", "not a public"),
        ("mailtos://user:pw@93.184.215.14?smtp=10.1.2.3", "private"),
        ("ntfy://10.1.1.1/topic", "private"),
    ],
)
def test_a_destination_inside_the_network_is_refused_unless_allowed(url: str, why: str) -> None:
    destination = parse_destination(url)
    with pytest.raises(DestinationRefused, match=why) as caught:
        check_outside(destination, allow_private=False)
    assert "STEAMWATCH_NOTIFY_ALLOW_PRIVATE" in str(caught.value)
    assert "pw" not in str(caught.value)
    check_outside(destination, allow_private=True)  # the operator's choice


def test_a_public_address_passes() -> None:
    check_outside(parse_destination("json://93.184.215.14/hook"), allow_private=False)


def test_the_hash_keys_the_url_and_the_account_its_authority() -> None:
    a = parse_destination("tgram://111:AAA/-1")
    b = parse_destination("tgram://111:AAA/-2")
    c = parse_destination("tgram://222:BBB/-1")
    assert a.url_hash != b.url_hash
    assert a.account_hash == b.account_hash != c.account_hash
