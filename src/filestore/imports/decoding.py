"""Which text encoding an uploaded CSV is in, and decoding it as a stream, never as a whole.

`detect_encoding` decides from a bounded prefix of the file (`PREFIX_BYTES`) and says why:
a byte-order mark (UTF-8, UTF-16 LE/BE) is proof; otherwise strict UTF-8 is tried, then
Windows-1252 (which agrees with Latin-1 on every byte but 0x80-0x9F, where Latin-1 has only
invisible control characters). When the bytes fit no candidate, or fit one only as mojibake
(UTF-16 without a byte-order mark, a text that is mostly UTF-8 with a stray byte, Cyrillic or
Polish code pages read as Windows-1252), it refuses with a message naming the choices, and
`validation_rules.encoding` settles it.

`Utf8Transcoder` turns the file's bytes, chunk by chunk, into UTF-8 (strictly: a byte that is
not valid in the encoding fails the import with its offset, never becomes U+FFFD), so the
byte-offset record splitter and its resumable checkpoints work unchanged on any encoding:
`source_offset` maps a record boundary in the UTF-8 stream back to an offset in the file.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

PREFIX_BYTES = 64 * 1024

UTF8 = "utf-8"
UTF16LE = "utf-16-le"
UTF16BE = "utf-16-be"
CP1252 = "windows-1252"
LATIN1 = "latin-1"
DETECTED = (UTF8, UTF16LE, UTF16BE, CP1252, LATIN1)
# Only by `validation_rules.encoding`: never guessed, since any of them decodes any byte.
OVERRIDE_ONLY = tuple(f"windows-{n}" for n in (1250, 1251, 1253, 1254, 1255, 1256, 1257, 1258))
CHOICES = (*DETECTED, *OVERRIDE_ONLY)
_ALIASES = {
    "utf8": UTF8,
    "utf-8-sig": UTF8,
    "utf16le": UTF16LE,
    "utf16be": UTF16BE,
    "cp1252": CP1252,
    "1252": CP1252,
    "latin1": LATIN1,
    "iso-8859-1": LATIN1,
    "iso8859-1": LATIN1,
    **{f"cp{name[8:]}": name for name in OVERRIDE_ONLY},
}
_BOMS = ((codecs.BOM_UTF8, UTF8), (codecs.BOM_UTF16_LE, UTF16LE), (codecs.BOM_UTF16_BE, UTF16BE))
_UTF32_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)
# A well-formed UTF-8 sequence of two to four bytes.
_UTF8_MULTI = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
# A symbol between two letters: Polish or Czech Windows-1250 read as Windows-1252
# ("Wa³êsa"). Not the middle dot, which Catalan writes between two l's.
_WORD = re.compile(r"[^\W\d_]+")
_SYMBOL_IN_WORD = re.compile(r"[^\W\d_][\xa1-\xb6\xb8-\xbf\xd7\xf7][^\W\d_]")


class EncodingError(ValueError):
    """The file's encoding cannot be decided, or the file is not valid in it."""


def choices_hint() -> str:
    return "set validation_rules.encoding to one of: " + ", ".join(CHOICES)


def canonical(name: str) -> str:
    """The supported encoding `name` stands for (case, `_` and spaces ignored)."""
    key = re.sub(r"[\s_]+", "-", name.strip().lower())
    if key in {"utf-16", "utf16"}:
        return "utf-16"  # resolved by the byte-order mark
    found = key if key in CHOICES else _ALIASES.get(key)
    if found is None:
        raise EncodingError(f"Unknown or unsupported encoding {name!r}: {choices_hint()}")
    return found


@dataclass(frozen=True)
class Detected:
    """The file's encoding, the length of its byte-order mark (skipped, never data) and why."""

    encoding: str
    bom: int
    reason: str

    def to_json(self) -> dict[str, str | int]:
        return {"encoding": self.encoding, "bom": self.bom, "reason": self.reason}


