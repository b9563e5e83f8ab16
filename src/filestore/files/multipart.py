"""A streaming multipart/form-data reader over `request.stream()`.

python-multipart's push parser is fed each chunk as it arrives and reports parts through
callbacks; this module turns those callbacks into an async stream of events. File data is
handed on as zero-copy memoryviews of the received chunks, so nothing is buffered or spooled.
`read_field` and `read_head` read a part from that stream: a plain field's value, a file's
first bytes.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from filestore.errors import BadRequest, Unprocessable, UnsupportedMediaType

MAX_HEADER_BYTES = 16 * 1024
MAX_PARTS = 32
MAX_FIELD_BYTES = 64 * 1024


@dataclass
class PartStart:
    """A new part: its form field name and, for a file, the client's filename."""

    name: str
    filename: str | None
    content_type: str | None


@dataclass
class PartData:
    data: memoryview


@dataclass
class PartEnd:
    pass


Event = PartStart | PartData | PartEnd


def boundary_of(content_type: str | None) -> bytes:
    """The multipart boundary of a Content-Type header; 415/400 when it is not multipart."""
    kind, params = parse_options_header(content_type or "")
    if kind != b"multipart/form-data":
        raise UnsupportedMediaType(
            "Send the upload as multipart/form-data", code="multipart_required"
        )
    boundary = params.get(b"boundary")
    if not boundary or len(boundary) > 200:
        raise BadRequest(
            "The multipart Content-Type has no valid boundary", code="invalid_multipart"
        )
    return boundary


@dataclass
class _Collector:
    events: list[Event] = field(default_factory=list)
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    headers: dict[str, str] = field(default_factory=dict)
    header_bytes: int = 0
    parts: int = 0
    finished: bool = False

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise BadRequest(
                f"Too many form fields (more than {MAX_PARTS})", code="invalid_multipart"
            )
        self.headers = {}
        self.header_bytes = 0

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count(end - start)
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count(end - start)
        self.header_value += data[start:end]

    def _count(self, n: int) -> None:
        self.header_bytes += n
        if self.header_bytes > MAX_HEADER_BYTES:
            raise BadRequest("Multipart part headers are too large", code="invalid_multipart")

    def on_header_end(self) -> None:
        name = self.header_field.decode("latin-1").strip().lower()
        self.headers[name] = self.header_value.decode("utf-8", "replace").strip()
        self.header_field.clear()
        self.header_value.clear()

    def on_headers_finished(self) -> None:
        # As bytes: the parser maps them 1:1 through latin-1, so UTF-8 filenames (what browsers
        # send) survive; a str would be re-encoded as latin-1 and fail on any other character.
        raw = self.headers.get("content-disposition", "").encode()
        disposition, params = parse_options_header(raw)
        if disposition != b"form-data" or b"name" not in params:
            raise BadRequest("A multipart part has no form-data name", code="invalid_multipart")
        filename = params.get(b"filename")
        self.events.append(
            PartStart(
                name=params[b"name"].decode("utf-8", "replace"),
                filename=filename.decode("utf-8", "replace") if filename is not None else None,
                content_type=self.headers.get("content-type"),
            )
        )

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if end > start:
            # The parser passes its own reusable buffer for bytes it held back while checking
            # for a boundary; only immutable `bytes` may be handed on without a copy.
            view = (
                memoryview(data)[start:end]
                if isinstance(data, bytes)
                else memoryview(bytes(data[start:end]))
            )
            self.events.append(PartData(view))

    def on_part_end(self) -> None:
        self.events.append(PartEnd())

    def on_end(self) -> None:
        self.finished = True


async def read_events(boundary: bytes, body: AsyncIterator[bytes]) -> AsyncGenerator[Event]:
    """Parse `body` as it arrives; 400 for a malformed or truncated body."""
    collector = _Collector()
    parser = MultipartParser(
        boundary,
        callbacks={
            "on_part_begin": collector.on_part_begin,
            "on_part_data": collector.on_part_data,
            "on_part_end": collector.on_part_end,
            "on_header_field": collector.on_header_field,
            "on_header_value": collector.on_header_value,
            "on_header_end": collector.on_header_end,
            "on_headers_finished": collector.on_headers_finished,
            "on_end": collector.on_end,
        },
    )
    async for chunk in body:
        if not chunk:
            continue
        try:
            parser.write(chunk)
        except MultipartParseError as exc:
            raise BadRequest(f"Malformed multipart body: {exc}", code="invalid_multipart") from exc
        for event in collector.events:
            yield event
        collector.events.clear()
    try:
        parser.finalize()
    except MultipartParseError as exc:
        raise BadRequest(f"Malformed multipart body: {exc}", code="invalid_multipart") from exc
    for event in collector.events:
        yield event
    if not collector.finished:
        raise BadRequest("The multipart body ended early", code="incomplete_multipart")


async def read_field(name: str, events: AsyncIterator[Event]) -> str:
    """The value of a plain form field, at most MAX_FIELD_BYTES of UTF-8."""
    value = bytearray()
    async for event in events:
        if isinstance(event, PartEnd):
            break
        if isinstance(event, PartData):
            value += event.data
            if len(value) > MAX_FIELD_BYTES:
                raise Unprocessable(f"Form field {name!r} is too long", code="field_too_long")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Unprocessable(f"Form field {name!r} is not UTF-8", code="invalid_field") from exc


async def read_head(events: AsyncIterator[Event], limit: int) -> tuple[list[memoryview], bool]:
    """The first `limit` bytes of a file part (all of it if smaller; the chunks as received,
    so a little more), and whether the part ended."""
    head: list[memoryview] = []
    size = 0
    async for event in events:
        if isinstance(event, PartEnd):
            return head, True
        if isinstance(event, PartData):
            head.append(event.data)
            size += len(event.data)
            if size >= limit:
                return head, False
    raise Unprocessable("The upload ended inside the file", code="incomplete_multipart")
