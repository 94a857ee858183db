"""Photo checks and conversion: every stored photo is an RGB JPEG TensorFlow can decode.

JPEGs that are already RGB and small enough pass through byte for byte (no re-encoding);
PNG, grayscale, CMYK and oversized photos are converted; empty, truncated, non-image and
too-small files are rejected with a reason.
"""
from __future__ import annotations

import io
from typing import NamedTuple, Optional

from PIL import Image, UnidentifiedImageError

Image.MAX_IMAGE_PIXELS = 250_000_000  # a 10,000 x 10,000 photo is big, not an attack; we downscale it

EMPTY = "empty_file"
NOT_AN_IMAGE = "not_an_image"
TRUNCATED = "truncated"
TOO_SMALL = "too_small"
MISSING = "missing_file"
JPEG_QUALITY = 90


class PreparedPhoto(NamedTuple):
    jpeg: Optional[bytes]
    rejection: Optional[str]
    converted: bool = False


def prepare_photo(data: bytes, min_side: int, max_side: int) -> PreparedPhoto:
    """The photo as a stored RGB JPEG, or the reason it is rejected."""
    if not data:
        return PreparedPhoto(None, EMPTY)
    try:
        image = Image.open(io.BytesIO(data))
        passes_through = image.format == "JPEG" and image.mode == "RGB" and max(image.size) <= max_side
        if not passes_through:
            image.draft("RGB", (max_side, max_side))  # big JPEGs decode straight at a reduced scale
        image.load()
    except UnidentifiedImageError:
        return PreparedPhoto(None, NOT_AN_IMAGE)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return PreparedPhoto(None, TRUNCATED)
    if min(image.size) < min_side:
        return PreparedPhoto(None, TOO_SMALL)
    if passes_through:
        return PreparedPhoto(data, None)
    if image.mode != "RGB":
        image = image.convert("RGB")
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return PreparedPhoto(buffer.getvalue(), None, converted=True)
