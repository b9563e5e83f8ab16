"""Encoding detection and streaming decoding of uploaded CSV files.

What a user checks: the encoding the import reports is the one the file is in, the text that
reaches the database is the text that was written (never mojibake), and a file that cannot be
decided is refused with a message that names the choices. Chunk boundaries are where the
object store's stream happens to cut, so they must never change the result.
"""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filestore.imports.decoding import (
    CHOICES,
    CP1252,
    LATIN1,
    PREFIX_BYTES,
    UTF8,
    UTF16BE,
    UTF16LE,
    Detected,
    EncodingError,
    StreamDecoder,
    Utf8Transcoder,
    decode_stream,
    detect_encoding,
    encoded_length,
)

BOMS = {UTF8: codecs.BOM_UTF8, UTF16LE: codecs.BOM_UTF16_LE, UTF16BE: codecs.BOM_UTF16_BE}
# Any character but NUL and lone surrogates (which no encoding may carry).
ANY_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
CP1252_TEXT = st.text(
    st.characters(codec="cp1252", exclude_characters="\x00"), min_size=0, max_size=300
)
LATIN1_TEXT = st.text(st.characters(codec="latin-1", exclude_characters="\x00"), max_size=300)
CUTS = st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=12)


def pieces(data: bytes, sizes: list[int]) -> list[bytes]:
    """`data` cut into chunks of the given sizes, cycling through them."""
    out, position, index = [], 0, 0
    while position < len(data):
        size = sizes[index % len(sizes)]
        out.append(data[position : position + size])
        position += size
        index += 1
    return out


async def agen(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def decode_all(data: bytes, detected: Detected, sizes: list[int]) -> str:
    async def run() -> str:
        return "".join([t async for t in decode_stream(agen(pieces(data, sizes)), detected)])

    return asyncio.run(run())


class TestRoundTrip:
    @given(text=ANY_TEXT, encoding=st.sampled_from(sorted(BOMS)), sizes=CUTS)
    @settings(max_examples=75, deadline=None)
    def test_unicode_with_bom_detected_and_decoded(
        self, text: str, encoding: str, sizes: list[int]
    ) -> None:
        data = BOMS[encoding] + text.encode(encoding)
        detected = detect_encoding(data[:PREFIX_BYTES], complete=len(data) <= PREFIX_BYTES)
        assert detected.encoding == encoding
        assert detected.bom == len(BOMS[encoding])
        assert decode_all(data, detected, sizes) == text

    @given(
        text=ANY_TEXT,
        encoding=st.sampled_from([UTF16LE, UTF16BE, UTF8]),
        sizes=CUTS,
    )
    @settings(max_examples=200, deadline=None)
    def test_unicode_without_bom_by_override(
        self, text: str, encoding: str, sizes: list[int]
    ) -> None:
        data = text.encode(encoding)
        detected = detect_encoding(data, override=encoding, complete=True)
        assert decode_all(data, detected, sizes) == text

    @given(
        text=st.one_of(
            CP1252_TEXT.map(lambda t: (t, CP1252)), LATIN1_TEXT.map(lambda t: (t, LATIN1))
        ),
        sizes=CUTS,
    )
    @settings(max_examples=200, deadline=None)
    def test_single_byte_by_override(self, text: tuple[str, str], sizes: list[int]) -> None:
        value, encoding = text
        data = value.encode("cp1252" if encoding == CP1252 else "latin-1")
        detected = detect_encoding(data, override=encoding, complete=True)
        assert decode_all(data, detected, sizes) == value

    @given(
        words=st.lists(
            # Western European words: ASCII letters around an accented one, as people write.
            st.tuples(
                st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz"), min_size=2, max_size=8),
                st.sampled_from("éèüöäñçàÉÜßøå"),
                st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz"), min_size=1, max_size=8),
            ).map("".join),
            min_size=1,
            max_size=40,
        ),
        sizes=CUTS,
    )
    @settings(max_examples=75, deadline=None)
    def test_western_text_in_cp1252_is_detected(self, words: list[str], sizes: list[int]) -> None:
        text = "name;city\n" + "\n".join(f"{w};Zürich" for w in words) + "\n"
        data = text.encode("cp1252")
        detected = detect_encoding(data, complete=True)
        assert detected.encoding == CP1252, detected
        assert decode_all(data, detected, sizes) == text

    @given(data=st.binary(max_size=200), sizes=CUTS)
    @settings(max_examples=75, deadline=None)
    def test_any_bytes_are_refused_or_decoded_losslessly(
        self, data: bytes, sizes: list[int]
    ) -> None:
        """Never mojibake: whatever is accepted re-encodes to exactly the file's bytes."""
        try:
            detected = detect_encoding(data, complete=True)
            text = decode_all(data, detected, sizes)
        except EncodingError as exc:
            message = str(exc)
        else:
            message = ""
        if message:
            assert "validation_rules.encoding" in message or "not a CSV text file" in message
            return
        assert "\ufffd" not in text or "\ufffd".encode(detected.encoding) in data
        assert text.encode(detected.encoding) == data[detected.bom :]


class TestTranscoder:
    @given(
        lines=st.lists(ANY_TEXT.map(lambda t: t.replace("\n", " ")), min_size=1, max_size=30),
        encoding=st.sampled_from([UTF8, UTF16LE, UTF16BE, CP1252]),
        bom=st.booleans(),
        sizes=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=8),
    )
    @settings(max_examples=75, deadline=None)
    def test_every_line_boundary_maps_back_to_its_file_offset(
        self, lines: list[str], encoding: str, bom: bool, sizes: list[int]
    ) -> None:
        if encoding == CP1252:
            lines = [line.encode("cp1252", "ignore").decode("cp1252") for line in lines]
            lines = [line.replace("\x00", "") for line in lines]
            bom = False
        text = "".join(line + "\n" for line in lines)
        prefix = BOMS[encoding] if bom else b""
        data = prefix + text.encode(encoding)
        detected = detect_encoding(data, override=encoding, complete=True)
        transcoder = Utf8Transcoder(detected)
        out = bytearray()
        # The file offset just past each line, by encoding the text before it.
        expected = {}
        u, f = transcoder.start_offset, len(prefix)
        for line in lines:
            u += len((line + "\n").encode("utf-8"))
            f += encoded_length(line + "\n", encoding)
            expected[u] = f
        for chunk in [*pieces(data, sizes), b""]:
            emitted_from = transcoder.start_offset + len(out)
            out += transcoder.feed(chunk) if chunk else transcoder.finish()
            for boundary, file_offset in expected.items():
                if emitted_from < boundary <= transcoder.start_offset + len(out):
                    assert transcoder.source_offset(boundary) == file_offset
        assert bytes(out) == text.encode("utf-8")

    def test_utf8_bytes_pass_through_with_file_offsets(self) -> None:
        data = codecs.BOM_UTF8 + "a,é\n".encode()
        transcoder = Utf8Transcoder(detect_encoding(data, complete=True))
        assert transcoder.feed(data) + transcoder.finish() == "a,é\n".encode()
        assert transcoder.start_offset == 3
        assert transcoder.source_offset(len(data)) == len(data)

    def test_resume_mid_file_skips_no_bom(self) -> None:
        """A resumed import reopens the file at a checkpoint: no byte-order mark there."""
        data = codecs.BOM_UTF16_LE + "a\nb\n".encode("utf-16-le")
        detected = detect_encoding(data, complete=True)
        transcoder = Utf8Transcoder(detected, start_offset=6)
        assert transcoder.feed(data[6:]) + transcoder.finish() == b"b\n"
        assert transcoder.source_offset(transcoder.start_offset + 2) == len(data)


