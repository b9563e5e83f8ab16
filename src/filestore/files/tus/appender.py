"""Appending one request's bytes to a resumable upload's stored bytes, as they arrive.

S3 (tusd's layout, minus its disk spool): one multipart upload per tus upload. Bytes are cut
into parts of `UPLOAD_CHUNK_SIZE` (8 MiB, the part size of a form upload) and up to
`UPLOAD_CONCURRENCY` parts are uploaded while the next one fills, as a form upload does, so a
request holds at most that many parts plus one in memory (10,000 parts allow 78 GiB). When the
request's length is known (`Content-Length`, every tus client), a part that would leave less
than S3's 5 MiB minimum before the end of the request takes those bytes too, and a request's
last bytes, if at least 5 MiB, are a part of their own: a request of 5 MiB or more never leaves
a tail, whatever its size (6 MB chunks, 50 MiB chunks, one PATCH for the whole file). (The
part size itself does not change what the S3 server spends: SeaweedFS took 2.9-3.1 CPU s per
100 MiB for parts of 5, 8, 16 or 25 MiB alike, `docs/benchmarks.md`.) A part is the
list of the request's own chunks (memoryviews, the last one cut at the part's end), sent one
after another: the bytes are never copied into a part buffer, and `storage/resumable.py` sends
them with an unsigned payload (no SHA-256 of each part, on either side). Bytes left
over when the request ends (less than a part) go to a small *tail* object under
`.tus/<id>/`; the next request reads it back and puts it in front of its own bytes. Each tail
gets a new key and the old one is deleted only after the database points at the new one, so a
crash at any moment leaves the recorded state intact. Parts a failed request uploaded are
never recorded: the next request uploads the same part numbers again (S3 keeps the last), and
completion lists only the recorded parts. On the last byte the recorded parts plus the rest
are completed into the final object, or, for a file smaller than one part, a single PUT.

Local store: the bytes are written in place into `.tus/<id>` in the bucket's directory,
truncated first to the recorded offset (so bytes of a failed request never count), fsynced at
the end of each request, and renamed to the final key on the last byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import deque
from typing import Any, Protocol

from filestore.files.tus.models import TusUpload
from filestore.files.tus.service import Progress, temp_prefix
from filestore.storage.resumable import MIN_PART_SIZE, LocalPartial, Part, S3Multipart
from filestore.storage.store import ObjectStorage

LOCAL_WRITE_BATCH = 1024 * 1024
OBJECT_CONTENT_TYPE = "application/octet-stream"


class Appender(Protocol):
    """One request's writer: `write` each chunk, then `save` (the bytes are durable; returns
    the state to record) or `discard` (nothing of this request counts)."""

    received: int

    async def write(self, chunk: memoryview) -> None: ...

    async def save(self, *, final: bool) -> Progress: ...

    async def discard(self) -> None: ...

    async def forget_previous(self) -> None:
        """After the new state is recorded: delete what the old state used and no longer does."""
        ...


async def open_appender(
    storage: ObjectStorage,
    upload: TusUpload,
    *,
    expected: int | None = None,
    part_size: int = MIN_PART_SIZE,
    parts_in_flight: int = 3,
) -> Appender:
    """The writer for one request of `upload`. `expected` is the request body's length when
    known; parts are `part_size` (at least S3's minimum), `parts_in_flight` at once."""
    if upload.upload_length is not None and upload.upload_offset == upload.upload_length:
        # Every byte arrived but verification never finished: the object is at its final key.
        await storage.delete(upload.bucket, upload.object_key)
    client = storage.s3_client
    if client is None:
        path = storage.local_path(upload.bucket, temp_prefix(upload.id))
        assert path is not None
        local = LocalAppender(storage, upload, LocalPartial(path))
        await local.open()
        return local
    multipart = S3Multipart(
        client,
        upload.bucket,
        upload.object_key,
        http=storage.s3_http,
        sign_part=storage.part_url,
    )
    s3 = S3Appender(
        storage,
        upload,
        multipart,
        expected=expected,
        part_size=max(part_size, MIN_PART_SIZE),
        parts_in_flight=max(parts_in_flight, 1),
    )
    await s3.open()
    return s3


class S3Appender:
    """Parts of `part_size` (or up to 5 MiB more at a request's end) to the multipart upload,
    the rest to a tail object."""

    def __init__(
        self,
        storage: ObjectStorage,
        upload: TusUpload,
        multipart: S3Multipart,
        *,
        expected: int | None,
        part_size: int,
        parts_in_flight: int,
    ) -> None:
        self._storage = storage
        self._upload = upload
        self._multipart = multipart
        self._multipart_id = upload.multipart_id
        self._parts = [Part.from_json(value) for value in upload.parts]
        self._previous_tail = upload.tail_key
        self._expected = expected
        self._part_size = part_size
        self._parts_in_flight = parts_in_flight
        # The bytes not in a part yet: chunks as received, and their total.
        self._pending: list[memoryview] = []
        self._pending_size = 0
        self._cut = part_size  # the pending size at which the next part is sent
        self._in_flight: deque[asyncio.Task[Part]] = deque()
        self._new_tail: str | None = None
        self.received = 0

    async def open(self) -> None:
        if self._previous_tail:
            tail = await self._storage.get_bytes(self._upload.bucket, self._previous_tail)
            self._pending, self._pending_size = [memoryview(tail)], len(tail)
        recorded = sum(part.size for part in self._parts) + self._pending_size
        if recorded != self._upload.upload_offset:
            raise RuntimeError(
                f"tus upload {self._upload.id}: stored bytes ({recorded}) differ from its "
                f"offset ({self._upload.upload_offset})"
            )
        self._cut = self._next_cut()

    def _next_cut(self) -> int:
        """Where the part being filled ends: at `part_size`, unless what would follow it up to
        the end of the request is less than S3's minimum part; then at the request's end."""
        if self._expected is None:
            return self._part_size
        unsent = self._pending_size + self._expected - self.received
        if unsent - self._part_size >= MIN_PART_SIZE:
            return self._part_size
        return max(unsent, self._part_size)

    async def write(self, chunk: memoryview) -> None:
        """Keep `chunk` (the caller does not reuse its buffer) for the part it falls in."""
        while chunk:
            room = self._cut - self._pending_size
            head, chunk = chunk[:room], chunk[room:]
            self._pending.append(head)
            self._pending_size += len(head)
            self.received += len(head)
            if self._pending_size == self._cut:
                part, self._pending, self._pending_size = self._pending, [], 0
                self._cut = self._next_cut()
                await self._send(part)

    async def _wait_in_flight(self, *, keep: int = 0) -> None:
        """Wait for the oldest parts in flight (in order) until at most `keep` remain."""
        while len(self._in_flight) > keep:
            self._parts.append(await self._in_flight[0])
            self._in_flight.popleft()

    async def _send(self, data: list[memoryview]) -> None:
        await self._wait_in_flight(keep=self._parts_in_flight - 1)
        if self._multipart_id is None:
            self._multipart_id = await self._multipart.create(OBJECT_CONTENT_TYPE)
        number = len(self._parts) + len(self._in_flight) + 1
        self._in_flight.append(
            asyncio.create_task(self._multipart.upload_part(self._multipart_id, number, data))
        )

    async def save(self, *, final: bool) -> Progress:
        if self._pending_size >= MIN_PART_SIZE and (not final or self._parts or self._in_flight):
            # The request's last bytes (a client that sent less than it announced, or a
            # request whose length was not known): big enough to be a part of their own.
            part, self._pending, self._pending_size = self._pending, [], 0
            await self._send(part)
        await self._wait_in_flight()
        upload = self._upload
        rest = b"".join(self._pending)  # less than a part, or the whole of a small file
        self._pending, self._pending_size = [], 0
        offset = sum(part.size for part in self._parts) + len(rest)
        if final:
            if not self._parts:
                # Smaller than one part: one PUT, and no multipart upload left behind.
                await self._storage.put_bytes(upload.bucket, upload.object_key, rest)
                if self._multipart_id is not None:
                    await self._multipart.abort(self._multipart_id)
            else:
                assert self._multipart_id is not None
                if rest:
                    await self._send([memoryview(rest)])
                    await self._wait_in_flight()
                await self._multipart.complete(self._multipart_id, self._parts)
            return Progress(offset=offset, multipart_id=None, parts=[], tail_key=None)
        tail_key = None
        if rest:
            tail_key = f"{temp_prefix(upload.id)}/tail-{uuid.uuid4().hex[:12]}"
            await self._storage.put_bytes(upload.bucket, tail_key, rest)
        self._new_tail = tail_key
        return Progress(
            offset=offset, multipart_id=self._multipart_id, parts=self._parts, tail_key=tail_key
        )

    async def discard(self) -> None:
        tasks, self._in_flight = list(self._in_flight), deque()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        self._pending, self._pending_size = [], 0

    async def forget_previous(self) -> None:
        previous = self._previous_tail
        if previous and previous != self._new_tail:
            await self._storage.delete(self._upload.bucket, previous)


class LocalAppender:
    """Writes in place into the partial file, in batches of LOCAL_WRITE_BATCH."""

    def __init__(self, storage: ObjectStorage, upload: TusUpload, partial: LocalPartial) -> None:
        self._storage = storage
        self._upload = upload
        self._partial = partial
        self._handle: Any = None
        self._batch = bytearray()
        self.received = 0

    async def open(self) -> None:
        self._handle = await self._partial.open_at(self._upload.upload_offset)

    async def write(self, chunk: memoryview) -> None:
        self.received += len(chunk)
        self._batch += chunk
        if len(self._batch) >= LOCAL_WRITE_BATCH:
            batch, self._batch = self._batch, bytearray()
            await self._partial.write(self._handle, batch)

    async def save(self, *, final: bool) -> Progress:
        if self._batch:
            await self._partial.write(self._handle, self._batch)
            self._batch = bytearray()
        handle, self._handle = self._handle, None
        offset = await self._partial.close(handle)
        if final:
            upload = self._upload
            target = self._storage.local_path(upload.bucket, upload.object_key)
            assert target is not None
            await self._partial.finish(target)
        return Progress(offset=offset, multipart_id=None, parts=[], tail_key=None)

    async def discard(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            await self._partial.discard(handle)
        self._batch = bytearray()

    async def forget_previous(self) -> None:
        return None


async def remove_stored(storage: ObjectStorage, upload: TusUpload) -> None:
    """Everything an unfinished upload stored: its multipart upload, tail objects, partial file."""
    client = storage.s3_client
    if client is None:
        path = storage.local_path(upload.bucket, temp_prefix(upload.id))
        if path is not None:
            await LocalPartial(path).remove()
        return
    if upload.multipart_id:
        await S3Multipart(client, upload.bucket, upload.object_key).abort(upload.multipart_id)
    async for page in storage.list_objects(upload.bucket, prefix=temp_prefix(upload.id) + "/"):
        for item in page:
            await storage.delete(upload.bucket, item.key)
