"""The docs' Redis examples use the test session's redis-server (tests/cache/conftest.py)."""

from __future__ import annotations

from ..cache.conftest import redis, redis_server

__all__ = ["redis", "redis_server"]
