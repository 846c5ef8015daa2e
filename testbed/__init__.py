"""What the tests, the benchmarks and the soak run the system with; never shipped."""
