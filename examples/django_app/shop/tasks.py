"""The jobs of the shop, and the worker that runs them.

Run the worker next to the web server, from this project's directory::

    python manage.py migrate
    REDIS_URL=redis://localhost:6379/0 python manage.py runserver
    REDIS_URL=redis://localhost:6379/0 jobwire worker shop.tasks.WorkerSettings
"""

from __future__ import annotations

import os
from typing import Any

import django


def send_receipt(ctx: dict[str, Any], order_id: int) -> dict[str, Any]:
    """A blocking job using the ORM: runs in the worker's thread pool.

    The view enqueues it with ``enqueue_on_commit``, so the order is committed by the time
    the job can start.
    """
    from shop.models import Order

    order = Order.objects.get(pk=order_id)
    # a real shop would render a template and call its mail backend here
    return {"order_id": order.pk, "sent_to": order.email, "item": order.item}


async def startup(ctx: dict[str, Any]) -> None:
    # jobs may use Django (settings, ORM): set it up once per worker process
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
    django.setup()


class WorkerSettings:
    functions = (send_receipt,)
    on_startup = startup
    redis_settings = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
