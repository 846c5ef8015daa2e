"""Check messages as the fetcher reads them: one claim or a batch, and what it refuses."""

from __future__ import annotations

import uuid

import pytest

from shared.bus import MAX_CHECK_BATCH, BadMessage, CheckMessage
from shared.config import Settings


def _claims(n: int) -> list[tuple[int, uuid.UUID]]:
    return [(i + 1, uuid.uuid4()) for i in range(n)]


def test_a_batch_reads_back_as_its_claims_in_order_each_with_the_batchs_reason() -> None:
    claims = _claims(3)
    message = CheckMessage.batch(claims, reason="overdue")
    kwargs = message.model_dump(mode="json", exclude_defaults=True)

    read = CheckMessage.parse((), kwargs)

    assert [(c.task_id, c.lease_token, c.reason, c.also) for c in read.claims()] == [
        (t, k, "overdue", ()) for t, k in claims
    ]


def test_a_single_check_is_sent_as_it_always_was() -> None:
    [(task_id, token)] = _claims(1)
    message = CheckMessage.batch([(task_id, token)])

    kwargs = message.model_dump(mode="json", exclude_defaults=True)

    # A fetcher from before batches reads it: no field it does not know.
    assert kwargs == {"task_id": task_id, "lease_token": str(token)}
    assert message.claims() == [message]


def test_a_batch_with_a_bad_claim_is_refused_naming_the_claim_and_field() -> None:
    kwargs = CheckMessage.batch(_claims(2)).model_dump(mode="json")
    kwargs["also"][0]["lease_token"] = "not-a-token"

    with pytest.raises(BadMessage, match=r"also\.0\.lease_token"):
        CheckMessage.parse((), kwargs)


def test_a_batch_larger_than_the_bound_is_refused() -> None:
    kwargs = CheckMessage.batch(_claims(MAX_CHECK_BATCH)).model_dump(mode="json")
    kwargs["also"].append({"task_id": 999, "lease_token": str(uuid.uuid4())})

    with pytest.raises(BadMessage, match="also"):
        CheckMessage.parse((), kwargs)


def test_the_setting_allows_no_larger_batch_than_a_message_holds() -> None:
    field = Settings.model_fields["scheduler_checks_per_message"]
    bounds = [m.le for m in field.metadata if hasattr(m, "le")]
    assert bounds == [MAX_CHECK_BATCH]