class TestDetection:
    def test_utf8_with_and_without_bom(self) -> None:
        assert detect_encoding("José".encode(), complete=True).encoding == UTF8
        with_bom = detect_encoding(codecs.BOM_UTF8 + b"a", complete=True)
        assert (with_bom.encoding, with_bom.bom) == (UTF8, 3)
        assert "byte-order mark" in with_bom.reason

    def test_cp1252_reason_says_why(self) -> None:
        detected = detect_encoding("name\nJosé “Pepe” Müller\n".encode("cp1252"), complete=True)
        assert detected.encoding == CP1252
        assert "not UTF-8 (byte 0xe9 at offset 8)" in detected.reason

    def test_pure_latin1_range_says_latin1_reads_the_same(self) -> None:
        detected = detect_encoding("name\nMüller\n".encode("latin-1"), complete=True)
        assert detected.encoding == CP1252
        assert "Latin-1 reads it the same" in detected.reason

    @pytest.mark.parametrize(
        ("data", "words"),
        [
            ("name\nJosé".encode("utf-16-le"), ["UTF-16", "utf-16-le", "utf-16-be"]),
            ("name\nJosé".encode("utf-16-be"), ["UTF-16", "probably utf-16-be"]),
            (b"name\nab\x81c\n", ["nor Windows-1252", "latin-1"]),
            ("Ñandú ".encode() * 3 + b"caf\xe9", ["mostly UTF-8", "offset 27"]),
            (("Иван Петров;ivan@x.ru\n" * 3).encode("cp1251"), ["accented", "windows-1251"]),
            (
                "full_name,email,address,city\nИван Петров,ivan@example.com,1 Main St,Anytown\n"  # noqa: RUF001
                "Анна Иванова,anna@example.com,2 Oak Avenue,Springfield\n".encode("cp1251"),
                ["'Èâàí Ïåòðîâ", "windows-1251"],
            ),
            (
                "Γιώργος Παπαδόπουλος,g@example.gr\n".encode("cp1253"),
                ["accented letters only", "windows-1253"],
            ),
            ("Lech Wałęsa\n".encode("cp1250"), ["symbols inside words", "windows-1250"]),
        ],
    )
    def test_undecidable_names_the_choices(self, data: bytes, words: list[str]) -> None:
        with pytest.raises(EncodingError) as caught:
            detect_encoding(data, complete=True)
        message = str(caught.value)
        assert "validation_rules.encoding" in message
        for word in words:
            assert word in message

    def test_override_settles_it(self) -> None:
        data = ("Иван Петров;ivan@x.ru\n" * 3).encode("cp1251")
        detected = detect_encoding(data, override="CP1251", complete=True)
        assert detected.encoding == "windows-1251"
        assert "validation_rules.encoding" in detected.reason
        assert decode_all(data, detected, [5]) == "Иван Петров;ivan@x.ru\n" * 3

    def test_override_not_matching_the_bytes_fails_with_offset(self) -> None:
        with pytest.raises(EncodingError, match=r"not valid utf-8: byte 0xe9 at offset 3"):
            detect_encoding(b"caf\xe9 x", override="utf-8", complete=True)

    def test_override_keeps_bom_out_of_the_data(self) -> None:
        detected = detect_encoding(codecs.BOM_UTF8 + b"a", override="utf-8", complete=True)
        assert detected.bom == 3

    def test_utf16_override_needs_a_bom(self) -> None:
        with pytest.raises(EncodingError, match="'utf-16-le' or 'utf-16-be'"):
            detect_encoding(b"a\x00", override="utf-16", complete=True)
        assert detect_encoding(codecs.BOM_UTF16_BE, override="utf-16").encoding == UTF16BE

    def test_unknown_override(self) -> None:
        with pytest.raises(EncodingError, match="Unknown or unsupported encoding 'rot13'"):
            detect_encoding(b"a", override="rot13")

    def test_utf32_and_binary_refused(self) -> None:
        with pytest.raises(EncodingError, match="UTF-32"):
            detect_encoding(codecs.BOM_UTF32_LE + "a".encode("utf-32-le"))
        with pytest.raises(EncodingError, match="NUL bytes"):
            detect_encoding(b"PK\x03\x04\x00\x00\x08\x00abc")

    def test_prefix_cut_inside_a_character_is_not_an_error(self) -> None:
        data = "éé€".encode()[:-1]
        assert detect_encoding(data).encoding == UTF8
        # ...but a whole file that ends there is damaged.
        with pytest.raises(EncodingError, match="mostly UTF-8"):
            detect_encoding(data, complete=True)
        with pytest.raises(EncodingError, match="ends in the middle of a utf-8 character"):
            decode_all(data, Detected(UTF8, 0, "test"), [2])

    def test_choices_are_all_python_codecs(self) -> None:
        for name in CHOICES:
            codecs.lookup(name)


