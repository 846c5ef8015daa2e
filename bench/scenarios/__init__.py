"""One module per scenario, each with ``TARGETS`` and ``async def run(bench) -> dict``."""