def detect_encoding(
    prefix: bytes, *, override: str | None = None, complete: bool = False
) -> Detected:
    """Decide the encoding of a file from its first bytes (`complete`: they are the whole file).

    Raises EncodingError, with a message for the person who uploaded the file, when no
    encoding can be decided or the bytes are not valid in the one given or detected.
    """
    prefix = prefix[:PREFIX_BYTES]
    if any(prefix.startswith(bom) for bom in _UTF32_BOMS):
        raise EncodingError(
            "The file is UTF-32 (it starts with a UTF-32 byte-order mark), which is not "
            "supported: save it as CSV UTF-8"
        )
    bom_encoding, bom = next(((enc, len(b)) for b, enc in _BOMS if prefix.startswith(b)), ("", 0))
    if override:
        detected = _from_override(canonical(override), bom_encoding, bom)
    elif bom:
        detected = Detected(
            bom_encoding, bom, f"the file starts with a {_label(bom_encoding)} byte-order mark"
        )
    else:
        detected = _guess(prefix, complete)
    _check_prefix(prefix, detected, complete)
    return detected


def _label(encoding: str) -> str:
    return {UTF8: "UTF-8", UTF16LE: "UTF-16 LE", UTF16BE: "UTF-16 BE"}.get(encoding, encoding)


def _from_override(name: str, bom_encoding: str, bom: int) -> Detected:
    said = f"validation_rules.encoding is {name!r}"
    if name == "utf-16":
        if bom_encoding not in {UTF16LE, UTF16BE}:
            raise EncodingError(
                "validation_rules.encoding is 'utf-16' but the file has no UTF-16 byte-order "
                f"mark to tell the byte order: set it to {UTF16LE!r} or {UTF16BE!r}"
            )
        return Detected(
            bom_encoding, bom, f"{said} and the file has a {_label(bom_encoding)} byte-order mark"
        )
    if bom_encoding == name:
        return Detected(name, bom, f"{said} (its byte-order mark is skipped)")
    if bom_encoding:
        said += f"; note the file starts with a {_label(bom_encoding)} byte-order mark"
    return Detected(name, 0, said)


def _guess(prefix: bytes, complete: bool) -> Detected:
    if not prefix:
        return Detected(UTF8, 0, "the file is empty")
    nuls = prefix.count(0)
    if nuls:
        raise EncodingError(_nul_message(prefix, nuls))
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        decoder.decode(prefix, final=complete)
    except UnicodeDecodeError as exc:
        return _not_utf8(prefix, exc)
    scope = "the whole file is" if complete else f"the first {len(prefix)} bytes are"
    wide = sum(1 for _ in _UTF8_MULTI.finditer(prefix))
    if wide:
        return Detected(UTF8, 0, f"{scope} valid UTF-8 ({wide} non-ASCII characters)")
    return Detected(UTF8, 0, f"{scope} plain ASCII, read as UTF-8")


def _nul_message(prefix: bytes, nuls: int) -> str:
    even = prefix[0::2].count(0)
    odd = nuls - even
    half = len(prefix) // 2
    if half and max(even, odd) > half * 0.3 and min(even, odd) < max(even, odd) * 0.1:
        likely = UTF16BE if even > odd else UTF16LE
        return (
            "The file looks like UTF-16 (every other byte is zero) but has no byte-order mark "
            f"to tell the byte order (probably {likely}): set validation_rules.encoding to "
            f"{UTF16LE!r} or {UTF16BE!r}, or save the file as CSV UTF-8"
        )
    return (
        f"The file is not a CSV text file: it contains NUL bytes (first at offset "
        f"{prefix.index(0)})"
    )


