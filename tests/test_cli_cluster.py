"""The ``jobwire`` commands on a Redis Cluster: ``info``, ``dead``, ``worker --check``."""

from __future__ import annotations

import jobwire
from jobwire import JobSpec
from tests.helpers.support import wait_until
from tests.helpers.workers import Workers, jobwire_cli, workers

__all__ = ["workers"]


def test_info_dead_and_check_on_a_cluster(cluster_url: str, workers: Workers) -> None:
    with jobwire.Client.from_url(cluster_url) as client:  # queues on several masters
        client.enqueue_many([JobSpec("f", _queue_name=q) for q in ("a", "b", "c", "d")])
        workers.spawn(cluster_url)  # serves "default"
        assert wait_until(
            lambda: jobwire_cli("worker", "tests.worker.fault_settings.Settings", "--check",
                                url=cluster_url).returncode == 0,
            timeout=30,
        )  # fmt: skip
    info = jobwire_cli("info", url=cluster_url)
    assert info.returncode == 0, info.stderr
    for q in ("a", "b", "c", "d"):
        assert f"queue {q}: 1 queued" in info.stdout
    assert "worker " in info.stdout  # its health record, found on the queue's master
    dead = jobwire_cli("dead", "list", "--queue", "a", url=cluster_url)
    assert dead.returncode == 0, dead.stderr
