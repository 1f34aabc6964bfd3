"""jobwire's web dashboard: ``pip install 'jobwire[dashboard]'``, then ``jobwire dashboard``.

:func:`create_app` builds it as an ASGI application (Starlette) that runs alone or mounts
in a FastAPI or Starlette app::

    app.mount("/jobs", jobwire.dashboard.create_app(client, token=os.environ["TOKEN"]))

It reads through the client you give it, never unpickles, escapes every value read from
Redis, needs a token for everything unless read-only on loopback, and protects every
action against cross-site request forgery (see README, "Security").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # imported on first use, so that ``jobwire dashboard --help`` (jobwire.dashboard.cli)
    # works without the extra installed and says what to install
    if name == "create_app":
        try:
            from .app import create_app
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise ImportError(
                f"the jobwire dashboard needs its extra: pip install 'jobwire[dashboard]' ({exc})"
            ) from exc
        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
