"""Client filenames: `sanitize_filename` and the Content-Disposition header built from them."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from filestore.files.names import (
    MAX_FILENAME_LENGTH,
    content_disposition,
    extension_of,
    sanitize_filename,
)

# RFC 6266: disposition-type, then `; name=value` parameters, values quoted or tokens.
_PARAM = re.compile(r';\s*([A-Za-z*]+)=("(?:[^"\\]|\\.)*"|[^;\s]*)')


def parse_disposition(header: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Disposition value into its type and raw parameters (quotes removed)."""
    kind, _, rest = header.partition(";")
    params: dict[str, str] = {}
    consumed = 0
    for match in _PARAM.finditer(";" + rest):
        assert match.start() == consumed, f"unparsable parameters in {header!r}"
        consumed = match.end()
        name, value = match.group(1).lower(), match.group(2)
        assert name not in params, f"parameter {name} given twice in {header!r}"
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[name] = value
    assert consumed == len(rest) + 1, f"trailing garbage in {header!r}"
    return kind.strip(), params


def name_a_browser_shows(header: str) -> str:
    """What an RFC 6266 client takes as the filename: `filename*` if present, else `filename`."""
    _, params = parse_disposition(header)
    if "filename*" in params:
        charset, _, encoded = params["filename*"].partition("''")
        assert charset.upper() == "UTF-8"
        return unquote(encoded, encoding="utf-8", errors="strict")
    return params["filename"]


def has_control_character(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in text)


class TestSanitizeFilename:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("report.pdf", "report.pdf"),
            ("../../etc/passwd", "passwd"),
            ("C:\\Users\\bob\\Desktop\\cv.docx", "cv.docx"),
            ("/var/tmp/", "file"),
            ("", "file"),
            ("...", "file"),
            ("  spaced   out  .csv", "spaced out .csv"),
            ('a<b>c:d"e|f?g*h.csv', "a_b_c_d_e_f_g_h.csv"),
            ("tab\there\nnewline.csv", "tab_here_newline.csv"),
            ("nul\x00byte.csv", "nul_byte.csv"),
        ],
    )
    def test_known_names(self, raw: str, expected: str) -> None:
        assert sanitize_filename(raw) == expected

    def test_unicode_is_kept_and_nfc_normalised(self) -> None:
        decomposed = "re\u0301sume\u0301.pdf"  # é as e + combining accent
        assert sanitize_filename(decomposed) == "résumé.pdf"
        assert sanitize_filename("日本語の書類.pdf") == "日本語の書類.pdf"

    def test_c1_control_characters_are_removed(self) -> None:
        name = sanitize_filename("in\x80voice\x9b.pdf")
        assert not has_control_character(name)
        assert name.endswith(".pdf")

    def test_long_name_is_cut_to_255_bytes_keeping_the_extension(self) -> None:
        name = sanitize_filename("ü" * 300 + ".xlsx")
        assert len(name.encode()) <= MAX_FILENAME_LENGTH
        assert name.endswith(".xlsx")
        assert name.startswith("üüü")

    def test_fallback_is_used_for_empty_names(self) -> None:
        assert sanitize_filename("///", fallback="upload") == "upload"

    @given(st.text(max_size=600))
    def test_any_input_gives_a_safe_display_name(self, raw: str) -> None:
        name = sanitize_filename(raw)
        assert name
        assert "/" not in name
        assert "\\" not in name
        assert not has_control_character(name)
        assert len(name.encode("utf-8")) <= MAX_FILENAME_LENGTH
        assert name == name.strip()

    @given(
        st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=400),
        st.sampled_from(["csv", "pdf", "png", "docx", "xlsx"]),
    )
    def test_extension_survives_shortening(self, stem: str, ext: str) -> None:
        name = sanitize_filename(f"{stem}.{ext}")
        assert extension_of(name) == ext

    @given(st.text(max_size=300))
    def test_sanitising_twice_changes_nothing(self, raw: str) -> None:
        once = sanitize_filename(raw)
        assert sanitize_filename(once) == once


class TestExtensionOf:
    @pytest.mark.parametrize(
        ("filename", "expected"),
        [("a.CSV", "csv"), ("archive.tar.gz", "gz"), ("noext", ""), (".hidden", ""), ("a.", "")],
    )
    def test_extension(self, filename: str, expected: str) -> None:
        assert extension_of(filename) == expected


class TestContentDisposition:
    def test_plain_ascii_name_has_only_filename(self) -> None:
        header = content_disposition("report.pdf")
        assert header == 'attachment; filename="report.pdf"'

    def test_inline(self) -> None:
        kind, params = parse_disposition(content_disposition("photo.png", inline=True))
        assert kind == "inline"
        assert params["filename"] == "photo.png"

    def test_unicode_name_round_trips_through_filename_star(self) -> None:
        header = content_disposition("résumé 2024.pdf")
        kind, params = parse_disposition(header)
        assert kind == "attachment"
        assert params["filename"] == "resume 2024.pdf"
        assert name_a_browser_shows(header) == "résumé 2024.pdf"

    def test_quotes_and_percent_do_not_break_the_header(self) -> None:
        header = content_disposition('50% "final".csv')
        _, params = parse_disposition(header)
        assert '"' not in params["filename"]
        assert name_a_browser_shows(header) == '50% "final".csv'

    def test_semicolon_inside_the_name(self) -> None:
        assert name_a_browser_shows(content_disposition("a;b.csv")) == "a;b.csv"

    @given(st.text(max_size=300).map(sanitize_filename), st.booleans())
    def test_any_sanitised_name_parses_back(self, filename: str, inline: bool) -> None:
        header = content_disposition(filename, inline=inline)
        assert "\r" not in header
        assert "\n" not in header
        header.encode("latin-1")  # header values must be sendable as latin-1 bytes
        kind, params = parse_disposition(header)
        assert kind == ("inline" if inline else "attachment")
        fallback = params["filename"]
        assert fallback
        assert fallback.isascii()
        assert not has_control_character(fallback)
        assert name_a_browser_shows(header) == filename
