"""steamwatch's benchmarks: `make bench` (every scenario) or `make bench SCENARIO=name`."""
