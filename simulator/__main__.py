"""`python -m simulator`: the `sim` command on its own."""

from simulator.cli import sim

sim()
