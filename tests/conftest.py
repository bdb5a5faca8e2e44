"""Test configuration shared by the whole suite."""

from hypothesis import settings

# The machines that run this suite are shared and noisy: a slow example is not a bug here
# (speed is measured in benchmarks/, not asserted in tests).
settings.register_profile("default", deadline=None)
settings.load_profile("default")
