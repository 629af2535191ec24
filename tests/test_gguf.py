"""The GGUF header reader: real files read right, broken files refused with a clear reason."""

from __future__ import annotations

import struct

import pytest
from gguf_files import write_vocab_gguf

from hintwise.models.errors import GGUFError
from hintwise.models.files.gguf import read_header


def test_reads_the_bundled_gemma_header(gemma_path):
    header = read_header(gemma_path, {"<start_of_turn>"})
    assert header.architecture == "gemma3"
    assert header.context_length == 32768
    assert header.vocab_size == 262144
    assert header.found_tokens["<start_of_turn>"][0] == 105
    assert header.tensor_count > 100


def test_reads_a_file_written_by_llamacpps_writer(tmp_path):
    path = write_vocab_gguf(tmp_path / "tiny.gguf", ["a", "b", "<fim_prefix>"])
    header = read_header(path, {"<fim_prefix>", "zzz"})
    assert header.architecture == "llama"
    assert header.vocab_size == 3
    assert header.found_tokens == {"<fim_prefix>": (2, 1)}


def test_truncated_download_is_reported_as_truncated(tmp_path, gemma_path):
    partial = tmp_path / "partial.gguf"
    with gemma_path.open("rb") as source:
        partial.write_bytes(source.read(8_000_000))
    with pytest.raises(GGUFError, match="truncated"):
        read_header(partial)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "too short"),
        (b"PK\x03\x04" + b"\x00" * 100, "not a GGUF file"),
        (b"hello world, this is a text file renamed to .gguf\n" * 3, "not a GGUF file"),
        (b"GGUF" + struct.pack("<I", 99) + b"\x00" * 40, "version 99"),
        (b"GGUF" + struct.pack("<IQQ", 3, 1, 10**15) + b"\x00" * 40, "impossible header"),
        (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 10**12) + b"x" * 30, "claims"),
    ],
)
def test_corrupt_files_get_a_reason(tmp_path, content, reason):
    path = tmp_path / "broken.gguf"
    path.write_bytes(content)
    with pytest.raises(GGUFError, match=reason):
        read_header(path)


def test_missing_file(tmp_path):
    with pytest.raises(GGUFError, match="no file"):
        read_header(tmp_path / "nope.gguf")
