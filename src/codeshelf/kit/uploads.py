"""Receiving a large upload: streamed to a file of its own, never held in memory whole."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from codeshelf.kit.errors import DomainError

FLUSH_BYTES = 1_048_576  # written to disk a MiB at a time, off the event loop


class UploadTooLargeError(DomainError):
    slug = "payload-too-large"


def new_upload_path(directory: Path, suffix: str) -> Path:
    """A new, unguessable file name in ``directory`` (made if need be)."""
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"upload-{secrets.token_hex(16)}{suffix}"


async def save_stream(
    chunks: AsyncIterator[bytes], directory: Path, suffix: str, max_bytes: int
) -> tuple[Path, int]:
    """Write ``chunks`` to a new file in ``directory``; returns it and its size.

    Past ``max_bytes`` (UploadTooLargeError), or on any other error (the client left), the
    partial file is removed: nothing is left behind but a whole upload.
    """
    path = await asyncio.to_thread(new_upload_path, directory, suffix)
    handle = await asyncio.to_thread(path.open, "xb")
    size = 0
    pending = bytearray()
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise UploadTooLargeError(f"uploads are limited to {max_bytes} bytes")
            pending += chunk
            if len(pending) >= FLUSH_BYTES:
                await asyncio.to_thread(handle.write, pending)
                pending = bytearray()
        if pending:
            await asyncio.to_thread(handle.write, pending)
        await asyncio.to_thread(handle.close)
    except BaseException:
        handle.close()
        path.unlink(missing_ok=True)
        raise
    return path, size
