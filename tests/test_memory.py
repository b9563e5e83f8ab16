"""`MALLOC_ARENA_MAX` (filestore/memory.py): glibc takes the limit, and the processes this one
starts inherit it. Pure: no server (mallopt only affects arenas not created yet; the figures
that show what it does are the soak's, docs/benchmarks.md)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from filestore.memory import limit_arenas
from filestore.settings import Settings

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")


@glibc
def test_glibc_takes_the_limit_and_children_inherit_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_arenas(2) is True
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.environ['MALLOC_ARENA_MAX'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert child.stdout.strip() == "2"


def test_zero_leaves_glibc_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_arenas(0) is False
    assert "MALLOC_ARENA_MAX" not in os.environ


def test_the_default_is_two_and_glibc_s_own_variable_sets_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert Settings(_env_file=None).malloc_arena_max == 2
    monkeypatch.setenv("MALLOC_ARENA_MAX", "0")
    assert Settings(_env_file=None).malloc_arena_max == 0
