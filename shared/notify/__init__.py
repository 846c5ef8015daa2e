"""Notifications: subscriptions' destinations (Apprise URLs, sealed at rest), their messages,
validation shared by the CLI and the API, and the send rates each service allows."""

from shared.notify._destinations import (
    LOCAL_SCHEMES,
    Destination,
    DestinationError,
    DestinationRefused,
    DestinationUnresolved,
    check_addresses,
    check_outside,
    check_outside_async,
    parse_destination,
    url_hash,
)
from shared.notify._keys import (
    SealedURLUnreadable,
    SecretBox,
    SecretKeyError,
    generate_key,
    parse_keys,
)
from shared.notify._messages import (
    TEMPLATE_FIELDS,
    TemplateError,
    check_template,
    fields,
    market_url,
    render,
)
from shared.notify._rates import (
    ACCOUNT_RATES,
    DESTINATION_RATES,
    Rate,
    account_rate,
    destination_rate,
)
from shared.notify._store import SubscriptionConflict, add_subscription
from shared.notify._subscriptions import (
    NOTIFY_KINDS,
    SubscriptionError,
    SubscriptionSpec,
    parse_kinds,
    parse_subscription,
)

__all__ = [
    "SubscriptionConflict",
    "add_subscription",
    "ACCOUNT_RATES",
    "DESTINATION_RATES",
    "Destination",
    "DestinationError",
    "DestinationRefused",
    "DestinationUnresolved",
    "LOCAL_SCHEMES",
    "NOTIFY_KINDS",
    "Rate",
    "SealedURLUnreadable",
    "SecretBox",
    "SecretKeyError",
    "SubscriptionError",
    "SubscriptionSpec",
    "TEMPLATE_FIELDS",
    "TemplateError",
    "account_rate",
    "check_addresses",
    "check_outside",
    "check_outside_async",
    "check_template",
    "destination_rate",
    "fields",
    "generate_key",
    "market_url",
    "parse_destination",
    "parse_keys",
    "parse_kinds",
    "parse_subscription",
    "render",
    "url_hash",
]
