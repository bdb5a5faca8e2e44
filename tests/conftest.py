"""Test configuration shared by the whole suite."""

import pytest
from hypothesis import settings

# The machines that run this suite are shared and noisy: a slow example is not a bug here
# (speed is measured in benchmarks/, not asserted in tests).
settings.register_profile("default", deadline=None)
settings.load_profile("default")


@pytest.fixture
def anyio_backend() -> str:
    """Run ``@pytest.mark.anyio`` tests on asyncio, the loop the async face targets."""
    return "asyncio"
