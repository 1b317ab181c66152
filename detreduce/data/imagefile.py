"""Image sizes from file headers, and cheap validity checks, without full decodes.

Reading a JPEG's SOF marker or a PNG's IHDR chunk costs a few hundred bytes of IO,
against milliseconds for a decode: what makes a 100k-image ``info`` take seconds.
Unknown formats fall back to Pillow's lazy ``Image.open`` (also header-only).
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import sys
from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".dng", ".mpo"}

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class BadImage(Exception):
    """The file is missing, empty, corrupt or truncated (message says which)."""


def _jpeg_size(f, head: bytes) -> tuple[int, int]:
    pos = 2
    data = head
    while True:
        while pos + 4 > len(data):
            more = f.read(65536)
            if not more:
                raise BadImage("JPEG ends before its frame header (truncated)")
            data += more
        if data[pos] != 0xFF:
            raise BadImage("corrupt JPEG marker stream")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if marker in _JPEG_SOF:
            while pos + 9 > len(data):
                more = f.read(65536)
                if not more:
                    raise BadImage("JPEG frame header truncated")
                data += more
            h, w = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return int(w), int(h)
        if marker == 0xD9:
            raise BadImage("JPEG has no frame header")
        pos += 2 + length


#: Files up to this many bytes are read whole in one call (and hashed for duplicates).
SMALL_FILE = 65536


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of an image from its header; raises :class:`BadImage`."""
    return image_info(path)[:2]


def image_info(path: str | os.PathLike) -> tuple[int, int, int, str | None]:
    """(width, height, byte size, content hash or None) from the header; raises :class:`BadImage`.

    Files up to :data:`SMALL_FILE` bytes are read in one call and hashed on the way,
    so a duplicate check over small images costs no second pass.

    Also checks that a JPEG ends with its end-of-image marker and a PNG with its
    IEND chunk (the truncation test Ultralytics uses), and that sizes are positive.
    """
    try:
        size = os.path.getsize(path)
    except OSError:
        raise BadImage("file not found") from None
    if size == 0:
        raise BadImage("zero bytes")
    digest = None
    try:
        with open(path, "rb") as f:
            if size <= SMALL_FILE:
                whole = f.read()
                digest = hashlib.blake2b(whole, digest_size=16).hexdigest()
                f = io.BytesIO(whole)
            head = f.read(1024)
            if head[:2] == b"\xff\xd8":
                w, h = _jpeg_size(f, head)
                f.seek(-2, os.SEEK_END)
                if f.read(2) != b"\xff\xd9":
                    raise BadImage("JPEG truncated (no end-of-image marker)")
            elif head[:8] == b"\x89PNG\r\n\x1a\n":
                if len(head) < 24 or head[12:16] != b"IHDR":
                    raise BadImage("corrupt PNG header")
                w, h = struct.unpack(">II", head[16:24])
                f.seek(-12, os.SEEK_END)
                if f.read(12)[4:8] != b"IEND":
                    raise BadImage("PNG truncated (no IEND chunk)")
            else:
                w, h = _pillow_size(path)
    except (OSError, struct.error) as exc:
        raise BadImage(f"unreadable ({exc})") from None
    if w <= 0 or h <= 0:
        raise BadImage(f"invalid size {w}x{h}")
    return w, h, size, digest


def _pillow_size(path: str | os.PathLike) -> tuple[int, int]:
    """Size by Pillow's own opener.

    Not ``PIL.Image.open`` itself: once Ultralytics is imported (a sweep, a training run
    in the same process) it replaces that function with one that, on an unreadable
    file, tries to install ``pi-heif`` and raises ``ModuleNotFoundError`` offline.
    """
    from PIL import Image, UnidentifiedImageError

    open_image = getattr(sys.modules.get("ultralytics.utils.patches"), "_image_open", Image.open)
    try:
        with open_image(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise BadImage(f"not a readable image ({type(exc).__name__})") from None


def is_image_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES
