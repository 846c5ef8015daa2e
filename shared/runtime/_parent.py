"""Children that do not outlive the process that started them."""

from __future__ import annotations

import signal


def die_with_parent() -> None:
    """SIGTERM this process when its parent dies, even by SIGKILL (Linux; elsewhere a no-op).

    Used in a child before exec (the setting survives exec) and in dramatiq's fork processes,
    so no service outlives the process that started it; a clean stop never depends on it.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: a killed parent may leave its children running
