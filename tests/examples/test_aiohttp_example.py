"""examples/aiohttp_app: the handler awaits enqueue; client made in cleanup_ctx."""

from __future__ import annotations

import asyncio

import jobwire

from .conftest import EXAMPLES, load_module, need


def test_handler_enqueues_a_job(redis_url: str) -> None:
    need("aiohttp")
    from aiohttp.test_utils import TestClient, TestServer

    module = load_module(EXAMPLES / "aiohttp_app" / "app.py", "aiohttp_example")

    async def main() -> str:
        async with TestClient(TestServer(module.create_app(redis_url))) as web:
            response = await web.post("/resize", json={"url": "https://x/img.png", "width": 64})
            assert response.status == 202
            job_id: str = (await response.json())["job_id"]
            status = await (await web.get(f"/jobs/{job_id}")).json()
            assert status["status"] == "queued"
            return job_id

    job_id = asyncio.run(main())
    with jobwire.Client.from_url(redis_url) as client:
        info = client.job(job_id).info()
        assert (info.function, info.args, info.kwargs) == (
            "resize_image",
            ("https://x/img.png",),
            {"width": 64},
        )