def _not_utf8(prefix: bytes, exc: UnicodeDecodeError) -> Detected:
    bad = prefix[exc.start]
    valid_multi = sum(1 for _ in _UTF8_MULTI.finditer(prefix))
    invalid = _count_invalid_utf8(prefix)
    if valid_multi >= invalid:
        raise EncodingError(
            f"The file is mostly UTF-8 ({valid_multi} UTF-8 characters) but byte 0x{bad:02x} "
            f"at offset {exc.start} is not: it may be damaged or mix two encodings. Save it "
            f"again as CSV UTF-8, or {choices_hint()}"
        )
    try:
        text = prefix.decode("cp1252")
    except UnicodeDecodeError as cp_exc:
        byte = prefix[cp_exc.start]
        raise EncodingError(
            f"The file is not UTF-8 (byte 0x{bad:02x} at offset {exc.start}) nor Windows-1252 "
            f"(byte 0x{byte:02x} at offset {cp_exc.start} has no character there); if it is "
            f"Latin-1 (ISO-8859-1) or another code page, {choices_hint()}"
        ) from None
    doubt = _mojibake(text)
    if doubt:
        raise EncodingError(
            f"The file is not UTF-8 (byte 0x{bad:02x} at offset {exc.start}), and read as "
            f"Windows-1252 it {doubt}: it is probably in another code page. Save it as "
            f"CSV UTF-8, or {choices_hint()}"
        )
    high = sum(1 for b in prefix if b >= 0x80)
    controls = sum(1 for b in prefix if 0x80 <= b <= 0x9F)
    why = (
        f"not UTF-8 (byte 0x{bad:02x} at offset {exc.start}); {high} bytes above 0x7F, all "
        "Western European letters or punctuation in Windows-1252"
    )
    if not controls:
        why += " (no byte in 0x80-0x9F, so Latin-1 reads it the same)"
    return Detected(CP1252, 0, why)


def _count_invalid_utf8(data: bytes) -> int:
    return data.decode("utf-8", "replace").count("\ufffd")


def _mojibake(text: str) -> str | None:
    """Why `text`, decoded as Windows-1252, looks like another code page, or None.

    Western European words mix accented letters with plain ones (`Müller`, `déjà`); Cyrillic,
    Greek, Hebrew or Arabic read as Windows-1252 become words of accented letters only
    (`Èâàí Ïåòðîâ`), however much ASCII (e-mails, numbers) surrounds them."""
    accented = [w for w in _WORD.findall(text) if not w.isascii()]
    only = [w for w in accented if len(w) >= 4 and not any(c.isascii() for c in w)]
    if only and len(only) >= len(accented) * 0.3:
        return (
            f"would have words of accented letters only ({' '.join(only[:3])!r}), as Cyrillic, "
            "Greek, Hebrew or Arabic text read in the wrong code page does"
        )
    match = _SYMBOL_IN_WORD.search(text)
    if match:
        return f"would have symbols inside words ({match.group()!r})"
    return None


def _check_prefix(prefix: bytes, detected: Detected, complete: bool) -> None:
    """Fail now, with an offset, if the prefix is not valid in the encoding decided."""
    decoder = StreamDecoder(detected)
    decoder.feed(prefix)
    if complete:
        decoder.finish()


class StreamDecoder:
    """Bytes in, text out, strictly; `offset` is the file offset of the next byte not yet
    turned into text (a character cut by a chunk boundary waits for its other bytes)."""

    def __init__(self, detected: Detected, *, start_offset: int = 0) -> None:
        self.detected = detected
        self.offset = start_offset
        self.text_start = start_offset  # file offset where the last `feed`'s text begins
        self._skip = detected.bom if start_offset == 0 else 0
        self._decoder = codecs.getincrementaldecoder(detected.encoding)("strict")

    def _pending(self) -> int:
        return len(self._decoder.getstate()[0])

    def feed(self, data: bytes, *, final: bool = False) -> str:
        if self._skip:
            dropped = min(self._skip, len(data))
            data = data[dropped:]
            self._skip -= dropped
            self.offset += dropped
        self.text_start = self.offset
        # Bytes held back from the last chunk start at `offset`; error positions count from there.
        pending = self._pending()
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            raise EncodingError(self._invalid(exc, self.offset + exc.start)) from None
        if "\x00" in text:
            at = self.offset + encoded_length(text[: text.index("\x00")], self.detected.encoding)
            raise EncodingError(
                f"The file has a NUL character at offset {at}: it is not a CSV text file, "
                f"or not {self.detected.encoding} ({choices_hint()})"
            )
        self.offset += pending + len(data) - self._pending()
        return text

    def finish(self) -> str:
        """The last characters; fails if the file ends inside a character or its BOM."""
        if self._skip:
            raise EncodingError("The file ends inside its byte-order mark")
        return self.feed(b"", final=True)

    def _invalid(self, exc: UnicodeDecodeError, at: int) -> str:
        name = self.detected.encoding
        if exc.reason in ("unexpected end of data", "truncated data"):
            problem = f"ends in the middle of a {name} character"
        else:
            problem = f"is not valid {name}: byte 0x{exc.object[exc.start]:02x} at offset {at}"
        return (
            f"The file {problem} (read as {name} because {self.detected.reason}). Save it as "
            f"CSV UTF-8, or {choices_hint()}"
        )


