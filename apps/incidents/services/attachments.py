"""Citizen photos: validated by content, sanitised, stored behind the storage API.

Why every photo is decoded and re-encoded (never stored as uploaded):

- The extension and the declared content type are the sender's claim; only decoding the
  pixels proves the bytes are an image (a ``.jpg``-named HTML file or a JPEG/ZIP polyglot
  would otherwise be served back to staff browsers).
- Phone photos carry EXIF with the GPS position of the citizen's home, the camera serial
  and the time; XMP and PNG text chunks can hold the same. Re-encoding the decoded
  pixels into a fresh image object drops *all* metadata at once, instead of chasing tag
  lists. The GPS position is read first and kept in ``Attachment.exif_lat/exif_lng``
  for staff only (it helps locate the hazard).

Pipeline of :func:`photo_process` (runs before any transaction opens: it is CPU work):

1. Refuse files over ``INCIDENTS_MAX_PHOTO_BYTES`` without decoding them.
2. ``Image.open`` + ``verify()``: the format must be JPEG, PNG or WebP by content.
3. Refuse images over ``INCIDENTS_MAX_PHOTO_PIXELS`` from the header alone: a 50 kB
   PNG can declare 50 000 × 50 000 pixels and exhaust memory when decoded
   (decompression bomb).
4. Reopen, read the GPS IFD, decode (JPEG at reduced DCT scale when it is larger than
   ``INCIDENTS_PHOTO_MAX_EDGE_PX``), apply the EXIF orientation, shrink to the maximum
   edge, copy the pixels into a metadata-free image and encode it.
5. A ≤ 320 px JPEG thumbnail and the SHA-256 of the sanitised bytes.

Files are then written with :func:`photo_files_write` (default storage: filesystem,
object storage pluggable through ``STORAGES``) and the rows created by the caller's
transaction; :func:`photo_files_delete` removes them when that transaction fails.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import struct
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import Storage
from django.utils.translation import gettext_lazy as _
from PIL import Image, ImageOps, UnidentifiedImageError
from PIL.ExifTags import GPS, IFD

from apps.core.errors import ApplicationError
from apps.incidents.errors import IncidentErrorCode
from apps.incidents.models import Attachment, Incident, Report

logger = logging.getLogger(__name__)

DEFAULT_MAX_PHOTO_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_PHOTOS = 9
DEFAULT_MAX_PHOTO_PIXELS = 100_000_000  # a 108 MP phone sensor still passes
DEFAULT_PHOTO_MAX_EDGE_PX = 4096
THUMBNAIL_EDGE_PX = 320
PHOTOS_FIELD = "photos"

# Pillow format → (content type, extension, save options). Only what every phone
# produces; HEIC needs a plugin and is converted to JPEG by the app before upload.
FORMATS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "JPEG": ("image/jpeg", "jpg", {"quality": 85, "optimize": True}),
    "PNG": ("image/png", "png", {"optimize": True}),
    "WEBP": ("image/webp", "webp", {"quality": 85}),
}
# Modes each encoder accepts as they are; anything else is converted (CMYK → RGB...).
_ENCODABLE_MODES: dict[str, frozenset[str]] = {
    "JPEG": frozenset({"L", "RGB"}),
    "PNG": frozenset({"1", "L", "LA", "RGB", "RGBA"}),
    "WEBP": frozenset({"RGB", "RGBA"}),
}

MESSAGES: dict[str, Any] = {
    IncidentErrorCode.ATTACHMENT_INVALID: _("The file is not a JPEG, PNG or WebP image."),
    IncidentErrorCode.ATTACHMENT_TOO_LARGE: _("The photo is too large."),
    IncidentErrorCode.TOO_MANY_ATTACHMENTS: _("Too many photos."),
}


def max_photo_bytes() -> int:
    return int(getattr(settings, "INCIDENTS_MAX_PHOTO_BYTES", DEFAULT_MAX_PHOTO_BYTES))


def max_photos() -> int:
    return int(getattr(settings, "INCIDENTS_MAX_PHOTOS", DEFAULT_MAX_PHOTOS))


@dataclass(frozen=True)
class ProcessedPhoto:
    """A sanitised photo ready to be stored: no metadata left in ``content``."""

    content: bytes
    thumbnail: bytes
    content_type: str
    extension: str
    width: int
    height: int
    sha256: str
    exif_lat: float | None
    exif_lng: float | None

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass(frozen=True)
class StoredPhoto:
    """A processed photo after its two files were written to storage."""

    photo: ProcessedPhoto
    file_name: str
    thumbnail_name: str


def _photo_error(code: str, index: int, **extra: Any) -> ApplicationError:
    """A refusal in the envelope shape the app already parses for field errors."""
    message = MESSAGES[code]
    if code == IncidentErrorCode.ATTACHMENT_TOO_LARGE and "max_pixels" in extra:
        message = _("The photo has more than %(mp)s megapixels.") % {
            "mp": round(extra["max_pixels"] / 1_000_000)
        }
    elif code == IncidentErrorCode.ATTACHMENT_TOO_LARGE:
        message = _("The photo is larger than %(mb)s MB.") % {
            "mb": round(max_photo_bytes() / 1024 / 1024, 1)
        }
    return ApplicationError(
        code,
        message,
        extra={
            "fields": {PHOTOS_FIELD: [{"code": str(code), "message": str(message)}]},
            "index": index,
            **extra,
        },
        status=400,
    )


def photos_check_count(photos: Sequence[Any]) -> None:
    """Refuse more than ``INCIDENTS_MAX_PHOTOS`` before reading any of them."""
    limit = max_photos()
    if len(photos) > limit:
        code = IncidentErrorCode.TOO_MANY_ATTACHMENTS
        message = _("At most %(limit)s photos per report.") % {"limit": limit}
        raise ApplicationError(
            code,
            message,
            extra={
                "fields": {PHOTOS_FIELD: [{"code": str(code), "message": str(message)}]},
                "max": limit,
                "received": len(photos),
            },
            status=400,
        )


def photos_process(photos: Sequence[IO[bytes] | Any]) -> list[ProcessedPhoto]:
    """Validate the count, then sanitise each photo (see the module docstring)."""
    photos_check_count(photos)
    return [photo_process(photo, index=index) for index, photo in enumerate(photos)]


def _read_limited(upload: Any, limit: int, index: int) -> bytes:
    declared = getattr(upload, "size", None)
    if isinstance(declared, int) and declared > limit:
        raise _photo_error(IncidentErrorCode.ATTACHMENT_TOO_LARGE, index, max_bytes=limit)
    if hasattr(upload, "seek"):
        upload.seek(0)
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise _photo_error(IncidentErrorCode.ATTACHMENT_TOO_LARGE, index, max_bytes=limit)
    if not data:
        raise _photo_error(IncidentErrorCode.ATTACHMENT_INVALID, index)
    return data


def photo_process(upload: IO[bytes] | Any, *, index: int = 0) -> ProcessedPhoto:
    """Sanitise one uploaded photo; ``ApplicationError`` (400, field ``photos``) if unusable."""
    data = _read_limited(upload, max_photo_bytes(), index)
    max_pixels = int(getattr(settings, "INCIDENTS_MAX_PHOTO_PIXELS", DEFAULT_MAX_PHOTO_PIXELS))
    max_edge = int(getattr(settings, "INCIDENTS_PHOTO_MAX_EDGE_PX", DEFAULT_PHOTO_MAX_EDGE_PX))
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; make it fatal.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                image_format = probe.format or ""
                if image_format not in FORMATS:
                    raise _photo_error(IncidentErrorCode.ATTACHMENT_INVALID, index)
                if probe.width * probe.height > max_pixels:
                    raise _photo_error(
                        IncidentErrorCode.ATTACHMENT_TOO_LARGE, index, max_pixels=max_pixels
                    )
                probe.verify()
            with Image.open(io.BytesIO(data)) as image:
                exif_lat, exif_lng = _gps_position(image)
                if image_format == "JPEG" and max(image.size) > max_edge:
                    # DCT-domain downscale while decoding: a 100 MP JPEG never
                    # occupies 300 MB of memory.
                    image.draft(image.mode, (max_edge, max_edge))
                image.load()
                upright = ImageOps.exif_transpose(image)
                content, width, height = _encode_clean(upright, image_format, max_edge)
                thumbnail = _encode_thumbnail(upright)
    except ApplicationError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _photo_error(
            IncidentErrorCode.ATTACHMENT_TOO_LARGE, index, max_pixels=max_pixels
        ) from None
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        TypeError,
        EOFError,  # struct.error below: some truncated headers
        struct.error,
    ) as exc:
        logger.info("photo %s refused: %s", index, exc)
        raise _photo_error(IncidentErrorCode.ATTACHMENT_INVALID, index) from None

    content_type, extension, _options = FORMATS[image_format]
    return ProcessedPhoto(
        content=content,
        thumbnail=thumbnail,
        content_type=content_type,
        extension=extension,
        width=width,
        height=height,
        sha256=hashlib.sha256(content).hexdigest(),
        exif_lat=exif_lat,
        exif_lng=exif_lng,
    )


def _clean_copy(image: Image.Image, image_format: str) -> Image.Image:
    """The pixels in a brand-new image: no EXIF, XMP, ICC, text chunks or comments."""
    mode = image.mode
    if mode not in _ENCODABLE_MODES[image_format]:
        has_alpha = "A" in mode or "transparency" in image.info
        mode = "RGBA" if has_alpha and image_format != "JPEG" else "RGB"
        image = image.convert(mode)
    clean = Image.new(image.mode, image.size)
    clean.paste(image)
    clean.info = {}
    return clean


def _encode_clean(image: Image.Image, image_format: str, max_edge: int) -> tuple[bytes, int, int]:
    clean = _clean_copy(image, image_format)
    if max(clean.size) > max_edge:
        clean.thumbnail((max_edge, max_edge), Image.Resampling.LANCZOS)
    _content_type, _extension, options = FORMATS[image_format]
    buffer = io.BytesIO()
    clean.save(buffer, format=image_format, **options)
    return buffer.getvalue(), clean.width, clean.height


def _encode_thumbnail(image: Image.Image) -> bytes:
    thumb = image.copy()
    thumb.thumbnail((THUMBNAIL_EDGE_PX, THUMBNAIL_EDGE_PX), Image.Resampling.LANCZOS)
    if thumb.mode in ("RGBA", "LA", "PA") or "transparency" in thumb.info:
        rgba = thumb.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        thumb = flat
    clean = _clean_copy(thumb, "JPEG")
    buffer = io.BytesIO()
    clean.save(buffer, format="JPEG", quality=80, optimize=True)
    return buffer.getvalue()


def _gps_position(image: Image.Image) -> tuple[float | None, float | None]:
    """The WGS84 position in the EXIF GPS IFD, or ``(None, None)`` if absent or garbled."""
    try:
        gps = image.getexif().get_ifd(IFD.GPSInfo)
    except Exception:  # malformed EXIF must not refuse an otherwise good photo
        return None, None
    if not gps:
        return None, None
    lat = _dms_to_degrees(gps.get(GPS.GPSLatitude), gps.get(GPS.GPSLatitudeRef), 90.0)
    lng = _dms_to_degrees(gps.get(GPS.GPSLongitude), gps.get(GPS.GPSLongitudeRef), 180.0)
    if lat is None or lng is None:
        return None, None
    return lat, lng


def _dms_to_degrees(value: Any, ref: Any, limit: float) -> float | None:
    try:
        degrees, minutes, seconds = (float(part) for part in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    result = degrees + minutes / 60 + seconds / 3600
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "ignore")
    if isinstance(ref, str) and ref.strip().upper() in ("S", "W"):
        result = -result
    if not math.isfinite(result) or abs(result) > limit:
        return None
    return round(result, 7)


# --- Storage ---------------------------------------------------------------------------


def _storage_and_names(photo: ProcessedPhoto) -> tuple[Storage, str, Storage, str]:
    stem = uuid.uuid4().hex  # unguessable, and nothing of the citizen's file name survives
    file_field = Attachment._meta.get_field("file")
    thumb_field = Attachment._meta.get_field("thumbnail")
    file_name = file_field.generate_filename(None, f"{stem}.{photo.extension}")  # type: ignore[attr-defined]
    thumb_name = thumb_field.generate_filename(None, f"{stem}.jpg")  # type: ignore[attr-defined]
    return file_field.storage, file_name, thumb_field.storage, thumb_name  # type: ignore[attr-defined]


def photo_files_write(photos: Sequence[ProcessedPhoto]) -> list[StoredPhoto]:
    """Write each photo and its thumbnail; on failure remove what was already written."""
    stored: list[StoredPhoto] = []
    try:
        for photo in photos:
            file_storage, file_name, thumb_storage, thumb_name = _storage_and_names(photo)
            saved_file = file_storage.save(file_name, ContentFile(photo.content))
            try:
                saved_thumb = thumb_storage.save(thumb_name, ContentFile(photo.thumbnail))
            except Exception:
                file_storage.delete(saved_file)
                raise
            stored.append(StoredPhoto(photo, saved_file, saved_thumb))
    except Exception:
        photo_files_delete(stored)
        raise
    return stored


def photo_files_delete(stored: Sequence[StoredPhoto]) -> None:
    """Best-effort removal of written files (their rows never committed)."""
    file_storage = Attachment._meta.get_field("file").storage  # type: ignore[attr-defined]
    thumb_storage = Attachment._meta.get_field("thumbnail").storage  # type: ignore[attr-defined]
    for item in stored:
        for storage, name in ((file_storage, item.file_name), (thumb_storage, item.thumbnail_name)):
            try:
                storage.delete(name)
            except Exception:  # an orphan file is harmless; a masked original error is not
                logger.warning("could not delete orphan attachment file %s", name, exc_info=True)


def attachments_create(
    *,
    stored: Sequence[StoredPhoto],
    report: Report | None = None,
    incident: Incident | None = None,
    uploaded_by: Any = None,
    uploaded_by_id: int | None = None,
) -> list[Attachment]:
    """Insert the rows for already-written files. Call inside the owner's transaction.
    The uploader is ``uploaded_by`` (a user, anonymous ignored) or ``uploaded_by_id``."""
    uploader = uploaded_by if getattr(uploaded_by, "is_authenticated", False) else None
    if uploader is not None:
        uploaded_by_id = uploader.pk
    rows = [
        Attachment(
            report=report,
            incident=incident,
            uploaded_by_id=uploaded_by_id,
            file=item.file_name,
            thumbnail=item.thumbnail_name,
            content_type=item.photo.content_type,
            width=item.photo.width,
            height=item.photo.height,
            size=item.photo.size,
            sha256=item.photo.sha256,
            exif_lat=item.photo.exif_lat,
            exif_lng=item.photo.exif_lng,
        )
        for item in stored
    ]
    return Attachment.objects.bulk_create(rows)
