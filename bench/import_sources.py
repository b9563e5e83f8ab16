"""Reading import files as people have them: decode + parse rows/s and peak RSS, per source.

What it measures, in one run, each reader in a fresh child process (so its RSS is its own),
files generated once into `--workdir` (default /tmp/filestore-bench-sources) and kept:

* CSV, 1,000,000 rows by default (`--rows`), the seed's 8 columns with accented names:
  - `csv utf-8 (before)`: the import's path before detection: the byte record splitter, UTF-8
    decode and `csv.reader` per batch of 5,000 records. The 1.00 of the ratios;
  - `csv utf-8`, `csv cp1252 ;` (semicolons), `csv utf-16-le TAB` (with its BOM): the new path
    (`csv_source.batches`: Utf8Transcoder -> record splitter -> `csv.reader` with the sniffed
    dialect, checkpoint offsets mapped back to the file);
* XLSX, the same rows written as Excel writes them (shared strings, `dimension`, deflate),
  at 10,000 rows and at `--rows`:
  - `xlsx filestore`: `imports/xlsx.py` over a `RangeFile` (1 MiB reads of the file, as
    ranged GETs would be);
  - `xlsx openpyxl`: `load_workbook(read_only=True, data_only=True)`, `iter_rows(values_only)`;
  - `xlsx calamine`: python-calamine `load_workbook(path)`, first sheet, `iter_rows()`;
* phone numbers: `digits_only` and `e164` (phonenumbers) on 100,000 values.

Rows/s is rows over wall seconds of the read; CPU seconds are shown too (steadier on a loaded
machine). Peak RSS is sampled every 20 ms in the child. Prints the machine, the load average
before and after, and each figure as a ratio to `csv utf-8 (before)` of the same run.

    python bench/import_sources.py                 # 1M rows: about 10-15 minutes here
    python bench/import_sources.py --rows 100000 --skip openpyxl
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import random
import subprocess
import sys
import time
import zipfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
from bench_common import MIB, PeriodicSampler, load_line, machine_line

HEADER = ["full_name", "email", "phone", "address", "city", "state", "postal_code", "country"]
FIRST = ["Zoë", "José", "Ana", "François", "Jürgen", "Siobhán", "Lukas", "Mary", "Søren", "Ines"]
LAST = ["Müller", "García", "Dupont", "O'Brien", "Nuñez", "Smith", "Æsir", "Ødegård", "Brown"]
CSV_KINDS = {
    "csv utf-8 (before)": ("utf-8", ","),
    "csv utf-8": ("utf-8", ","),
    "csv cp1252 ;": ("cp1252", ";"),
    "csv utf-16-le TAB": ("utf-16", "\t"),
}
XLSX_KINDS = ("xlsx filestore", "xlsx openpyxl", "xlsx calamine")
CHUNK = 1024 * 1024


def row(i: int, rng: random.Random) -> list[str]:
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)} {i}"
    return [
        name,
        f"customer{i}@example.com",
        f"+1 (555) {i % 1000:03d}-{i % 10000:04d}",
        f"{i} Main Street",
        rng.choice(["Springfield", "Zürich", "Málaga", "Köln"]),
        "IL",
        f"{i % 100000:05d}",
        "US",
    ]


def write_csvs(workdir: Path, rows: int) -> None:
    for encoding, delimiter in set(CSV_KINDS.values()):
        path = workdir / f"rows{rows}-{encoding}.csv"
        if path.exists():
            continue
        rng = random.Random(1)
        with path.open("w", encoding=encoding, newline="") as handle:
            writer = csv.writer(handle, delimiter=delimiter, lineterminator="\r\n")
            writer.writerow(HEADER)
            for i in range(rows):
                writer.writerow(row(i, rng))


def write_xlsx(path: Path, rows: int) -> None:
    """As Excel writes it: every text in the shared string table, postal codes as numbers."""
    if path.exists():
        return
    rng = random.Random(1)
    index: dict[str, int] = {}
    sheet = io.StringIO()

    def ref(text: str) -> int:
        return index.setdefault(text, len(index))

    def esc(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;")

    letters = "ABCDEFGH"
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as out:
            out.write(
                '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="'
                'http://schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="A1:'
                f'H{rows + 1}"/><sheetData>'.encode()
            )
            for r in range(rows + 1):
                cells = HEADER if r == 0 else row(r - 1, rng)
                sheet.write(f'<row r="{r + 1}" spans="1:8">')
                for c, value in enumerate(cells):
                    if c == 6 and r:
                        sheet.write(f'<c r="{letters[c]}{r + 1}"><v>{int(value)}</v></c>')
                    else:
                        sheet.write(f'<c r="{letters[c]}{r + 1}" t="s"><v>{ref(value)}</v></c>')
                sheet.write("</row>")
                if r % 10000 == 0:
                    out.write(sheet.getvalue().encode())
                    sheet = io.StringIO()
            out.write((sheet.getvalue() + "</sheetData></worksheet>").encode())
        with archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as out:
            out.write(
                b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns="http://'
                b'schemas.openxmlformats.org/spreadsheetml/2006/main">'
            )
            batch = []
            for text in index:
                batch.append(f"<si><t>{esc(text)}</t></si>")
                if len(batch) >= 10000:
                    out.write("".join(batch).encode())
                    batch = []
            out.write(("".join(batch) + "</sst>").encode())
        ns = "http://schemas.openxmlformats.org"
        rel = f"{ns}/officeDocument/2006/relationships"
        archive.writestr(
            "[Content_Types].xml",
            f'<Types xmlns="{ns}/package/2006/content-types"><Default Extension="xml" '
            'ContentType="application/xml"/><Default Extension="rels" ContentType="application/'
            'vnd.openxmlformats-package.relationships+xml"/><Override PartName="/xl/workbook.xml"'
            ' ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.'
            'main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName='
            '"/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'spreadsheetml.sharedStrings+xml"/></Types>',
        )
        archive.writestr(
            "_rels/.rels",
            f'<Relationships xmlns="{ns}/package/2006/relationships"><Relationship Id="rId1" '
            f'Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        )
        archive.writestr(
            "xl/workbook.xml",
            f'<workbook xmlns="{ns}/spreadsheetml/2006/main" xmlns:r="{rel}"><sheets><sheet '
            'name="Customers" sheetId="1" r:id="rId1"/></sheets></workbook>',
        )
        archive.writestr(
            "xl/_rels/workbook.xml.rels",
            f'<Relationships xmlns="{ns}/package/2006/relationships"><Relationship Id="rId1" '
            f'Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" '
            f'Type="{rel}/sharedStrings" Target="sharedStrings.xml"/></Relationships>',
        )
    tmp.rename(path)


class Rss(PeriodicSampler):
    def __init__(self) -> None:
        super().__init__()
        self.process = psutil.Process()
        self.peak = 0

    def sample(self) -> None:
        self.peak = max(self.peak, self.process.memory_info().rss)


def file_source(path: Path) -> Any:
    from filestore.imports.records import ImportSource

    async def open_from(offset: int) -> AsyncIterator[bytes]:
        with path.open("rb") as handle:
            handle.seek(offset)
            while chunk := handle.read(CHUNK):
                yield chunk

    return ImportSource(size=path.stat().st_size, open=open_from)


async def csv_before(path: Path) -> int:
    """The import's CSV path before this change: bytes records, UTF-8, default dialect."""
    from filestore.imports.records import MAX_RECORD_BYTES, record_batches

    source = file_source(path)
    count = 0
    async for batch in record_batches(
        source.open(0),
        start_offset=0,
        start_line=1,
        max_record_bytes=MAX_RECORD_BYTES,
        batch_rows=5000,
    ):
        count += len(list(csv.reader([r.data.decode("utf-8") for r in batch.records])))
    return count - 1


