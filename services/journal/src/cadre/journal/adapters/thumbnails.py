"""Image thumbnails with Pillow. Decoding the image is also the proof that a file sniffed
as an image really is one."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, UnidentifiedImageError

THUMBNAIL_EDGE = 320
MAX_PIXELS = 60_000_000  # a bigger "photo" is a decompression bomb, not a photo


class NotAnImage(ValueError):
    pass


def thumbnail_jpeg(source: Path, edge: int = THUMBNAIL_EDGE) -> bytes | None:
    """A JPEG at most `edge` pixels on its longer side; None for formats Pillow cannot
    decode here (HEIC), which are kept without a thumbnail."""
    try:
        with Image.open(source) as image:
            if image.format == "HEIF" or image.format is None:
                return None
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise NotAnImage(f"{width}x{height} pixels is too large an image")
            image.draft("RGB", (edge, edge))  # JPEG decodes straight at a smaller scale
            image.load()
            image.thumbnail((edge, edge))
            out = io.BytesIO()
            image.convert("RGB").save(out, "JPEG", quality=80, optimize=True)
            return out.getvalue()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise NotAnImage(f"the image cannot be decoded: {exc}") from exc
