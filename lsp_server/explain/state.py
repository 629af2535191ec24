"""The explanations the server computed, by id (for the rate / apply-fix commands and the code
actions) and by place (hovering the line shows the explanation again)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hintwise.lsp_server.code.documents import DocumentStore
from hintwise.lsp_server.explain.answer import Explanation, fix_edit


@dataclass
class ExplanationState:
    explanations: dict[str, tuple[Explanation, dict]] = field(default_factory=dict)  # id → (e, ctx)
    by_place: dict[tuple[str, int], str] = field(default_factory=dict)  # (uri, line) → id

    def remember(self, explanation: Explanation, context: dict) -> None:
        self.explanations[explanation.id] = (explanation, context)
        uri, line = context.get("uri"), context.get("line")
        if isinstance(uri, str) and isinstance(line, int):
            self.by_place[(uri, line)] = explanation.id

    def at(self, uri: str, line: int) -> Explanation | None:
        """The explanation shown for a line, if any."""
        explanation_id = self.by_place.get((uri, line))
        return self.explanations[explanation_id][0] if explanation_id is not None else None

    def fix(self, explanation_id: str, documents: DocumentStore) -> tuple[str, str, str] | None:
        """(uri, new text, old text) of an explanation's fix, when it has one that parses."""
        if explanation_id not in self.explanations:
            return None
        explanation, _ = self.explanations[explanation_id]
        culprit = explanation.culprit
        if not explanation.fix or not culprit:
            return None
        document = documents.get(culprit["uri"])
        if document is None:
            return None
        new_text = fix_edit(document.text, document.language_id, culprit["line"], explanation.fix)
        return (culprit["uri"], new_text, document.text) if new_text is not None else None
