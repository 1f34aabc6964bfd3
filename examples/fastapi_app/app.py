"""A FastAPI app that enqueues jobs with jobwire's AsyncClient.

``jobwire.fastapi.lifespan`` opens one client when the app starts and closes it when it
shuts down; ``get_client`` hands it to the endpoints (the ``Jobs`` dependency below). Tests
pass their own client, such as ``jobwire.testing.AsyncMemoryClient``, to ``create_app``.

Run from this directory, with any ASGI server (``pip install uvicorn``)::

    REDIS_URL=redis://localhost:6379/0 uvicorn app:app
    REDIS_URL=redis://localhost:6379/0 jobwire worker tasks.WorkerSettings
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI
from pydantic import BaseModel

import jobwire
from jobwire.fastapi import get_client, lifespan

Jobs = Annotated[jobwire.AsyncClient, Depends(get_client)]
router = APIRouter()


class Resize(BaseModel):
    url: str
    width: int = 256


@router.post("/resize", status_code=202)
async def resize(body: Resize, jobs: Jobs) -> dict[str, str]:
    job = await jobs.enqueue("resize_image", body.url, width=body.width)
    assert job is not None  # random job ids are never taken
    return {"job_id": job.job_id}


@router.get("/jobs/{job_id}")
async def job_status(job_id: str, jobs: Jobs) -> dict[str, Any]:
    job = jobs.job(job_id)
    body: dict[str, Any] = {"job_id": job_id, "status": (await job.status()).value}
    result = await job.result_info()
    if result is not None:
        body["success"] = result.success
        body["result"] = result.value if result.success else str(result.error)
    return body


def create_app(redis_url: str | None = None, client: jobwire.AsyncClient | None = None) -> FastAPI:
    # without a URL the client connects to $REDIS_URL (else localhost) when the app starts
    jobs = lifespan(client=client) if client is not None else lifespan(redis_url)
    app = FastAPI(title="thumbnails", lifespan=jobs)
    app.include_router(router)
    return app


app = create_app()

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app)
