"""Code shared by several test suites: ``from tests.helpers.<module> import ...``."""
