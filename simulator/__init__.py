"""A local Steam Community Market that speaks Steam's real formats, plus real local proxies.

Tests and benchmarks use `run_simulator` (or `create_app`) and `local_proxies`; the
`sim` command in `simulator.cli` runs it standalone. Importing starts nothing.
"""

from simulator.app import create_app
from simulator.clock import Clock, ManualClock, system_clock
from simulator.config import Latency, LimitsConfig, SimulatorConfig, WindowLimit
from simulator.proxy import LocalProxy, local_proxies
from simulator.server import run_simulator

__all__ = [
    "Clock",
    "Latency",
    "LimitsConfig",
    "LocalProxy",
    "ManualClock",
    "SimulatorConfig",
    "WindowLimit",
    "create_app",
    "local_proxies",
    "run_simulator",
    "system_clock",
]
