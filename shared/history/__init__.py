"""A watch's price history: raw checks for days, hourly roll-ups for a year, bounded and queried.

:func:`maintain` is one pass of upkeep (the watchdog runs it every tick): it rolls up the hours
that have closed, then deletes raw checks and roll-ups past their retention, and the announced
listings nobody has seen for long. :func:`history` answers "this watch's price from then to
then", picking raw checks or roll-ups by the resolution the range needs; the API and
``steamwatch history`` both ask it.
"""

from shared.history._maintain import Maintenance, Retention, maintain
from shared.history._query import (
    POINTS_MAX,
    RESOLUTIONS,
    History,
    HistoryError,
    Point,
    choose_resolution,
    history,
)

__all__ = [
    "POINTS_MAX",
    "RESOLUTIONS",
    "History",
    "HistoryError",
    "Maintenance",
    "Point",
    "Retention",
    "choose_resolution",
    "history",
    "maintain",
]
