"""An .xlsx's shared string table, held compressed so memory does not grow with the sheet.

Excel stores each distinct text once, in `xl/sharedStrings.xml`, and cells refer to it by
index; a customer list's names, e-mails and streets are all distinct, so the table grows with
the file (3.5M strings for 1M rows: ~250 MB as a Python list). Past `PLAIN_LIMIT_CHARS` the
strings are kept in blocks of `BLOCK_STRINGS`, each block zlib-compressed (such text
compresses ~4x), with the last `CACHED_BLOCKS` used blocks decompressed. Excel numbers strings
in the order it writes them, row by row, so the sheet reads the table almost in order and the
cache nearly always hits; fixed-size blocks make finding one a shift, not a search.
"""

from __future__ import annotations

import zlib

BLOCK_SHIFT = 11
BLOCK_STRINGS = 1 << BLOCK_SHIFT
CACHED_BLOCKS = 32
# Below this the table stays a plain list: compressing it would cost time for little memory.
PLAIN_LIMIT_CHARS = 8 * 1024 * 1024
_SEP = "\x00"  # never in XML text, so it can separate strings


class SharedStrings:
    """Append strings while parsing, `finish()`, then `get(index)`."""

    def __init__(self) -> None:
        self._plain: list[str] | None = []
        self._plain_chars = 0
        self._blocks: list[bytes] = []
        self._pending: list[str] = []
        self._cache: dict[int, list[str]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    @property
    def compressed_bytes(self) -> int:
        return sum(len(block) for block in self._blocks)

    def extend(self, texts: list[str]) -> None:
        self._count += len(texts)
        if self._plain is not None:
            self._plain.extend(texts)
            self._plain_chars += sum(map(len, texts)) + len(texts)
            if self._plain_chars <= PLAIN_LIMIT_CHARS:
                return
            # Too big to keep plain: from here on, compressed blocks.
            texts, self._plain = self._plain, None
        pending = self._pending
        pending.extend(texts)
        while len(pending) >= BLOCK_STRINGS:
            self._seal(pending[:BLOCK_STRINGS])
            del pending[:BLOCK_STRINGS]

    def finish(self) -> None:
        """No more strings: the last, partial block is sealed too."""
        if self._plain is None and self._pending:
            self._seal(self._pending)
            self._pending = []

    def _seal(self, strings: list[str]) -> None:
        self._blocks.append(zlib.compress(_SEP.join(strings).encode("utf-8"), 1))

    def get(self, index: int) -> str:
        """The string at `index`; IndexError when the table has no such entry."""
        if self._plain is not None:
            if index < 0:
                raise IndexError(index)
            return self._plain[index]
        strings = self._cache.get(index >> BLOCK_SHIFT)
        if strings is None:
            strings = self._load(index)
        return strings[index & (BLOCK_STRINGS - 1)]

    def _load(self, index: int) -> list[str]:
        number = index >> BLOCK_SHIFT
        if index < 0 or number >= len(self._blocks):
            if number == len(self._blocks) and 0 <= index:
                return self._pending  # before finish(): the block still being filled
            raise IndexError(index)
        strings = zlib.decompress(self._blocks[number]).decode("utf-8").split(_SEP)
        if len(self._cache) >= CACHED_BLOCKS:
            del self._cache[next(iter(self._cache))]
        self._cache[number] = strings
        return strings
