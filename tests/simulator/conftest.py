"""Fixtures shared by the local market's tests."""
from __future__ import annotations

import aiohttp
import pytest


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session
