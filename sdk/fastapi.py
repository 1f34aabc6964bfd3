"""FastAPI and Starlette: one :class:`~jobwire.AsyncClient` per app, and a dependency for it.

:func:`lifespan` opens the client when the app starts (checked with a PING, so a Redis that
cannot be reached stops the start-up with :class:`~jobwire.RedisUnavailable`) and closes
it when the app shuts down; :func:`get_client` hands it to an endpoint::

    from typing import Annotated

    from fastapi import Depends, FastAPI

    import jobwire
    from jobwire.fastapi import get_client, lifespan

    app = FastAPI(lifespan=lifespan("redis://localhost:6379/0"))
    Jobs = Annotated[jobwire.AsyncClient, Depends(get_client)]

    @app.post("/resize")
    async def resize(url: str, jobs: Jobs) -> dict[str, str]:
        job = await jobs.enqueue("resize_image", url)
        return {"job_id": job.job_id}

The client lives in the lifespan state (``request.state.jobwire``), which Starlette hands to
every request, also in mounted apps. Only Starlette is imported, so a plain Starlette app
uses the same two: ``Starlette(lifespan=lifespan(url))`` and ``get_client(request)``.
``import jobwire`` imports neither.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

from starlette.requests import HTTPConnection
from typing_extensions import Unpack

from . import defaults
from .aio import AsyncClient
from .errors import InvalidArgument
from .options import ClientOptions

__all__ = ["STATE_KEY", "get_client", "lifespan"]

#: The lifespan state key the client is kept under.
STATE_KEY = "jobwire"

AppT = TypeVar("AppT")
#: An app's own lifespan: ``@asynccontextmanager async def my_lifespan(app): ... yield``,
#: yielding nothing or a state mapping.
AppLifespan = Callable[[AppT], AbstractAsyncContextManager[Mapping[str, Any] | None]]


def lifespan(
    url: str | None = None,
    *,
    client: AsyncClient | None = None,
    wrap: AppLifespan[AppT] | None = None,
    **options: Unpack[ClientOptions],
) -> Callable[[AppT], AbstractAsyncContextManager[dict[str, Any]]]:
    """A lifespan for ``FastAPI(lifespan=...)`` or ``Starlette(lifespan=...)``.

    It connects an ``AsyncClient`` to ``url`` (default ``$REDIS_URL``, else
    ``redis://localhost:6379/0``) with the client ``options`` (``queue_name=``,
    ``serializer=``...) at start-up, and closes it at shutdown. ``client=`` uses that client
    instead (an ``AsyncMemoryClient`` in tests, say); it belongs to its caller and is not
    closed. ``wrap=`` is the app's own lifespan: it runs inside, once the client is open,
    and ends before the client is closed; the state it yields is kept beside the client's.
    """
    if client is not None and (url is not None or options):
        raise InvalidArgument("give lifespan() a client or a URL and client options, not both")

    @asynccontextmanager
    async def run(app: AppT) -> AsyncIterator[dict[str, Any]]:
        jobs = (
            client
            if client is not None
            else await AsyncClient.connect(url or defaults.redis_url(), **options)
        )
        try:
            if wrap is None:
                yield {STATE_KEY: jobs}
            else:
                async with wrap(app) as state:
                    yield {**(state or {}), STATE_KEY: jobs}
        finally:
            if client is None:  # a client given to lifespan() belongs to its caller
                await jobs.close()

    return run


def get_client(connection: HTTPConnection) -> AsyncClient:
    """The app's client, opened by :func:`lifespan`: a FastAPI dependency.

    ``Depends(get_client)`` in an endpoint (HTTP or WebSocket), or ``get_client(request)``
    in a Starlette endpoint. Raises :class:`~jobwire.InvalidArgument` when the app was not
    given the lifespan.
    """
    found = getattr(connection.state, STATE_KEY, None)
    if not isinstance(found, AsyncClient):
        raise InvalidArgument(
            "this app has no jobwire client: give it lifespan=jobwire.fastapi.lifespan(url) "
            f"(or yield {{{STATE_KEY!r}: client}} from its own lifespan)"
        )
    return found
