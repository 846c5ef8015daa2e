pytest_plugins = ["tests.fixtures.stores", "tests.fixtures.system"]