class TestStreamErrors:
    def test_bad_byte_after_the_prefix_fails_with_its_offset(self) -> None:
        """ASCII for the first 64 KiB, then Windows-1252: refused, never half-decoded."""
        data = b"name\n" + b"a" * PREFIX_BYTES + b"\ncaf\xe9\n"
        detected = detect_encoding(data[:PREFIX_BYTES])
        assert detected.encoding == UTF8
        with pytest.raises(EncodingError) as caught:
            decode_all(data, detected, [4096])
        message = str(caught.value)
        assert f"byte 0xe9 at offset {len(data) - 2}" in message
        assert "windows-1252" in message

    @given(cut=st.integers(min_value=1, max_value=8))
    def test_offset_of_bad_byte_is_exact_whatever_the_chunks(self, cut: int) -> None:
        data = "ab€".encode() + b"\xff" + b"cd"
        decoder = StreamDecoder(Detected(UTF8, 0, "test"))
        for chunk in pieces(data, [cut]):
            if b"\xff" in chunk:
                with pytest.raises(EncodingError, match="offset 5"):
                    decoder.feed(chunk)
                return
            decoder.feed(chunk)

    def test_nul_in_decoded_text(self) -> None:
        decoder = StreamDecoder(Detected(UTF16LE, 0, "test"))
        with pytest.raises(EncodingError, match="NUL character at offset 2"):
            decoder.feed("a\x00".encode("utf-16-le"))

    def test_file_ending_inside_a_character(self) -> None:
        decoder = StreamDecoder(Detected(UTF16LE, 0, "test"))
        decoder.feed(b"a\x00b")
        with pytest.raises(EncodingError, match="ends in the middle of a utf-16-le character"):
            decoder.finish()
