"""The model's vocabulary as the completion loop needs it: token pieces (bytes), the sorted piece
index for token healing, and the token sets used as constraints (tokens starting with a comment
marker, tokens made only of indentation), computed once by `prepare()`.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from hintwise.models.fim import FimTokens
from hintwise.models.prompt import PieceIndex

if TYPE_CHECKING:
    from llama_cpp import Llama

# Comment markers the completion pipeline may ask to avoid (Python, then C-like languages).
COMMENT_MARKERS = (("#",), ("//", "/*"))

# Vocabulary entries read per slice of `prepare()` between two cancellation checks.
PREPARE_SLICE = 16384


class Vocabulary:
    """Token ids ↔ bytes for one loaded model, with caches built in the background."""

    def __init__(self, llm: Llama, fim: FimTokens | None):
        import llama_cpp

        self.llm = llm
        self.fim = fim
        self.lib = llama_cpp
        self.handle = llm._model.vocab  # llama.cpp's vocabulary pointer (samplers need it)
        self.n_vocab = llm.n_vocab()
        self.add_bos = bool(llm._model.add_bos_token())
        self.bos = llm.token_bos()
        self._piece_buffer = ctypes.create_string_buffer(256)
        self._pieces: dict[int, bytes] = {}
        self._piece_index: PieceIndex | None = None
        self._prepared_upto = 0
        self._avoid_cache: dict[tuple[str, ...], frozenset[int]] = {}
        self._indenting_ids: dict[str, np.ndarray] = {}

    def tokenize(self, text: str) -> list[int]:
        """Tokens of plain text: no BOS, and marker texts inside code stay plain text."""
        return self.llm.tokenize(
            text.encode("utf-8", errors="surrogatepass"), add_bos=False, special=False
        )

    def bos_tokens(self) -> list[int]:
        """What a prompt starts with: [BOS] when the model wants one, else nothing."""
        return [self.bos] if self.add_bos and self.bos >= 0 else []

    def piece(self, token: int) -> bytes:
        cached = self._pieces.get(token)
        if cached is None:
            n = self.lib.llama_token_to_piece(self.handle, token, self._piece_buffer, 256, 0, False)
            cached = self._piece_buffer.raw[: max(n, 0)]
            self._pieces[token] = cached
        return cached

    def text(self, token: int) -> str:
        """The token's piece as text (invalid UTF-8, e.g. half a character, replaced)."""
        return self.piece(token).decode("utf-8", errors="replace")

    def piece_index(self) -> PieceIndex:
        """Sorted vocabulary pieces for token healing (~0.7 s for Gemma's 262,144 tokens)."""
        if self._piece_index is None:
            self.prepare()
        assert self._piece_index is not None
        return self._piece_index

    @property
    def prepared(self) -> bool:
        return self._piece_index is not None

    def prepare(self, cancelled: Callable[[], bool] = lambda: False) -> bool:
        """Build the healing index in slices, giving way to requests between slices.

        Runs as background work right after loading; a completion that arrives first is served
        at once (without healing) instead of waiting for the index. Returns True when done.
        """
        while self._prepared_upto < self.n_vocab:
            if cancelled():
                return False
            end = min(self.n_vocab, self._prepared_upto + PREPARE_SLICE)
            for token in range(self._prepared_upto, end):
                self.piece(token)
            self._prepared_upto = end
        if self._piece_index is None:
            self._piece_index = PieceIndex([self.piece(i) for i in range(self.n_vocab)])
            # The token sets the completion constraints use, so no request pays for the scan.
            self.indenting(" ")
            self.indenting("\t")
            for markers in COMMENT_MARKERS:
                self.starting_with(markers)
        return True

    def is_eog(self, token: int) -> bool:
        """llama.cpp's end-of-generation tokens (EOS, end of turn, ...)."""
        return bool(self.lib.llama_vocab_is_eog(self.handle, token))

    def ends_generation(self, token: int) -> bool:
        """Tokens that end a completion: end of generation, the FIM format's stop tokens, and
        any other control token (never part of code)."""
        if self.is_eog(token):
            return True
        if self.fim and token in self.fim.stop_ids:
            return True
        return bool(self.lib.llama_vocab_is_control(self.handle, token))

    def starting_with(self, texts: tuple[str, ...]) -> frozenset[int]:
        """Tokens whose text, leading whitespace aside, starts with one of `texts` (cached)."""
        if not texts:
            return frozenset()
        if texts not in self._avoid_cache:
            heads = tuple(text.encode() for text in texts)
            self._avoid_cache[texts] = frozenset(
                token
                for token in range(self.n_vocab)
                if self.piece(token).lstrip().startswith(heads)
            )
        return self._avoid_cache[texts]

    def indenting(self, char: str) -> np.ndarray:
        """Ids of the tokens made only of `char` (a space or a tab), cached.

        Not every token that starts with a space: BPE vocabularies (SmolLM2, Qwen) have
        " return", " if", ... and a model asked to start indented would pick one of those and
        indent by a single space. A run of the file's indentation character first (BPE writes
        "    return" as "   " + " return"), then anything.
        """
        if char not in self._indenting_ids:
            unit = char.encode()
            self._indenting_ids[char] = np.asarray(
                [
                    t
                    for t in range(self.n_vocab)
                    if (piece := self.piece(t)) and not piece.replace(unit, b"")
                ]
            )
        return self._indenting_ids[char]
