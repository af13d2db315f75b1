"""Screenshot evidence: checked by content, size-limited, stored encrypted outside the database.

Each file is judged by what it is, not by its name or declared type: Pillow must recognise it as
PNG, JPEG or WebP and verify its structure. The stored file is AES-GCM ciphertext bound to the
SHA-256 of the original, and that checksum is recorded with the claim, so a file swapped or
corrupted on disk is detected when it is read back.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from codeshelf.kit.errors import DomainError, InvalidInputError
from codeshelf.kit.vault import Vault

MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
MAX_PIXELS = 16_000_000  # a 12-megapixel phone photo of a screen fits; more is a bomb


class EvidenceNotAnImageError(InvalidInputError):
    slug = "evidence-not-an-image"


class EvidenceTooLargeError(DomainError):
    slug = "evidence-too-large"


class EvidenceCorruptedError(RuntimeError):
    """A stored file no longer matches its recorded checksum."""


@dataclass(frozen=True)
class Screenshot:
    data: bytes
    media_type: str
    sha256: str


def sniff(data: bytes, max_bytes: int, pointer: str = "#/screenshot") -> None:
    """The cheap checks, from the size and the image's header alone (nothing is decoded):
    refused when too large in bytes or in pixels, or not a PNG, JPEG or WebP header."""
    if len(data) > max_bytes:
        raise EvidenceTooLargeError(
            f"a screenshot may be at most {max_bytes} bytes; this one is {len(data)}",
            pointer=pointer,
            max_bytes=max_bytes,
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(MEDIA_TYPES)) as image:
                too_large = image.width * image.height > MAX_PIXELS
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # fmt: skip
        raise EvidenceNotAnImageError(
            "a screenshot must be a PNG, JPEG or WebP image", pointer=pointer
        ) from exc
    if too_large:
        raise EvidenceNotAnImageError("the image is too large", pointer=pointer)


def inspect(data: bytes, max_bytes: int, pointer: str = "#/screenshot") -> Screenshot:
    """The screenshot, decoded whole, or a refusal: too large, or not a PNG, JPEG or WebP
    image. Costly for a large image: doors call ``sniff`` first, and this only once the
    request is otherwise sound (its claim or order exists)."""
    sniff(data, max_bytes, pointer)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(MEDIA_TYPES)) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise EvidenceNotAnImageError("the image is too large", pointer=pointer)
                image_format = image.format or ""
                image.verify()  # structure and checksums (PNG); not every format checks much
            with Image.open(io.BytesIO(data), formats=list(MEDIA_TYPES)) as image:
                image.load()  # decode it all: a truncated JPEG or WebP fails here
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        raise EvidenceNotAnImageError(
            "a screenshot must be a PNG, JPEG or WebP image", pointer=pointer
        ) from exc
    return Screenshot(data, MEDIA_TYPES[image_format], hashlib.sha256(data).hexdigest())


@dataclass(frozen=True)
class StoredFile:
    storage_key: str
    key_id: str


class EvidenceStore:
    """Encrypted files under one directory, named by random keys (never by user input)."""

    def __init__(self, root: Path, vault: Vault) -> None:
        self.root = root
        self.vault = vault

    def put(self, screenshot: Screenshot) -> StoredFile:
        key = f"{secrets.token_hex(1)}/{secrets.token_hex(16)}"
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        _replace(path, self.vault.seal_bytes(screenshot.data, screenshot.sha256.encode()))
        return StoredFile(key, self.vault.key_id)

    def read(self, storage_key: str, key_id: str, sha256: str) -> bytes:
        """The screenshot; its file may already be sealed under another configured key than
        its record says (a rotation replaces the file first, then the record)."""
        sealed = (self.root / storage_key).read_bytes()
        data, _ = self.vault.open_bytes_any(sealed, sha256.encode(), key_id)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise EvidenceCorruptedError(f"evidence file {storage_key} fails its checksum")
        return data

    def reseal(self, storage_key: str, key_id: str, sha256: str) -> bool:
        """Seal the file again under the current key, replacing it atomically (a reader, or a
        crash, sees the old file or the new one, never half of one); a file already under the
        current key (a rotation stopped before its record said so) is left as it is. False
        when the file is missing."""
        path = self.root / storage_key
        try:
            sealed = path.read_bytes()
        except FileNotFoundError:
            return False
        data, opened_with = self.vault.open_bytes_any(sealed, sha256.encode(), key_id)
        if opened_with != self.vault.key_id:
            _replace(path, self.vault.seal_bytes(data, sha256.encode()))
        return True


def _replace(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` durably and atomically: a reader never sees half a file."""
    temporary = path.with_name(f"{path.name}.{secrets.token_hex(4)}.part")
    with temporary.open("wb") as stream:
        stream.write(content)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)
