"""Reliability and security tests: in-process workers and worker processes on servers the
tests own."""

from __future__ import annotations

from tests.helpers.workers import start_worker, workers

__all__ = ["start_worker", "workers"]
