"""Office files are what their container says: a JAR or a plain zip named .docx/.xlsx, or an
OLE2 file (an MSI) named .doc/.xls, is refused (415) and leaves nothing behind; the real
thing is stored. The container's table is read by ranged reads, never the whole file."""

from __future__ import annotations

import io
import random
import zipfile

import pytest

from filestore.errors import UnsupportedMediaType
from filestore.files import containers
from tests.files.tus.client import Tus
from tests.fixtures.app import AsyncApi
from tests.fixtures.live import Api
from tests.imports.xlsx_files import ole2


def zip_of(*names: str, padding: int = 0) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name in names:
            archive.writestr(name, "<x/>")
        if padding:
            archive.writestr("media/big.bin", random.randbytes(padding))
    return out.getvalue()


DOCX = zip_of("[Content_Types].xml", "word/document.xml")
XLSX = zip_of("[Content_Types].xml", "xl/workbook.xml")
JAR = zip_of("META-INF/MANIFEST.MF", "com/example/Main.class")
PLAIN_ZIP = zip_of("report.txt", "data/numbers.csv")


WORD_97 = ole2("WordDocument", "1Table", "\x05SummaryInformation")
EXCEL_97 = ole2("Workbook", "\x05SummaryInformation")
MSI = ole2("\x05SummaryInformation", "!_StringData", "!_StringPool")


class CountingFetch:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.fetched = 0

    async def __call__(self, start: int, end: int) -> bytes:
        self.fetched += end - start
        return self.data[start:end]


class TestContainerTables:
    @pytest.mark.parametrize(
        ("data", "extension"),
        [(DOCX, "docx"), (XLSX, "xlsx"), (WORD_97, "doc"), (EXCEL_97, "xls")],
    )
    async def test_real_office_files_pass(self, data: bytes, extension: str) -> None:
        await containers.check(CountingFetch(data), size=len(data), extension=extension)

    @pytest.mark.parametrize(
        ("data", "extension"),
        [
            (JAR, "docx"),
            (PLAIN_ZIP, "xlsx"),
            (XLSX, "docx"),
            (MSI, "doc"),
            (MSI, "xls"),
            (WORD_97, "xls"),
            (b"PK\x03\x04" + b"\x00" * 100, "docx"),
        ],
    )
    async def test_other_containers_are_refused(self, data: bytes, extension: str) -> None:
        with pytest.raises(UnsupportedMediaType) as refused:
            await containers.check(CountingFetch(data), size=len(data), extension=extension)
        assert refused.value.code == "content_mismatch"

    async def test_only_the_directory_is_read(self) -> None:
        big = zip_of("[Content_Types].xml", "word/document.xml", padding=4 * 1024 * 1024)
        fetch = CountingFetch(big)
        await containers.check(fetch, size=len(big), extension="docx")
        assert fetch.fetched < 70 * 1024


class TestUploads:
    @pytest.mark.parametrize(
        ("data", "filename"),
        [(JAR, "cv.docx"), (PLAIN_ZIP, "budget.xlsx"), (MSI, "letter.doc"), (MSI, "sheet.xls")],
    )
    def test_disguised_file_is_refused(
        self, admin: Api, customer_id: int, data: bytes, filename: str
    ) -> None:
        response = admin.upload(data, filename, customer_id=customer_id)
        assert response.status_code == 415, response.text
        assert response.json()["code"] == "content_mismatch"
        names = [f["filename"] for f in admin.get(f"/files/customer/{customer_id}").json()]
        assert filename not in names

    @pytest.mark.parametrize(
        ("data", "filename"),
        [(DOCX, "cv.docx"), (XLSX, "budget.xlsx"), (WORD_97, "letter.doc")],
    )
    def test_real_office_file_is_stored(
        self, admin: Api, customer_id: int, data: bytes, filename: str
    ) -> None:
        response = admin.upload(data, filename, customer_id=customer_id)
        assert response.status_code == 201, response.text
        assert admin.get(f"/files/download/{response.json()['id']}").content == data


class TestResumableUploads:
    async def test_jar_named_docx_is_refused_at_completion(self, admin_client: AsyncApi) -> None:
        tus = Tus(admin_client)
        path = await tus.new(len(JAR), {"filename": "cv.docx"})
        response = await tus.patch(path, 0, JAR)
        assert response.status_code == 415, response.text
        assert response.json()["code"] == "content_mismatch"

    async def test_real_docx_completes(self, admin_client: AsyncApi) -> None:
        stored = await Tus(admin_client).upload(DOCX, {"filename": "cv.docx"})
        assert stored["filename"] == "cv.docx"