async def csv_after(path: Path) -> int:
    """The new path, the encoding and dialect detected as an import detects them."""
    from filestore.imports import csv_source
    from filestore.imports.rows import ValidationRules

    source = file_source(path)
    rules = ValidationRules()
    fmt = await csv_source.inspect(source, await source.read(0, 64 * 1024), rules)
    count = 0
    d, q = fmt.dialect.delimiter, fmt.dialect.quotechar
    async for batch in csv_source.batches(source, fmt, offset=0, line=1, batch_rows=5000):
        texts = [r.data.decode("utf-8") for r in batch.records]
        count += len(list(csv.reader(texts, delimiter=d, quotechar=q)))
    return count - 1


def xlsx_rows(kind: str, path: Path) -> int:
    count = 0
    if kind == "xlsx filestore":
        from filestore.imports.ranged import RangeFile
        from filestore.imports.xlsx import XlsxReader

        handle = path.open("rb")

        def fetch(start: int, end: int) -> bytes:
            handle.seek(start)
            return handle.read(end - start)

        reader = XlsxReader(RangeFile(fetch, path.stat().st_size))  # type: ignore[arg-type]
        for batch in reader.rows():
            count += len(batch)
    elif kind == "xlsx openpyxl":
        import openpyxl

        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        for _ in book.worksheets[0].iter_rows(values_only=True):
            count += 1
    else:
        from python_calamine import CalamineWorkbook

        sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0)
        for _ in sheet.iter_rows():
            count += 1
    return count - 1


