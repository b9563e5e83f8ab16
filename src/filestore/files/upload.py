"""The streaming upload pipeline: it moves the bytes and asks the modules that own each rule.

request stream -> multipart events -> byte sinks (size guard, MD5 + SHA-256, virus scan) ->
object store. Form fields are parsed by `form.py` and checked by `service.py` the moment they
arrive, so a bad `customer_id` fails before a byte of the file is stored. The object is
written while the body arrives, to the bucket and key the fields seen so far give; fields that
come after the file (curl puts them in command-line order) can change that, and the object is
then moved server-side. Nothing is held in memory beyond a chunk (and the first 8 KiB, to sniff
the type) and nothing is spooled to disk.

The upload has its `file_uploads` row from the file's first bytes, through the state machine
every way in shares: `uploading` while the bytes stream, `verifying` once they are stored (the
rules that need every field and the whole file), then `completed` (listed, served). Bytes the
verification refuses (type, size, checksum, virus: `verify.rejection_of`) are deleted and the
row is left `rejected` with its reason; any other failure deletes object and row.

A file that ends within its sniffed head (8 KiB) arrives whole before anything is written; it
takes the shorter way of `whole_file.py` (verified in memory, one PUT, one statement).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from filestore import metrics
from filestore.audit import service as audit_service
from filestore.auth.principal import Actor
from filestore.errors import FilestoreError, Unprocessable
from filestore.files import completion, containers, multipart, verify, whole_file
from filestore.files import service as files_service
from filestore.files.form import UploadFields
from filestore.files.hashing import StreamHasher
from filestore.files.models import FileUpload, UploadStatus
from filestore.files.names import extension_of
from filestore.files.scan import VirusFound, VirusScan
from filestore.files.service import StoredObject
from filestore.files.sinks import SizeGuard, Tee, file_too_large
from filestore.files.sniff import SNIFF_BYTES, sniff
from filestore.requests import NO_CLIENT, ClientInfo
from filestore.settings import Settings
from filestore.storage.store import ObjectStorage

log = structlog.get_logger(__name__)

FORM_OVERHEAD_BYTES = 256 * 1024

Events = AsyncIterator[multipart.Event]


@dataclass
class UploadContext:
    """Everything one upload needs; built by the router, free of HTTP."""

    settings: Settings
    storage: ObjectStorage
    sessionmaker: async_sessionmaker[AsyncSession]
    user: Actor
    now: datetime
    client: ClientInfo = NO_CLIENT
    # Autocommit sessions (`AppState.reader`) for the one-statement writes and the lookups;
    # None: `sessionmaker`'s.
    reader: async_sessionmaker[AsyncSession] | None = None

    @property
    def statements(self) -> async_sessionmaker[AsyncSession]:
        return self.reader or self.sessionmaker


class Upload:
    """One multipart upload, from the first byte of the body to the committed row."""

    def __init__(self, ctx: UploadContext) -> None:
        self.ctx = ctx
        self.fields = UploadFields()
        self.stored: StoredObject | None = None
        self.row_id: int | None = None  # the `uploading` row, once the file's bytes start
        self._complete = False  # the object exists: a failure from here on deletes it
        # A file that ended within its head: its bytes, once verified, until the form ends.
        self.whole: bytes | None = None
        self._verifying_whole = False  # a refusal of its bytes writes a `rejected` row

    async def run(
        self, content_type: str | None, body: AsyncIterator[bytes]
    ) -> FileUpload | completion.CompletedFile:
        ctx, fields = self.ctx, self.fields
        events = multipart.read_events(multipart.boundary_of(content_type), body)
        try:
            async for event in events:
                if not isinstance(event, multipart.PartStart):
                    continue
                if event.filename is not None or event.name == "file":
                    await self._store_file(event, events)
                    continue
                text = await multipart.read_field(event.name, events)
                if fields.parse(event.name, text, now=ctx.now):
                    async with ctx.statements() as session:
                        await files_service.check_upload_field(
                            session, fields=fields, name=event.name, user=ctx.user
                        )
            stored = self.stored
            if stored is None:
                raise Unprocessable("The form has no `file` part", code="file_required")
            files_service.check_upload_complete(fields, user=ctx.user, stored=stored)
            if self.whole is not None:
                return await self._store_whole(stored, self.whole)
            await self._move_if_rerouted(stored)
            return await self._write_row(stored)
        except BaseException as exc:
            await self._discard()
            await self._untrack(exc)
            raise
        finally:
            await events.aclose()

    async def _store_file(self, start: multipart.PartStart, events: Events) -> None:
        if self.stored is not None:
            raise Unprocessable("Only one file per upload", code="duplicate_field")
        ctx = self.ctx
        filename = files_service.check_upload_filename(
            ctx.settings,
            part_name=start.name,
            filename=start.filename,
            file_type=self.fields.file_type,
        )
        head, ended = await multipart.read_head(events, SNIFF_BYTES)
        if not head:
            raise Unprocessable("The file is empty", code="empty_file")
        if ended:
            await self._verify_whole(filename, b"".join(head))
            return
        bucket, key = files_service.upload_location(
            ctx.settings, fields=self.fields, user=ctx.user, now=ctx.now
        )
        await self._track(bucket, key, filename)
        stored = StoredObject(
            bucket=bucket,
            key=key,
            filename=filename,
            mime_type=sniff(b"".join(head)[:SNIFF_BYTES], extension_of(filename)),
        )
        guard = SizeGuard(ctx.settings.max_file_size)
        hasher = StreamHasher()
        scan = await VirusScan.start(ctx.settings, filename=filename, user_id=ctx.user.id)
        sinks = Tee(guard, hasher, scan)
        self.stored = stored
        try:
            for view in head:
                await sinks.write(view)
            await self._put_stream(FileBytes(head, events, sinks), stored)
            self._complete = True
            log.info("file.stored", bucket=stored.bucket, key=stored.key, size=guard.size)
            await sinks.finish()
            await containers.check_stored(
                ctx.storage,
                stored.bucket,
                stored.key,
                size=guard.size,
                extension=extension_of(filename),
            )
        except BaseException:
            sinks.abort()
            raise
        stored.size, stored.md5, stored.sha256 = guard.size, hasher.md5, hasher.sha256
        stored.scan_status = scan.status
        await self._set_status(UploadStatus.verifying, file_size=stored.size)

    async def _verify_whole(self, filename: str, data: bytes) -> None:
        """Check a file that arrived whole, in memory (`whole_file.py`); nothing is stored."""
        ctx = self.ctx
        bucket, key = files_service.upload_location(
            ctx.settings, fields=self.fields, user=ctx.user, now=ctx.now
        )
        stored = StoredObject(bucket, key, filename, mime_type=verify.UNVERIFIED_MIME_TYPE)
        self.stored = stored
        self._verifying_whole = True  # from here a refusal of the bytes leaves a `rejected` row
        await whole_file.verify_bytes(ctx.settings, stored, data, user_id=ctx.user.id)
        self.whole = data

    async def _store_whole(self, stored: StoredObject, data: bytes) -> completion.CompletedFile:
        """One PUT and one statement for a file verified whole, once every field has passed."""
        ctx, fields = self.ctx, self.fields
        await whole_file.store(
            ctx.storage, ctx.settings, stored, data, fields=fields, user=ctx.user, now=ctx.now
        )
        self._complete = True
        return await whole_file.record(
            ctx.statements,
            ctx.settings,
            stored,
            fields=fields,
            user=ctx.user,
            now=ctx.now,
            client=ctx.client,
        )

    async def _track(self, bucket: str, key: str, filename: str) -> None:
        """Write the `uploading` row (not listed, not served) before the first byte is stored."""
        ctx, fields = self.ctx, self.fields
        row = verify.unverified_row(
            fields,
            ctx.user,
            filename=filename,
            bucket=bucket,
            key=key,
            status=UploadStatus.uploading,
        )
        async with ctx.sessionmaker() as session:
            session.add(row)
            await session.commit()
            self.row_id = row.id

    async def _set_status(self, status: UploadStatus, **values: object) -> None:
        """One UPDATE of the tracking row (no SELECT of it first, no ORM object)."""
        assert self.row_id is not None
        stmt = (
            update(FileUpload)
            .where(FileUpload.id == self.row_id)
            .values(upload_status=status, **values)
            .returning(FileUpload.id)
        )
        async with self.ctx.sessionmaker() as session:
            changed = (await session.execute(stmt)).first()
            assert changed is not None
            await session.commit()

    async def _put_stream(self, source: FileBytes, stored: StoredObject) -> None:
        try:
            await self.ctx.storage.put_stream(
                stored.bucket, stored.key, source.chunks(), content_type=stored.mime_type
            )
        except BaseException:
            # obstore reports our iterator's exception wrapped; re-raise the original one.
            if source.failure is not None:
                raise source.failure from None
            raise

    async def _move_if_rerouted(self, stored: StoredObject) -> None:
        ctx = self.ctx
        if files_service.is_placed_right(
            ctx.settings, fields=self.fields, user=ctx.user, bucket=stored.bucket, key=stored.key
        ):
            return
        bucket, key = files_service.upload_location(
            ctx.settings, fields=self.fields, user=ctx.user, now=ctx.now
        )
        await ctx.storage.move(stored.bucket, stored.key, bucket, key)
        log.info("file.rerouted", from_bucket=stored.bucket, to_bucket=bucket)
        stored.bucket, stored.key = bucket, key

    async def _write_row(self, stored: StoredObject) -> FileUpload:
        ctx = self.ctx
        expires_at = files_service.upload_expiry(ctx.settings, fields=self.fields, now=ctx.now)
        async with ctx.sessionmaker() as session:
            row = await files_service.record_upload(
                session,
                stored=stored,
                fields=self.fields,
                user=ctx.user,
                expires_at=expires_at,
                into=self.row_id,
            )
            await files_service.record_access(
                session,
                audit_service.Action.file_uploaded,
                file=row,
                user=ctx.user,
                client=ctx.client,
                details={"size": row.file_size, "sha256": row.sha256},
            )
            await session.commit()
        return row

    async def _discard(self) -> None:
        """Remove the stored object of a failed upload (the row was never committed)."""
        stored = self.stored
        if stored is None or not self._complete:
            return  # nothing was completed: obstore aborted the multipart upload itself
        try:
            await asyncio.shield(self.ctx.storage.delete(stored.bucket, stored.key))
            log.info("file.discarded", bucket=stored.bucket, key=stored.key)
        except Exception as exc:
            log.error(
                "file.discard_failed", bucket=stored.bucket, key=stored.key, error=str(exc)[:200]
            )

    async def _untrack(self, error: BaseException) -> None:
        """The row of a failed upload: `rejected` with the reason if verification refused the
        bytes, else gone (the client's mistake or a disconnect left nothing to record)."""
        row_id, self.row_id = self.row_id, None
        reason = verify.rejection_of(error)
        if row_id is None:
            if reason is not None and self._verifying_whole:
                assert self.stored is not None
                await whole_file.record_rejected(
                    self.ctx.sessionmaker,
                    self.stored,
                    fields=self.fields,
                    user=self.ctx.user,
                    reason=reason,
                )
            return
        try:
            async with self.ctx.sessionmaker() as session:
                row = await session.get(FileUpload, row_id)
                if row is None or row.upload_status is UploadStatus.completed:
                    return
                if reason is None:
                    await session.delete(row)
                else:
                    row.upload_status = UploadStatus.rejected
                    row.rejection_reason = reason.value
                await asyncio.shield(session.commit())
        except Exception as exc:  # the sweep removes a row left `uploading`
            log.error("file.untrack_failed", row_id=row_id, error=str(exc)[:200])


class FileBytes:
    """The file part's bytes for the object store: the head already read, then the rest of
    the part, each chunk through the sinks first. Anything that goes wrong is raised here, so
    obstore aborts its multipart upload, and kept in `failure`, as obstore re-raises it wrapped."""

    def __init__(self, head: list[memoryview], rest: Events, sinks: Tee) -> None:
        self._head = head
        self._rest = rest
        self._sinks = sinks
        self.failure: BaseException | None = None

    async def chunks(self) -> AsyncIterator[memoryview]:
        try:
            for view in self._head:
                yield view  # the sinks saw it before the store was opened
            async for event in self._rest:
                if isinstance(event, multipart.PartEnd):
                    return
                if isinstance(event, multipart.PartData):
                    await self._sinks.write(event.data)
                    yield event.data
            raise Unprocessable("The upload ended inside the file", code="incomplete_multipart")
        except BaseException as exc:
            self.failure = exc
            raise


async def receive(
    ctx: UploadContext,
    *,
    content_type: str | None,
    content_length: int | None,
    body: AsyncIterator[bytes],
) -> FileUpload | completion.CompletedFile:
    """Receive one upload; raises a FilestoreError for anything the client got wrong. The row
    is a `FileUpload`, or a `completion.CompletedFile` for a file verified whole."""
    started = time.perf_counter()
    upload = Upload(ctx)
    try:
        limit = ctx.settings.max_file_size
        if content_length is not None and content_length > limit + FORM_OVERHEAD_BYTES:
            raise file_too_large(limit)
        row = await upload.run(content_type, body)
    except BaseException as exc:
        outcome = exc.code if isinstance(exc, FilestoreError) else type(exc).__name__
        bucket = upload.stored.bucket if upload.stored else "none"
        metrics.UPLOADS.labels(bucket=bucket, outcome=outcome).inc()
        if isinstance(exc, VirusFound):
            await _audit_virus(ctx, upload, exc)
        raise
    metrics.UPLOADS.labels(bucket=row.bucket, outcome="stored").inc()
    metrics.UPLOAD_BYTES.inc(row.file_size)
    metrics.UPLOAD_DURATION.observe(time.perf_counter() - started)
    return row


async def _audit_virus(ctx: UploadContext, upload: Upload, found: VirusFound) -> None:
    """The event names the refused file by its name and its customer (its row, kept
    `rejected` with reason `virus`, holds no bytes)."""
    who = audit_service.Who(
        ctx.client, actor_id=ctx.user.id, customer_id=upload.fields.owner_customer_id(ctx.user)
    )
    filename = upload.stored.filename if upload.stored else None
    async with ctx.sessionmaker() as session:
        await audit_service.record(
            session,
            audit_service.Action.file_rejected_virus,
            who,
            {"filename": filename, "reason": str(found.message)[:200]},
        )
        await session.commit()
