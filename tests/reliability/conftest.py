"""Reliability and security tests: in-process workers on servers the tests own."""

from __future__ import annotations

from worker_tests.conftest import start_worker

__all__ = ["start_worker"]
