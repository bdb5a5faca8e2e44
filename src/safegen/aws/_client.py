"""Building boto3 clients the way every adapter's ``from_session`` wants them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import boto3


def make_client(
    service: str,
    session: boto3.Session | None,
    *,
    region_name: str | None,
    max_attempts: int,
    read_timeout: float | None = None,
) -> Any:
    """Return a client that retries throttling in botocore's standard mode.

    :param max_attempts: attempts in all, the first included.
    :param read_timeout: seconds to wait for a response (botocore's default is 60).
    """
    import boto3
    from botocore.config import Config

    from safegen.aws._errors import aws_call

    options: dict[str, Any] = {"retries": {"mode": "standard", "total_max_attempts": max_attempts}}
    if read_timeout is not None:
        options["read_timeout"] = read_timeout
    with aws_call(service, "CreateClient"):  # no region is botocore's NoRegionError
        session = session or boto3.Session()
        # The stubs type client() per service name; this helper serves several services.
        factory: Any = session.client
        return factory(service, region_name=region_name, config=Config(**options))
