"""The running build: tokenwatch's version and the Python it runs on.

    version()       # "0.1.0" (from the installed package metadata)
    build_info()    # {"version": "0.1.0", "python": "3.11.7"}

``tokenwatch --version`` prints them; ``/metrics`` exposes them as
``tokenwatch_build_info{version=...,python=...} 1``.
"""
from __future__ import annotations

import platform
from importlib import metadata


def version() -> str:
    try:
        return metadata.version("tokenwatch")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def build_info() -> dict[str, str]:
    return {"version": version(), "python": platform.python_version()}
