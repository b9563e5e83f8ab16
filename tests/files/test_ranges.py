"""HTTP Range parsing (RFC 9110 section 14) for downloads: `parse_range`."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from filestore.errors import RangeNotSatisfiable
from filestore.files.download import ByteRange, parse_range

# Empty files are refused at upload, so every stored file has at least one byte.
sizes = st.integers(min_value=1, max_value=2**53)
# Numbers past 19 digits are saturated (no file is that big), so exact results are checked below.
positions = st.integers(min_value=0, max_value=10**19 - 1)
huge = st.integers(min_value=0, max_value=10**40)


class TestValidRanges:
    @pytest.mark.parametrize(
        ("header", "expected"),
        [
            ("bytes=0-0", ByteRange(0, 1)),
            ("bytes=0-99", ByteRange(0, 100)),
            ("bytes=10-19", ByteRange(10, 20)),
            ("bytes=990-", ByteRange(990, 1000)),
            ("bytes=990-5000", ByteRange(990, 1000)),
            ("bytes=-1", ByteRange(999, 1000)),
            ("bytes=-100", ByteRange(900, 1000)),
            ("bytes=-5000", ByteRange(0, 1000)),
            ("bytes=999-999", ByteRange(999, 1000)),
            (" bytes = 5 - 9 ", ByteRange(5, 10)),
        ],
    )
    def test_range_of_a_1000_byte_file(self, header: str, expected: ByteRange) -> None:
        assert parse_range(header, 1000) == expected

    def test_length(self) -> None:
        assert ByteRange(10, 20).length == 10


class TestIgnored:
    """Headers the server may ignore (RFC 9110): the whole file is sent."""

    @pytest.mark.parametrize(
        "header",
        [
            None,
            "",
            "bytes=",
            "bytes=-",
            "bytes=9-3",
            "items=0-1",
            "bytes=0-1,5-6",
            "bytes=a-b",
            "0-1",
        ],
    )
    def test_whole_file(self, header: str | None) -> None:
        assert parse_range(header, 1000) is None


class TestUnsatisfiable:
    @pytest.mark.parametrize(
        "header", ["bytes=1000-", "bytes=1000-2000", "bytes=5000-", "bytes=-0"]
    )
    def test_416_with_content_range(self, header: str) -> None:
        with pytest.raises(RangeNotSatisfiable) as caught:
            parse_range(header, 1000)
        assert caught.value.status_code == 416
        assert caught.value.headers == {"Content-Range": "bytes */1000"}


class TestHugeNumbers:
    """Numbers far beyond any file size must not crash (Python refuses int() of > 4300 digits)."""

    def test_huge_start_is_unsatisfiable(self) -> None:
        with pytest.raises(RangeNotSatisfiable):
            parse_range("bytes=" + "9" * 5000 + "-", 1000)

    def test_huge_end_means_to_the_end(self) -> None:
        assert parse_range("bytes=10-" + "9" * 5000, 1000) == ByteRange(10, 1000)

    def test_huge_suffix_means_whole_file(self) -> None:
        assert parse_range("bytes=-" + "9" * 5000, 1000) == ByteRange(0, 1000)

    def test_leading_zeros_keep_their_value(self) -> None:
        assert parse_range("bytes=" + "0" * 5000 + "7-" + "0" * 5000 + "8", 1000) == ByteRange(7, 9)


class TestProperties:
    @given(sizes, positions, positions)
    def test_first_last_range_is_within_the_file(self, size: int, first: int, last: int) -> None:
        try:
            result = parse_range(f"bytes={first}-{last}", size)
        except RangeNotSatisfiable:
            assert first >= size
            assert last >= first
            return
        if last < first:
            assert result is None
            return
        assert result is not None
        assert 0 <= result.start < result.end <= size
        assert result.start == first
        assert result.end == min(last + 1, size)

    @given(sizes, positions)
    def test_open_ended_range(self, size: int, first: int) -> None:
        try:
            result = parse_range(f"bytes={first}-", size)
        except RangeNotSatisfiable:
            assert first >= size
            return
        assert result == ByteRange(first, size)

    @given(sizes, positions)
    def test_suffix_range(self, size: int, suffix: int) -> None:
        assume(suffix > 0)
        result = parse_range(f"bytes=-{suffix}", size)
        assert result is not None
        assert 0 <= result.start < result.end == size
        assert result.length == min(suffix, size)

    @given(sizes, huge, huge)
    def test_any_numbers_stay_within_the_file(self, size: int, first: int, last: int) -> None:
        for header in (f"bytes={first}-{last}", f"bytes={first}-", f"bytes=-{last}"):
            try:
                result = parse_range(header, size)
            except RangeNotSatisfiable:
                continue
            if result is not None:
                assert 0 <= result.start < result.end <= size

    @given(st.text(max_size=40), sizes)
    def test_any_header_gives_a_range_none_or_416(self, header: str, size: int) -> None:
        try:
            result = parse_range(header, size)
        except RangeNotSatisfiable:
            return
        if result is not None:
            assert 0 <= result.start < result.end <= size
