"""Read the header of a GGUF file without loading the model.

Why not `gguf.GGUFReader` (llama.cpp's own package)? It builds numpy views for every vocabulary
entry and takes 16 s on Gemma 3's 262,144-token vocabulary here; this reader streams the header
in about a tenth of a second and is enough to validate a file before llama.cpp sees it (a
truncated or foreign file gets a clear message instead of an abort deep inside C++) and to find
which fill-in-the-middle tokens the vocabulary declares.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from hintwise.models.errors import GGUFError

GGUF_MAGIC = b"GGUF"

# GGUF value types (gguf spec, "GGUFValueType").
_UINT8, _INT8, _UINT16, _INT16, _UINT32, _INT32, _FLOAT32, _BOOL = range(8)
_STRING, _ARRAY, _UINT64, _INT64, _FLOAT64 = range(8, 13)
_SCALAR_FORMATS = {
    _UINT8: "<B",
    _INT8: "<b",
    _UINT16: "<H",
    _INT16: "<h",
    _UINT32: "<I",
    _INT32: "<i",
    _FLOAT32: "<f",
    _BOOL: "<?",
    _UINT64: "<Q",
    _INT64: "<q",
    _FLOAT64: "<d",
}
# llama.cpp token types: 3 = control, 4 = user defined.
TOKEN_TYPE_CONTROL = 3
TOKEN_TYPE_USER_DEFINED = 4

# Arrays longer than this are summarised by their length rather than kept in memory,
# except the vocabulary, which `read_header` scans for the tokens it is asked about.
_MAX_KEPT_ARRAY = 1024


@dataclass
class GGUFHeader:
    """What the header of a GGUF file says about the model inside it."""

    path: Path
    version: int
    tensor_count: int
    metadata: dict[str, Any]
    vocab_size: int = 0
    # Text of every vocabulary entry that was asked for (see `read_header(wanted_tokens=...)`)
    # mapped to its id and llama.cpp token type.
    found_tokens: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    @property
    def name(self) -> str:
        return str(self.metadata.get("general.name", self.path.stem))

    @property
    def context_length(self) -> int | None:
        value = self.metadata.get(f"{self.architecture}.context_length")
        return int(value) if value is not None else None

    @property
    def chat_template(self) -> str | None:
        value = self.metadata.get("tokenizer.chat_template")
        return str(value) if value else None

    @property
    def file_type(self) -> int | None:
        value = self.metadata.get("general.file_type")
        return int(value) if value is not None else None


class _Reader:
    def __init__(self, handle: BinaryIO, size: int):
        self.handle = handle
        self.size = size
        self.buffer = b""
        self.pos = 0  # position of buffer[0] in the file
        self.offset = 0  # read position inside buffer

    def _need(self, n: int) -> None:
        if self.offset + n <= len(self.buffer):
            return
        absolute = self.pos + self.offset
        if absolute + n > self.size:
            raise GGUFError(f"the file ends in the middle of its header (at byte {absolute:,})")
        self.handle.seek(absolute)
        self.buffer = self.handle.read(max(n, 4 << 20))
        self.pos = absolute
        self.offset = 0

    def unpack(self, fmt: str) -> Any:
        n = struct.calcsize(fmt)
        self._need(n)
        (value,) = struct.unpack_from(fmt, self.buffer, self.offset)
        self.offset += n
        return value

    def raw(self, n: int) -> bytes:
        if n > self.size:
            raise GGUFError(f"a header string claims {n:,} bytes, more than the whole file")
        self._need(n)
        data = self.buffer[self.offset : self.offset + n]
        self.offset += n
        return data

    def skip(self, n: int) -> None:
        absolute = self.pos + self.offset + n
        if absolute > self.size:
            raise GGUFError(f"the file ends in the middle of its header (at byte {absolute:,})")
        if self.offset + n <= len(self.buffer):
            self.offset += n
        else:
            self.buffer, self.pos, self.offset = b"", absolute, 0

    def string(self) -> str:
        return self.raw(self.unpack("<Q")).decode("utf-8", errors="replace")


def _read_value(reader: _Reader, value_type: int) -> Any:
    if value_type in _SCALAR_FORMATS:
        return reader.unpack(_SCALAR_FORMATS[value_type])
    if value_type == _STRING:
        return reader.string()
    if value_type == _ARRAY:
        item_type = reader.unpack("<I")
        count = reader.unpack("<Q")
        if count > reader.size:
            raise GGUFError(f"a header array claims {count:,} items, more than the file could hold")
        if count > _MAX_KEPT_ARRAY and item_type in _SCALAR_FORMATS:
            reader.skip(count * struct.calcsize(_SCALAR_FORMATS[item_type]))
            return _LongArray(count)
        items = [_read_value(reader, item_type) for _ in range(count)]
        return items if count <= _MAX_KEPT_ARRAY else _LongArray(count)
    raise GGUFError(f"unknown metadata value type {value_type} (not a GGUF file, or damaged)")


@dataclass(frozen=True)
class _LongArray:
    length: int


def _scan_tokens(reader: _Reader, wanted: set[bytes]) -> tuple[int, dict[bytes, int]]:
    """Walk the vocabulary string array, noting the ids of the wanted token texts."""
    item_type = reader.unpack("<I")
    count = reader.unpack("<Q")
    if item_type != _STRING:
        raise GGUFError("tokenizer.ggml.tokens is not an array of strings")
    if count > reader.size:
        raise GGUFError(f"the vocabulary claims {count:,} tokens, more than the file could hold")
    found: dict[bytes, int] = {}
    unpack_length = struct.Struct("<Q").unpack_from
    for token_id in range(count):
        reader._need(8)
        (length,) = unpack_length(reader.buffer, reader.offset)
        reader.offset += 8
        if length > 1024:
            raise GGUFError(f"vocabulary entry {token_id} claims {length:,} bytes (damaged file?)")
        reader._need(length)
        if wanted:
            text = reader.buffer[reader.offset : reader.offset + length]
            if text in wanted:
                found[text] = token_id
        reader.offset += length
    return count, found


def _read_token_types(reader: _Reader, ids: dict[bytes, int]) -> dict[int, int]:
    item_type = reader.unpack("<I")
    count = reader.unpack("<Q")
    fmt = _SCALAR_FORMATS.get(item_type)
    if fmt is None:
        raise GGUFError("tokenizer.ggml.token_type is not an array of numbers")
    width = struct.calcsize(fmt)
    start = reader.pos + reader.offset
    types: dict[int, int] = {}
    for token_id in sorted(ids.values()):
        if token_id < count:
            reader.handle.seek(start + token_id * width)
            types[token_id] = struct.unpack(fmt, reader.handle.read(width))[0]
    # Skip past the array.
    skip_to = start + count * width
    if skip_to > reader.size:
        raise GGUFError("the file ends inside tokenizer.ggml.token_type")
    reader.handle.seek(skip_to)
    reader.buffer, reader.pos, reader.offset = b"", skip_to, 0
    return types


def read_header(
    path: str | os.PathLike[str], wanted_tokens: AbstractSet[str] = frozenset()
) -> GGUFHeader:
    """Parse the header (metadata, vocabulary size, wanted tokens) and check the file is whole.

    Raises GGUFError with a plain explanation when the file is missing, is not GGUF, uses an
    unsupported version, or is shorter than its own tensor table says.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        handle = path.open("rb")
    except FileNotFoundError:
        raise GGUFError(f"no file at {path}") from None
    except OSError as error:
        raise GGUFError(f"cannot read {path}: {error.strerror}") from None
    wanted = {text.encode("utf-8") for text in wanted_tokens}
    with handle:
        if size < 24:
            raise GGUFError(f"{path} is {size} bytes long: too short to be a GGUF model")
        reader = _Reader(handle, size)
        if reader.raw(4) != GGUF_MAGIC:
            raise GGUFError(f"{path} is not a GGUF file (it does not start with 'GGUF')")
        version = reader.unpack("<I")
        if version not in (2, 3):
            raise GGUFError(f"{path} is GGUF version {version}; llama.cpp reads versions 2 and 3")
        tensor_count = reader.unpack("<Q")
        kv_count = reader.unpack("<Q")
        if kv_count > size or tensor_count > size:
            raise GGUFError(f"{path} has an impossible header (damaged file?)")
        metadata: dict[str, Any] = {}
        vocab_size = 0
        found_ids: dict[bytes, int] = {}
        token_types: dict[int, int] = {}
        for _ in range(kv_count):
            key = reader.string()
            value_type = reader.unpack("<I")
            if key == "tokenizer.ggml.tokens" and value_type == _ARRAY:
                vocab_size, found_ids = _scan_tokens(reader, wanted)
                metadata[key] = _LongArray(vocab_size)
            elif key == "tokenizer.ggml.token_type" and value_type == _ARRAY and found_ids:
                token_types = _read_token_types(reader, found_ids)
                metadata[key] = _LongArray(vocab_size)
            else:
                metadata[key] = _read_value(reader, value_type)
        _check_tensor_table(reader, tensor_count, metadata, size, path)
    found = {
        text.decode("utf-8"): (token_id, token_types.get(token_id, 0))
        for text, token_id in found_ids.items()
    }
    return GGUFHeader(path, version, tensor_count, metadata, vocab_size, found)


def _check_tensor_table(
    reader: _Reader, tensor_count: int, metadata: dict[str, Any], size: int, path: Path
) -> None:
    """Read the tensor infos and make sure the data they point at lies inside the file."""
    alignment = int(metadata.get("general.alignment", 32))
    furthest = 0
    for _ in range(tensor_count):
        reader.string()  # name
        n_dims = reader.unpack("<I")
        if n_dims > 8:
            raise GGUFError(f"{path} has a tensor with {n_dims} dimensions (damaged file?)")
        for _ in range(n_dims):
            reader.unpack("<Q")
        reader.unpack("<I")  # ggml type
        furthest = max(furthest, reader.unpack("<Q"))
    header_end = reader.pos + reader.offset
    data_start = (header_end + alignment - 1) // alignment * alignment
    if tensor_count and data_start + furthest >= size:
        raise GGUFError(
            f"{path} is truncated: its tensors need more than {data_start + furthest:,} bytes "
            f"but the file has {size:,} (an interrupted download or copy?)"
        )
