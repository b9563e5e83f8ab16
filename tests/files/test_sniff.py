"""Content sniffing: the stored MIME type comes from the bytes and must agree with the extension."""

from __future__ import annotations

from typing import Any

import puremagic
import puremagic.main as puremagic_tables
import pytest
from hypothesis import given
from hypothesis import strategies as st

from filestore.errors import UnsupportedMediaType
from filestore.files.sniff import SAFE_INLINE_TYPES, looks_like_text, magic_matches, sniff

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01" + b"\x00" * 32
GIF = b"GIF89a" + b"\x00" * 32
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
WINDOWS_EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 54
ELF = b"\x7fELF\x02\x01\x01" + b"\x00" * 57
CSV = b"full_name,email\nJohn Doe,john@example.com\n"


class TestMatchingContent:
    @pytest.mark.parametrize(
        ("head", "extension", "mime"),
        [
            (PNG, "png", "image/png"),
            (JPEG, "jpg", "image/jpeg"),
            (JPEG, "jpeg", "image/jpeg"),
            (GIF, "gif", "image/gif"),
            (PDF, "pdf", "application/pdf"),
            (CSV, "csv", "text/csv"),
        ],
    )
    def test_type_comes_from_the_bytes(self, head: bytes, extension: str, mime: str) -> None:
        assert sniff(head, extension) == mime

    def test_latin1_csv_is_text(self) -> None:
        assert sniff("café,Zürich\n".encode("latin-1"), "csv") == "text/csv"

    @pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
    def test_utf16_csv_with_bom_is_text(self, encoding: str) -> None:
        """Excel's "Unicode Text" and many billing exports; cut anywhere by the 8 KiB head."""
        head = ("\ufeff" + "name\temail\nZoë\tzoe@example.com\n" * 40).encode(encoding)[:1001]
        assert sniff(head, "csv") == "text/csv"

    def test_utf16_bom_then_binary_is_not_text(self) -> None:
        assert not looks_like_text(b"\xff\xfe" + bytes(range(256)))

    def test_utf8_cut_inside_last_character_is_still_text(self) -> None:
        head = ("é" * 100).encode()[:-1]  # the 8 KiB head can end mid-character
        assert looks_like_text(head)
        assert sniff(head, "csv") == "text/csv"

    def test_unknown_extension_with_text_is_plain_text(self) -> None:
        assert sniff(b"just some notes\n", "notes") == "text/plain"

    def test_unknown_extension_with_binary_is_octet_stream(self) -> None:
        assert sniff(b"\x00\x01\x02\x03\x04", "dat") == "application/octet-stream"


class TestOfficeContainers:
    @pytest.mark.parametrize("extension", ["xlsx", "docx", "pptx"])
    def test_encrypted_office_file_says_so(self, extension: str) -> None:
        """Office encrypts a password-protected .xlsx into an OLE2 container (like .xls)."""
        with pytest.raises(UnsupportedMediaType) as caught:
            sniff(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504), extension)
        assert caught.value.code == "content_mismatch"
        assert "password-protected" in caught.value.message
        assert f"save it as .{extension}" in caught.value.message


class TestMismatchRefused:
    @pytest.mark.parametrize(
        ("head", "extension"),
        [
            (PNG, "pdf"),
            (GIF, "png"),
            (PDF, "doc"),
            (b"plain text, not an image", "png"),
            (CSV, "xlsx"),
        ],
    )
    def test_binary_extension_needs_its_magic(self, head: bytes, extension: str) -> None:
        with pytest.raises(UnsupportedMediaType) as caught:
            sniff(head, extension)
        assert caught.value.status_code == 415
        assert caught.value.code == "content_mismatch"
        assert f"not a .{extension} file" in str(caught.value.message)

    @pytest.mark.parametrize("extension", ["csv", "json", "txt"])
    def test_binary_bytes_in_a_text_format(self, extension: str) -> None:
        with pytest.raises(UnsupportedMediaType) as caught:
            sniff(b"\x00\x01\x02binary", extension)
        assert caught.value.code == "content_mismatch"

    @pytest.mark.parametrize("head", [WINDOWS_EXE, ELF, b"#!/bin/sh\nrm -rf /\n"])
    @pytest.mark.parametrize("extension", ["pdf", "png", "docx", "bin"])
    def test_executables_are_refused_whatever_the_name(self, head: bytes, extension: str) -> None:
        with pytest.raises(UnsupportedMediaType) as caught:
            sniff(head, extension)
        assert caught.value.code == "content_mismatch"


