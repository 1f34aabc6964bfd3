"""Views that enqueue jobs with the blocking client and report on them."""

import json

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from jobwire.django import enqueue_on_commit

from .jobs import client
from .models import Order

STOCK = 10


class OutOfStock(Exception):
    pass


@csrf_exempt
@require_POST
def place_order(request: HttpRequest) -> JsonResponse:
    body = json.loads(request.body or b"{}")
    try:
        with transaction.atomic():
            order = Order.objects.create(
                email=body.get("email", ""), item=body.get("item", ""),
                quantity=body.get("quantity", 1),
            )  # fmt: skip
            # sent when the transaction commits, so the worker always finds the order;
            # nothing is sent if it rolls back
            job = enqueue_on_commit("send_receipt", order.pk, _client=client())
            order.receipt_job = job.job_id
            order.save(update_fields=["receipt_job"])
            if order.quantity > STOCK:  # a check that fails after the order was written
                raise OutOfStock
    except OutOfStock:
        return JsonResponse({"error": "out of stock"}, status=409)
    return JsonResponse({"order_id": order.pk, "job_id": job.job_id}, status=202)


@require_GET
def job_status(request: HttpRequest, job_id: str) -> JsonResponse:
    job = client().job(job_id)
    body: dict[str, object] = {"job_id": job_id, "status": job.status().value}
    result = job.result_info()
    if result is not None:
        body["success"] = result.success
        body["result"] = result.value if result.success else str(result.error)
    return JsonResponse(body)
