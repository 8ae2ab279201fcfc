"""Benchmark reports: each benchmark owns one ``## <heading>`` section of ``docs/benchmarks.md``."""

from __future__ import annotations

import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"


def machine_line(extra: str = "") -> str:
    """When and where: date, cores, processor, Python, load average (the numbers' context)."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {os.cpu_count()} CPU cores "
        f"({platform.processor() or platform.machine()}), Python {platform.python_version()}"
        f"{', ' + extra if extra else ''}; load average at the end {load:.1f}."
    )


def write_section(heading: str, body: str, path: Path = RESULTS) -> Path:
    """Replace (or append) the ``## heading`` section of ``path`` with ``body``; keep the others."""
    section = f"## {heading}\n\n{body.strip()}\n"
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = (
        pattern.sub(lambda _: section + "\n", text)
        if pattern.search(text)
        else text.rstrip("\n") + "\n\n" + section
    )
    path.write_text(text.rstrip("\n") + "\n")
    return path