def phones(kind: str) -> int:
    from filestore.imports.phones import normalise_phone

    values = [f"+1 (201) 555-{i % 10000:04d}" for i in range(100_000)]
    fmt = "e164" if kind == "phones e164" else "digits_only"
    for value in values:
        normalise_phone(value, fmt, "US")
    return len(values)


def child(kind: str, path: Path) -> dict[str, Any]:
    runner: Callable[[], int]
    if kind == "csv utf-8 (before)":
        runner = lambda: asyncio.run(csv_before(path))  # noqa: E731
    elif kind.startswith("csv"):
        runner = lambda: asyncio.run(csv_after(path))  # noqa: E731
    elif kind.startswith("xlsx"):
        runner = lambda: xlsx_rows(kind, path)  # noqa: E731
    else:
        runner = lambda: phones(kind)  # noqa: E731
    # Modules are loaded before the clock starts: their import is no part of the reading.
    import filestore.imports.csv_source
    import filestore.imports.phones
    import filestore.imports.xlsx

    if kind == "xlsx openpyxl":
        import openpyxl  # noqa: F401
    if kind == "xlsx calamine":
        import python_calamine  # noqa: F401
    del filestore
    process = psutil.Process()
    base = process.memory_info().rss
    with Rss() as rss:
        started, cpu = time.perf_counter(), time.process_time()
        rows = runner()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"rows": rows, "seconds": seconds, "cpu": cpu, "base": base, "peak": rss.peak}


def run_child(kind: str, path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--path", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/filestore-bench-sources"))
    parser.add_argument("--skip", action="append", default=[], help="skip kinds containing this")
    parser.add_argument("--child")
    parser.add_argument("--path", type=Path)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.path)))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine_line()}")
    print(f"load before generating: {load_line()}")
    write_csvs(args.workdir, args.rows)
    sizes = sorted({10_000, args.rows})
    for size in sizes:
        write_xlsx(args.workdir / f"rows{size}.xlsx", size)
    print(f"load before: {load_line()}")
    plan: list[tuple[str, Path]] = []
    for kind, (encoding, _) in CSV_KINDS.items():
        plan.append((kind, args.workdir / f"rows{args.rows}-{encoding}.csv"))
    for size in sizes:
        plan += [(k, args.workdir / f"rows{size}.xlsx") for k in XLSX_KINDS]
    plan += [("phones digits_only", Path()), ("phones e164", Path())]
    baseline: float | None = None
    print(
        f"{'source':<22} {'file':>9} {'rows':>9} {'rows/s':>9} {'ratio':>6} {'cpu s':>7} "
        f"{'peak RSS':>9} {'before':>8}"
    )
    for kind, path in plan:
        if any(skip in kind for skip in args.skip):
            continue
        result = run_child(kind, path)
        size = f"{path.stat().st_size / MIB:.0f} MiB" if path.name else "-"
        if "error" in result:
            print(f"{kind:<22} {size:>9} error: {result['error']}")
            continue
        rate = result["rows"] / result["seconds"]
        if kind == "csv utf-8 (before)":
            baseline = rate
        ratio = f"{rate / baseline:.2f}" if baseline else "-"
        print(
            f"{kind:<22} {size:>9} {result['rows']:>9} {rate:>9.0f} {ratio:>6} "
            f"{result['cpu']:>7.1f} {result['peak'] / MIB:>5.0f} MiB "
            f"{result['base'] / MIB:>4.0f} MiB"
        )
    print(f"load after: {load_line()}")


if __name__ == "__main__":
    main()
