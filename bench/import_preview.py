"""The import preview on a 1,000,000-row CSV and .xlsx, against reading the whole file.

What it measures: `imports/preview.py` on generated 1M-row files (`import_sources.row`'s
customers), served from memory by a source that counts its ranged reads, so the figures are the
preview's own work (no network, no database: the lookup of stored customers answers nothing).
Baselines, in the same run: for the CSV, the import's first pass over the whole file
(`csv_source.prescan`: decode, split, count); for the workbook, the same preview reading the
whole shared string table (what it did before `PREVIEW_STRINGS`). Prints seconds, ranged reads
and bytes read, and preview / baseline.

How to run: `python bench/import_preview.py [--rows 1000000] [--workdir /tmp/preview-bench]`
(writing the 1M-row workbook takes ~1-2 minutes; an existing file in --workdir is reused).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from import_sources import write_csvs, write_xlsx

from filestore.imports import csv_source
from filestore.imports import preview as imports_preview
from filestore.imports.decoding import PREFIX_BYTES
from filestore.imports.records import ImportSource
from filestore.imports.rows import ValidationRules

MIB = 1024 * 1024


def memory_source(data: bytes, reads: list[int]) -> ImportSource:
    async def read_range(start: int, end: int) -> bytes:
        reads.append(end - start)
        return data[start:end]

    async def open_from(offset: int) -> AsyncIterator[bytes]:
        for start in range(offset, len(data), MIB):
            reads.append(min(MIB, len(data) - start))
            yield data[start : start + MIB]

    return ImportSource(size=len(data), open=open_from, read_range=read_range)


async def nobody(emails: list[str]) -> dict[str, dict[str, str | None]]:
    return {}


async def timed(data: bytes, work: Any) -> tuple[float, int, int]:
    reads: list[int] = []
    started = time.perf_counter()
    await work(memory_source(data, reads))
    return time.perf_counter() - started, len(reads), sum(reads)


async def preview(source: ImportSource) -> None:
    body = await imports_preview.preview(source, mapping={}, rules=ValidationRules(), lookup=nobody)
    assert len(body["rows"]) == 20, body["rows"]


async def prescan(source: ImportSource) -> None:
    prefix = await source.read(0, PREFIX_BYTES)
    fmt = await csv_source.inspect(source, prefix, ValidationRules())
    await csv_source.prescan(source, fmt)


def line(name: str, figures: tuple[float, int, int], base: float | None = None) -> None:
    seconds, reads, size = figures
    ratio = f"{seconds / base:>8.3f}" if base else f"{'':>8}"
    print(f"{name:<52} {seconds:>8.2f} {reads:>6} {size / MIB:>9.1f} {ratio}")


async def run(workdir: Path, rows: int) -> None:
    csv_path = workdir / f"rows{rows}-utf-8.csv"
    xlsx_path = workdir / f"rows{rows}.xlsx"
    if not csv_path.exists():
        write_csvs(workdir, rows)
    if not xlsx_path.exists():
        write_xlsx(xlsx_path, rows)
    csv_data, xlsx_data = csv_path.read_bytes(), xlsx_path.read_bytes()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'':<52} {'seconds':>8} {'reads':>6} {'MiB read':>9} {'/ base':>8}")
    base = await timed(csv_data, prescan)
    line(f"CSV {len(csv_data) / MIB:.0f} MiB: first pass over the whole file (base)", base)
    line("CSV: preview", await timed(csv_data, preview), base[0])
    limit = imports_preview.PREVIEW_STRINGS
    imports_preview.PREVIEW_STRINGS = None  # type: ignore[assignment]
    whole = await timed(xlsx_data, preview)
    imports_preview.PREVIEW_STRINGS = limit
    line(f"xlsx {len(xlsx_data) / MIB:.0f} MiB: preview, whole string table (base)", whole)
    line(f"xlsx: preview, first {limit:,} strings", await timed(xlsx_data, preview), whole[0])
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/preview-bench"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    asyncio.run(run(args.workdir, args.rows))


if __name__ == "__main__":
    main()
