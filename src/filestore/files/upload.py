"""The streaming upload pipeline.

request stream -> multipart events -> (size guard, MD5 + SHA-256, type sniff) -> object store.

Form fields are validated the moment they arrive, so a bad `customer_id` fails before a byte
of the file is stored. The object is written while the body arrives; the bucket and key are
chosen from the fields seen before the file part. Fields that come after the file (curl puts
them in command-line order) can change the bucket: the object is then moved server-side. The
row is written only once the object is complete; if that fails, the object is deleted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from filestore import metrics
from filestore.auth.models import Role, User
from filestore.customers import service as customers_service
from filestore.errors import (
    FilestoreError,
    Forbidden,
    PayloadTooLarge,
    Unprocessable,
    UnsupportedMediaType,
)
from filestore.files import multipart
from filestore.files import scan as scanning
from filestore.files import service as files_service
from filestore.files.form import UploadFields
from filestore.files.hashing import StreamHasher
from filestore.files.models import FileUpload, ScanStatus, UploadStatus
from filestore.files.names import extension_of, sanitize_filename
from filestore.files.sniff import SNIFF_BYTES, sniff
from filestore.settings import Settings
from filestore.storage.store import ObjectStorage
from filestore.tickets import service as tickets_service

log = structlog.get_logger(__name__)

MAX_FIELD_BYTES = 64 * 1024
FORM_OVERHEAD_BYTES = 256 * 1024


@dataclass
class UploadContext:
    """Everything one upload needs; built by the router, free of HTTP."""

    settings: Settings
    storage: ObjectStorage
    sessionmaker: async_sessionmaker[AsyncSession]
    user: User
    now: datetime


@dataclass
class StoredBytes:
    bucket: str
    key: str
    filename: str
    mime_type: str
    size: int = 0
    md5: str = ""
    sha256: str = ""
    scan_status: ScanStatus = ScanStatus.disabled


class Upload:
    """One multipart upload, from the first byte of the body to the committed row."""

    def __init__(self, ctx: UploadContext) -> None:
        self.ctx = ctx
        self.fields = UploadFields()
        self.stored: StoredBytes | None = None
        self._failure: BaseException | None = None

    async def run(self, content_type: str | None, body: AsyncIterator[bytes]) -> FileUpload:
        boundary = multipart.boundary_of(content_type)
        events: AsyncGenerator[multipart.Event] = multipart.read_events(boundary, body)
        try:
            async for event in events:
                if isinstance(event, multipart.PartStart):
                    if event.filename is not None or event.name == "file":
                        await self._receive_file(event, events)
                    else:
                        await self._receive_field(event.name, events)
            if self.stored is None:
                raise Unprocessable("The form has no `file` part", code="file_required")
            await self._finalise_access()
            await self._move_if_rerouted()
            self._verify_checksum()
            return await self._write_row()
        except BaseException:
            await self._discard()
            raise
        finally:
            await events.aclose()

    # -- fields ---------------------------------------------------------------------------------

    async def _receive_field(self, name: str, events: AsyncIterator[multipart.Event]) -> None:
        value = bytearray()
        async for event in events:
            if isinstance(event, multipart.PartEnd):
                break
            if isinstance(event, multipart.PartData):
                value += event.data
                if len(value) > MAX_FIELD_BYTES:
                    raise Unprocessable(f"Form field {name!r} is too long", code="field_too_long")
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Unprocessable(f"Form field {name!r} is not UTF-8", code="invalid_field") from exc
        await self._apply_field(name, text)

    async def _apply_field(self, name: str, value: str) -> None:
        """Parse the field, then the checks that need the user or the database."""
        fields, user = self.fields, self.ctx.user
        if not fields.parse(name, value, now=self.ctx.now):
            return
        if name == "file_type":
            if fields.file_type == files_service.BACKUP_FILE_TYPE and user.role is not Role.admin:
                raise Forbidden("Only admins can upload backups", code="forbidden_backup")
        elif name == "customer_id" and fields.customer_id is not None:
            async with self.ctx.sessionmaker() as session:
                await customers_service.get_visible(
                    session, customer_id=fields.customer_id, user=user
                )
        elif name == "ticket_id" and fields.ticket_id is not None:
            async with self.ctx.sessionmaker() as session:
                ticket = await tickets_service.get_visible(
                    session, ticket_id=fields.ticket_id, user=user
                )
            fields.ticket_customer_id = ticket.customer_id

    # -- the file --------------------------------------------------------------------------------

    async def _receive_file(
        self, start: multipart.PartStart, events: AsyncIterator[multipart.Event]
    ) -> None:
        if start.name != "file":
            raise Unprocessable(
                f"Send the file in the `file` field, not {start.name!r}", code="invalid_field"
            )
        if self.stored is not None:
            raise Unprocessable("Only one file per upload", code="duplicate_field")
        if start.filename is None:
            raise Unprocessable(
                "The `file` part has no filename: send it as a file (curl: -F file=@name.csv)",
                code="file_required",
            )
        if start.filename.strip() == "":
            raise Unprocessable("No file was chosen", code="file_required")
        filename = sanitize_filename(start.filename)
        extension = extension_of(filename)
        allowed = self.ctx.settings.allowed_file_types
        if extension not in allowed:
            raise UnsupportedMediaType(
                f"Files of type .{extension or '(none)'} are not allowed; "
                f"allowed: {', '.join(allowed)}",
                code="file_type_not_allowed",
            )
        if self.fields.file_type == files_service.CSV_FILE_TYPE and extension != "csv":
            raise Unprocessable("file_type csv needs a .csv file", code="invalid_field")

        head, ended = await self._read_head(events)
        if not head:
            raise Unprocessable("The file is empty", code="empty_file")
        self._check_size(len(head))
        mime_type = sniff(b"".join(head)[:SNIFF_BYTES], extension)
        ctx = self.ctx
        stored = StoredBytes(
            bucket=files_service.route_bucket(
                ctx.settings, file_type=self.fields.file_type, ticket_id=self.fields.ticket_id
            ),
            key=files_service.object_key(
                customer_id=self.fields.owner_customer_id(ctx.user),
                user_id=ctx.user.id,
                now=ctx.now,
            ),
            filename=filename,
            mime_type=mime_type,
        )
        scanner = await self._start_scan(stored)
        hasher = StreamHasher()
        source = self._file_bytes(head, ended, events, hasher, stored, scanner)
        self.stored = stored
        try:
            try:
                await ctx.storage.put_stream(
                    stored.bucket, stored.key, source, content_type=mime_type
                )
            except BaseException as exc:
                # obstore reports our iterator's exception wrapped; re-raise the original one.
                failure = self._failure or exc
                if self._failure is not None:
                    raise failure from None
                raise
            stored.md5, stored.sha256 = await hasher.digests()
            log.info("file.stored", bucket=stored.bucket, key=stored.key, size=stored.size)
            if scanner is not None:
                # After `md5` is set: if this raises, `_discard` deletes the complete object.
                self._apply_verdict(await scanner.verdict(), stored)
        finally:
            if scanner is not None:
                scanner.close()

    async def _read_head(
        self, events: AsyncIterator[multipart.Event]
    ) -> tuple[list[memoryview], bool]:
        """Collect the first SNIFF_BYTES (or the whole file if smaller) before storing anything."""
        head: list[memoryview] = []
        size = 0
        async for event in events:
            if isinstance(event, multipart.PartEnd):
                return head, True
            if isinstance(event, multipart.PartData):
                head.append(event.data)
                size += len(event.data)
                self._check_size(size)
                if size >= SNIFF_BYTES:
                    return head, False
        raise Unprocessable("The upload ended inside the file", code="incomplete_multipart")

    def _check_size(self, size: int) -> None:
        limit = self.ctx.settings.max_file_size
        if size > limit:
            raise PayloadTooLarge(
                f"File is larger than the limit of {limit} bytes", code="file_too_large"
            )

    async def _file_bytes(
        self,
        head: list[memoryview],
        ended: bool,
        events: AsyncIterator[multipart.Event],
        hasher: StreamHasher,
        stored: StoredBytes,
        scanner: scanning.InstreamScan | None,
    ) -> AsyncIterator[memoryview]:
        """The file's bytes for the store (and clamd); raising here aborts the stored upload."""
        try:
            for view in head:
                stored.size += len(view)
                await hasher.feed(view)
                if scanner is not None:
                    await self._scan(scanner, view, stored)
                yield view
            if ended:
                return
            async for event in events:
                if isinstance(event, multipart.PartEnd):
                    return
                if isinstance(event, multipart.PartData):
                    stored.size += len(event.data)
                    self._check_size(stored.size)
                    await hasher.feed(event.data)
                    if scanner is not None:
                        await self._scan(scanner, event.data, stored)
                    yield event.data
            raise Unprocessable("The upload ended inside the file", code="incomplete_multipart")
        except BaseException as exc:
            self._failure = exc
            raise

    # -- virus scanning ---------------------------------------------------------------------------

    async def _start_scan(self, stored: StoredBytes) -> scanning.InstreamScan | None:
        """An INSTREAM session with clamd when VIRUS_SCAN=clamd (else None, status `disabled`)."""
        client = scanning.client_for(self.ctx.settings)
        if client is None:
            return None
        stored.scan_status = ScanStatus.unscanned  # until clamd says clean
        try:
            return await client.instream()
        except scanning.ClamdError as exc:
            self._not_scanned(stored, str(exc))
            return None

    async def _scan(
        self, scanner: scanning.InstreamScan, view: memoryview, stored: StoredBytes
    ) -> None:
        await scanner.feed(view)
        if scanner.failure is not None and not self.ctx.settings.virus_scan_fail_open:
            # Fail closed as soon as clamd gives up: the object store aborts the upload.
            self._not_scanned(stored, scanner.failure)

    def _apply_verdict(self, verdict: scanning.Verdict, stored: StoredBytes) -> None:
        if verdict.infected:
            log.warning(
                "file.virus_found",
                signature=verdict.signature,
                filename=stored.filename,
                size=stored.size,
                user_id=self.ctx.user.id,
            )
            raise scanning.VirusFound(
                f"The file is infected ({verdict.signature}); it was not stored"
            )
        if verdict.clean:
            stored.scan_status = ScanStatus.clean
            return
        self._not_scanned(stored, verdict.reason or "no verdict")

    def _not_scanned(self, stored: StoredBytes, reason: str) -> None:
        """clamd could not scan the file: refuse it (503), or keep it flagged `unscanned`."""
        settings = self.ctx.settings
        fail_open = settings.virus_scan_fail_open
        clamd = scanning.ClamdClient.from_settings(settings).address
        log.warning(
            "file.scan_failed", reason=reason, fail_open=fail_open, size=stored.size, clamd=clamd
        )
        if not fail_open:
            raise scanning.ScannerUnavailable(
                f"The file could not be virus-scanned, so it was not stored ({reason}); "
                "try again later"
            )
        stored.scan_status = ScanStatus.unscanned

    # -- after the body --------------------------------------------------------------------------

    def _final_bucket(self) -> str:
        return files_service.route_bucket(
            self.ctx.settings, file_type=self.fields.file_type, ticket_id=self.fields.ticket_id
        )

    async def _finalise_access(self) -> None:
        """Rules that need every field: a customer uploads only for itself."""
        user, fields = self.ctx.user, self.fields
        if user.role is Role.customer:
            owner = fields.owner_customer_id(user)
            if owner != user.customer_id:
                raise Forbidden("Customers can only upload their own files", code="forbidden_owner")
        if fields.customer_id is not None and fields.ticket_customer_id is not None:
            if fields.customer_id != fields.ticket_customer_id:
                raise Unprocessable(
                    f"Ticket {fields.ticket_id} belongs to another customer",
                    code="ticket_customer_mismatch",
                )
        # Checked again here: a file_type=csv field may come after the file (curl's order).
        stored = self.stored
        if fields.file_type == files_service.CSV_FILE_TYPE and stored is not None:
            if extension_of(stored.filename) != "csv":
                raise Unprocessable("file_type csv needs a .csv file", code="invalid_field")
        if fields.file_type == files_service.TEMP_FILE_TYPE and fields.expires_at is None:
            fields.expires_at = self.ctx.now + timedelta(
                hours=self.ctx.settings.temp_file_ttl_hours
            )

    async def _move_if_rerouted(self) -> None:
        stored = self.stored
        assert stored is not None
        owner = self.fields.owner_customer_id(self.ctx.user)
        bucket = self._final_bucket()
        expected_prefix = (
            f"customers/{owner}/" if owner is not None else f"users/{self.ctx.user.id}/"
        )
        if bucket == stored.bucket and stored.key.startswith(expected_prefix):
            return
        key = files_service.object_key(
            customer_id=owner, user_id=self.ctx.user.id, now=self.ctx.now
        )
        await self.ctx.storage.move(stored.bucket, stored.key, bucket, key)
        log.info("file.rerouted", from_bucket=stored.bucket, to_bucket=bucket)
        stored.bucket, stored.key = bucket, key

    def _verify_checksum(self) -> None:
        stored = self.stored
        assert stored is not None
        expected = self.fields.checksum_sha256
        if expected is not None and expected != stored.sha256:
            raise Unprocessable(
                f"checksum_sha256 does not match: the server computed {stored.sha256}",
                code="checksum_mismatch",
            )

    async def _write_row(self) -> FileUpload:
        stored, fields, ctx = self.stored, self.fields, self.ctx
        assert stored is not None
        row = FileUpload(
            filename=stored.filename,
            bucket=stored.bucket,
            object_key=stored.key,
            file_size=stored.size,
            mime_type=stored.mime_type,
            file_type=fields.file_type,
            md5=stored.md5,
            sha256=stored.sha256,
            upload_status=UploadStatus.completed,
            customer_id=fields.owner_customer_id(ctx.user),
            ticket_id=fields.ticket_id,
            service_id=fields.service_id,
            metadata_=fields.metadata,
            expires_at=fields.expires_at,
            uploaded_by=ctx.user.id,
            scan_status=stored.scan_status,
        )
        async with ctx.sessionmaker() as session:
            session.add(row)
            await session.commit()
        return row

    async def _discard(self) -> None:
        """Remove the stored object of a failed upload (the row was never committed)."""
        stored = self.stored
        if stored is None or not stored.md5:
            return  # nothing was completed: obstore aborted the multipart upload itself
        try:
            await asyncio.shield(self.ctx.storage.delete(stored.bucket, stored.key))
            log.info("file.discarded", bucket=stored.bucket, key=stored.key)
        except Exception as exc:
            log.error(
                "file.discard_failed", bucket=stored.bucket, key=stored.key, error=str(exc)[:200]
            )


async def receive(
    ctx: UploadContext,
    *,
    content_type: str | None,
    content_length: int | None,
    body: AsyncIterator[bytes],
) -> FileUpload:
    """Receive one upload; raises a FilestoreError for anything the client got wrong."""
    started = time.perf_counter()
    upload = Upload(ctx)
    try:
        limit = ctx.settings.max_file_size
        if content_length is not None and content_length > limit + FORM_OVERHEAD_BYTES:
            raise PayloadTooLarge(
                f"File is larger than the limit of {limit} bytes", code="file_too_large"
            )
        row = await upload.run(content_type, body)
    except BaseException as exc:
        outcome = exc.code if isinstance(exc, FilestoreError) else type(exc).__name__
        bucket = upload.stored.bucket if upload.stored else "none"
        metrics.UPLOADS.labels(bucket=bucket, outcome=outcome).inc()
        raise
    metrics.UPLOADS.labels(bucket=row.bucket, outcome="stored").inc()
    metrics.UPLOAD_BYTES.inc(row.file_size)
    metrics.UPLOAD_DURATION.observe(time.perf_counter() - started)
    return row
