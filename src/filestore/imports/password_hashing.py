"""Imported passwords → argon2id hashes, spread across a process pool: hashing is the slow part
of an import, and it must never run on the worker's event loop."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import Executor

from filestore.auth.security import hash_password_sync
from filestore.imports.rows import ValidRow


def _hash_many(passwords: list[str]) -> list[str]:
    return [hash_password_sync(p) for p in passwords]


async def hash_passwords(rows: list[ValidRow], pool: Executor | None) -> None:
    """Replace each row's password with its hash (`password_hash`), in place."""
    indexed = [
        (i, row.values["password"]) for i, row in enumerate(rows) if row.values.get("password")
    ]
    if not indexed:
        return
    loop = asyncio.get_running_loop()
    workers = max(1, os.cpu_count() or 1)
    size = max(1, -(-len(indexed) // workers))
    parts = [indexed[i : i + size] for i in range(0, len(indexed), size)]
    results = await asyncio.gather(
        *(loop.run_in_executor(pool, _hash_many, [str(p) for _, p in part]) for part in parts)
    )
    for part, hashes in zip(parts, results, strict=True):
        for (index, _), hashed in zip(part, hashes, strict=True):
            rows[index].values["password_hash"] = hashed
            rows[index].values["password"] = None
