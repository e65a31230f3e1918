from tests.analytics.days import analytics  # noqa: F401  (the fixture)