class TestLooksLikeText:
    @pytest.mark.parametrize(
        "head",
        [b"", b"a,b\r\n1,2\r\n", b"col\tcol\n", "Ünïcödé\n".encode(), "naïve".encode("latin-1")],
    )
    def test_text(self, head: bytes) -> None:
        assert looks_like_text(head)

    @pytest.mark.parametrize("head", [b"a\x00b", b"\x00", b"\xff\xfe\x01\x02\x03\x04\x05\x06"])
    def test_not_text(self, head: bytes) -> None:
        assert not looks_like_text(head)

    @given(
        st.text(alphabet=st.characters(exclude_categories=["Cc", "Cs"]) | st.sampled_from("\t\n\r"))
    )
    def test_any_utf8_text_without_controls_is_text(self, text: str) -> None:
        assert looks_like_text(text.encode())


class TestNeverCrashes:
    # min_size=1: an empty file is refused (422) before it is sniffed.
    @given(
        st.binary(min_size=1, max_size=512),
        st.sampled_from(["csv", "pdf", "png", "jpg", "docx", "xyz", ""]),
    )
    def test_any_bytes_give_a_type_or_415(self, head: bytes, extension: str) -> None:
        try:
            mime = sniff(head, extension)
        except UnsupportedMediaType:
            return  # a 415 is a valid answer; any other exception fails the test
        assert "/" in mime


class TestInlineTypes:
    def test_only_passive_formats_are_shown_inline(self) -> None:
        assert "text/html" not in SAFE_INLINE_TYPES
        assert "image/svg+xml" not in SAFE_INLINE_TYPES
        assert {"image/png", "image/jpeg", "application/pdf"} <= SAFE_INLINE_TYPES


def _puremagic_or_error(head: bytes) -> object:
    try:
        return puremagic.magic_string(head)
    except (puremagic.PureError, ValueError) as exc:
        return type(exc)


def _ours_or_error(head: bytes) -> object:
    try:
        return magic_matches(head)
    except (puremagic.PureError, ValueError) as exc:
        return type(exc)


def _signature_samples() -> list[bytes]:
    """Every header signature of puremagic's tables at its offset (with each multi-part
    continuation), every footer signature at the end, over two fillers."""
    samples = []
    for filler in (b"\x00", b"x"):
        for row in puremagic_tables.magic_header_array:
            head = filler * row.offset + row.byte_match
            samples.append(head + filler * 64)
            for part in puremagic_tables.multi_part_dict.get(row.byte_match, ()):
                if part.offset >= 0:
                    body = bytearray(head + filler * max(0, part.offset + len(part.byte_match)))
                    body[part.offset : part.offset + len(part.byte_match)] = part.byte_match
                    samples.append(bytes(body))
                else:
                    samples.append(head + filler * 64 + part.byte_match + filler * 0)
        for row in puremagic_tables.magic_footer_array:
            samples.append(
                filler * 64 + row.byte_match + filler * (-row.offset - len(row.byte_match))
            )
    return samples


def _same_length_pairs(per_length: int = 20) -> list[bytes]:
    """Two signatures of one length at different offsets, both in one file: puremagic ranks
    them equal, so only the tables' order decides which comes first."""
    by_length: dict[int, list[Any]] = {}
    for row in puremagic_tables.magic_header_array:
        by_length.setdefault(len(row.byte_match), []).append(row)
    samples = []
    for rows in by_length.values():
        made = 0
        for first in rows:
            for second in rows:
                if made >= per_length:
                    break
                if second.offset < first.offset + len(first.byte_match):
                    continue
                body = bytearray(b"\x00" * (second.offset + len(second.byte_match) + 8))
                body[first.offset : first.offset + len(first.byte_match)] = first.byte_match
                body[second.offset : second.offset + len(second.byte_match)] = second.byte_match
                samples += [bytes(body)]
                made += 1
    return samples


class TestIndexedSignatures:
    """`magic_matches` is puremagic's `magic_string` with its tables indexed: same matches,
    same order, same errors."""

    def test_equal_ranks_keep_the_tables_order(self) -> None:
        samples = _same_length_pairs()
        assert len(samples) > 20
        for head in samples:
            assert _ours_or_error(head) == _puremagic_or_error(head), head[:80]

    def test_every_signature_in_the_tables(self) -> None:
        samples = _signature_samples()
        assert len(samples) > 2800
        for head in samples:
            assert _ours_or_error(head) == _puremagic_or_error(head), head[:80]

    @pytest.mark.parametrize(
        "head", [PNG, JPEG, GIF, PDF, WINDOWS_EXE, ELF, CSV, b"", b"PK\x03\x04"]
    )
    def test_known_files(self, head: bytes) -> None:
        assert _ours_or_error(head) == _puremagic_or_error(head)

    @given(st.binary(min_size=0, max_size=600))
    def test_any_bytes(self, head: bytes) -> None:
        assert _ours_or_error(head) == _puremagic_or_error(head)

    @given(st.sampled_from(_signature_samples()), st.binary(max_size=64))
    def test_signatures_with_anything_after(self, head: bytes, tail: bytes) -> None:
        assert _ours_or_error(head + tail) == _puremagic_or_error(head + tail)
