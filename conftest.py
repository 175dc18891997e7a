"""Root conftest: pytest-migrations' own test suite runs pytest inside pytest (pytester)."""

pytest_plugins = ["pytester"]