def encoded_length(text: str, encoding: str) -> int:
    """Bytes that `text` takes in `encoding` (one of CHOICES)."""
    if encoding == UTF8:
        return len(text.encode("utf-8"))
    if encoding in (UTF16LE, UTF16BE):
        return 2 * len(text) + 2 * sum(1 for c in text if ord(c) > 0xFFFF)
    return len(text)


async def decode_stream(
    chunks: AsyncIterator[bytes | memoryview], detected: Detected, *, start_offset: int = 0
) -> AsyncIterator[str]:
    """The text of a byte stream, chunk by chunk; a character cut between two chunks comes
    out whole with the later one."""
    decoder = StreamDecoder(detected, start_offset=start_offset)
    async for chunk in chunks:
        text = decoder.feed(bytes(chunk))
        if text:
            yield text
    tail = decoder.finish()
    if tail:
        yield tail


@dataclass
class _Span:
    utf8_start: int
    file_start: int
    data: bytes


class Utf8Transcoder:
    """The file's bytes in, the same text in UTF-8 out, with offsets that map back.

    The UTF-8 stream's offsets start at the file offset of its first character, so for a
    UTF-8 file they are the file's own offsets (and its bytes pass through untouched, only
    validated); for another encoding `source_offset` maps a character boundary in the
    latest chunks back to the file. The byte-order mark is not passed on.
    """

    KEEP_SPANS = 4

    def __init__(self, detected: Detected, *, start_offset: int = 0) -> None:
        self.detected = detected
        self._decoder = StreamDecoder(detected, start_offset=start_offset)
        self._identity = detected.encoding == UTF8
        self.start_offset = start_offset + (detected.bom if start_offset == 0 else 0)
        self._utf8_end = self.start_offset
        self._spans: list[_Span] = []

    def feed(self, data: bytes) -> bytes:
        return self._emit(self._decoder.feed(data))

    def finish(self) -> bytes:
        return self._emit(self._decoder.finish())

    def _emit(self, text: str) -> bytes:
        if not text:
            return b""
        out = text.encode("utf-8")
        if not self._identity:
            self._spans.append(_Span(self._utf8_end, self._decoder.text_start, out))
            del self._spans[: -self.KEEP_SPANS]
        self._utf8_end += len(out)
        return out

    def source_offset(self, utf8_offset: int) -> int:
        """The file offset of the character at `utf8_offset` in the UTF-8 stream (a
        character boundary at most KEEP_SPANS chunks back)."""
        if self._identity or utf8_offset == self._utf8_end:
            return utf8_offset if self._identity else self._decoder.offset
        for span in reversed(self._spans):
            if span.utf8_start <= utf8_offset <= span.utf8_start + len(span.data):
                head = span.data[: utf8_offset - span.utf8_start].decode("utf-8")
                return span.file_start + encoded_length(head, self.detected.encoding)
        raise ValueError(f"offset {utf8_offset} is no longer mapped")

    async def stream(self, chunks: AsyncIterator[bytes | memoryview]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            out = self.feed(bytes(chunk))
            if out:
                yield out
        tail = self.finish()
        if tail:
            yield tail
