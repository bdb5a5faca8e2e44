"""Test configuration shared by the whole suite."""

import warnings
from collections.abc import Iterator

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


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A moto server on loopback (S3, SNS, SQS over HTTP), one per test module."""
    with warnings.catch_warnings():  # moto warns that its [server] extra has more than S3 needs
        warnings.simplefilter("ignore")
        from moto.server import ThreadedMotoServer
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
