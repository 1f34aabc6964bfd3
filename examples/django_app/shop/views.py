"""Views that enqueue jobs with the blocking client and report on them."""

import json

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from .jobs import client


@csrf_exempt
@require_POST
def place_order(request: HttpRequest) -> JsonResponse:
    order = json.loads(request.body or b"{}")
    job = client().enqueue("send_receipt", order.get("order_id"), email=order.get("email"))
    assert job is not None  # random job ids are never taken
    return JsonResponse({"job_id": job.job_id}, status=202)


@require_GET
def job_status(request: HttpRequest, job_id: str) -> JsonResponse:
    job = client().job(job_id)
    body: dict[str, object] = {"job_id": job_id, "status": job.status().value}
    result = job.result_info()
    if result is not None:
        body["success"] = result.success
        body["result"] = result.value if result.success else str(result.error)
    return JsonResponse(body)
