"""Suite-wide configuration."""


def pytest_configure(config):
    # also registered in pyproject.toml by the packaging work; registering twice is harmless
    config.addinivalue_line("markers", "slow: a test that takes more than about 3 s")
