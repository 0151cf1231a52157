"""A multipart upload streamed into a per-request temporary folder, never whole in memory
and never past its size limit: the body is read chunk by chunk, the `image` field written
to `<folder>/upload` (a fixed name: nothing of the request reaches the file system), and
reading stops at the first byte over the limit."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, BinaryIO

from python_multipart.multipart import MultipartParser, parse_options_header

from synergy3DMM.serve.errors import RequestError

FIELD = "image"
OVERHEAD = 64 * 1024  # multipart boundaries, headers and small fields around the file


@dataclass
class Upload:
    path: Path  # the file's bytes, in the request's folder
    filename: str | None  # as the client named it (for the JSON's "image" and download names only)
    size: int


async def receive_upload(headers, body: AsyncIterator[bytes], folder: Path, limit: int) -> Upload:
    """The `image` field of a multipart/form-data request (its `headers` and `body` stream),
    written into `folder`. RequestError 400 (not multipart, malformed), 413 (over `limit`
    bytes) or 422 (no `image` field)."""
    kind, options = parse_options_header(headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise RequestError(400, f"send the photo as multipart/form-data, in the field '{FIELD}'")
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + OVERHEAD:
        raise RequestError(413, f"the upload ({int(declared) / (1 << 20):.1f} MB) is over the limit of "
                                f"{limit / (1 << 20):g} MB")
    reader = _PartReader(folder / "upload", limit)
    parser = MultipartParser(boundary, reader.callbacks())
    received = 0
    try:
        async for chunk in body:
            received += len(chunk)
            if received > limit + OVERHEAD:
                raise RequestError(413, f"the upload is over the limit of {limit / (1 << 20):g} MB")
            parser.write(chunk)
        parser.finalize()
    except RequestError:
        raise
    except Exception as exc:  # python-multipart's parse errors
        raise RequestError(400, f"malformed multipart body ({str(exc).splitlines()[0] if str(exc) else 'cut short'})") \
            from None
    finally:
        reader.close()
    if reader.size is None:
        raise RequestError(422, f"missing field '{FIELD}': send the photo as multipart/form-data field '{FIELD}'")
    if not reader.complete:
        raise RequestError(400, "malformed multipart body (cut short)")
    return Upload(reader.path, reader.filename, reader.size)


class _PartReader:
    """python-multipart's callbacks: the first `image` part into `path`, other parts dropped."""

    def __init__(self, path: Path, limit: int):
        self.path, self.limit = path, limit
        self.filename: str | None = None
        self.size: int | None = None
        self.complete = False
        self._file: BinaryIO | None = None
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._in_image = False

    def callbacks(self) -> dict:
        return {"on_part_begin": self._begin, "on_header_field": self._field, "on_header_value": self._value,
                "on_header_end": self._header_end, "on_headers_finished": self._headers_done,
                "on_part_data": self._data, "on_part_end": self._part_end, "on_end": self._end}

    def _begin(self) -> None:
        self._disposition, self._in_image = b"", False

    def _field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_name.strip().lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def _headers_done(self) -> None:
        _, options = parse_options_header(self._disposition)
        if options.get(b"name", b"").decode("latin-1") == FIELD and self.size is None:
            self._in_image, self.size = True, 0
            raw = options.get(b"filename")
            self.filename = raw.decode("utf-8", "replace") if raw is not None else None
            self._file = open(self.path, "wb")

    def _data(self, data: bytes, start: int, end: int) -> None:
        if not self._in_image:
            return
        self.size += end - start
        if self.size > self.limit:
            raise RequestError(413, f"the upload is over the limit of {self.limit / (1 << 20):g} MB")
        self._file.write(data[start:end])

    def _part_end(self) -> None:
        if self._in_image:
            self._file.close()
            self._in_image = False

    def _end(self) -> None:
        self.complete = True

    def close(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()
