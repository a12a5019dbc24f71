"""Root conftest: the real-server fixtures live in cadre.devstack.pytest_plugin."""

pytest_plugins = ["cadre.devstack.pytest_plugin"]
