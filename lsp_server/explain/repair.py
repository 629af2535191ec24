"""Verified fixes (`explain.run`): what automated program repair does, kept small. The failing
test or script is re-run (sandboxed, explain/tracing.py) with one-line edits of the function
under suspicion in place of its file, in memory; an edit that makes it pass is a verified fix
and decides the culprit (`Question.verified_fix`). A 270M model alone cannot find most culprits;
a re-run that passes is evidence a user can check.

The edits are the model's own choices where it was most surprised (the token it expected in
place of the one written) first, then the classic mutation operators (explain/mutations.py),
ranked by how surprising the model found the token they change. At most `repair_max_runs` runs
within `repair_budget_s` seconds; the first edit that passes wins.
"""

from __future__ import annotations

import ast
import bisect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hintwise.lsp_server.code.documents import uri_path
from hintwise.lsp_server.code.surprise import candidates
from hintwise.lsp_server.code.units import Unit
from hintwise.lsp_server.config import ExplainSettings
from hintwise.lsp_server.explain import mutations, tracing
from hintwise.lsp_server.explain.callee import imported_callee, is_test_file, move_to
from hintwise.lsp_server.explain.question import Question, VerifiedFix, add_runtime_values
from hintwise.models.engine import Engine, TokenScore, TokenScorer

# How much likelier an edit of each kind is to be the fix, in the units of the model's surprise
# (natural log): fixed a priori from the kinds of one-line bugs, not fitted to a benchmark.
KIND_BONUS = {
    "model": 100.0,
    "operator": 2.0,
    "keyword": 2.0,
    "constant": 1.5,
    "function": 1.5,
    "negation": 1.0,
    "string": 0.5,
    "drop": 0.5,
    "name": 0.0,
    "delete": 0.0,
}
MODEL_EDITS = 8


@dataclass
class RepairResult:
    """What the search found and what it cost."""

    fix: VerifiedFix | None = None
    edit: mutations.Edit | None = None
    candidates: int = 0
    tried: int = 0
    seconds: float = 0.0
    outcomes: list[str] = field(default_factory=list)


def model_scores(
    engine: Engine, question: Question, cancelled: Callable[[], bool]
) -> list[TokenScore]:
    """How likely the model finds each token of the code shown (on the model thread); empty for
    engines that do not score tokens."""
    if not isinstance(engine, TokenScorer):
        return []
    return engine.score(f"# {question.language}\n", question.code, cancelled) or []


def ranked_edits(question: Question, text: str, scores: list[TokenScore]) -> list[mutations.Edit]:
    """The one-line edits of the code shown, most promising first."""
    first = question.first_line
    last = first + question.code.count("\n")
    found = mutations.edits(text, first, last)
    known = {(e.line, e.code) for e in found}
    model = [e for e in _model_edits(question, scores) if (e.line, e.code) in known]
    starts = [0]
    for line in question.code.split("\n"):
        starts.append(starts[-1] + len(line) + 1)
    offsets = [s.offset for s in scores]

    def surprise(edit: mutations.Edit) -> float:
        at = edit.line - first
        if not scores or not 0 <= at < len(starts) - 1:
            return 0.0
        index = bisect.bisect_right(offsets, starts[at] + edit.column) - 1
        return -scores[index].logprob if index >= 0 else 0.0

    order = sorted(found, key=lambda e: -(KIND_BONUS.get(e.kind, 0.0) + surprise(e)))
    model_keys = {(e.line, e.code) for e in model}
    return [*model, *(e for e in order if (e.line, e.code) not in model_keys)]


def _model_edits(question: Question, scores: list[TokenScore]) -> list[mutations.Edit]:
    """The lines with the model's own expected token in place of the one it least expected."""
    if not scores:
        return []
    last = question.first_line + question.code.count("\n")
    unit = Unit("code", "shown", question.first_line, last, 0, len(question.code), question.code)
    found = candidates(unit, scores, MODEL_EDITS, any_token=True, language=question.language)
    return [mutations.Edit(c.line, c.replacement, "model", 0) for c in found if c.replacement]


def find_fix(
    question: Question,
    kind: str,
    target: str,
    root: Path,
    scores: list[TokenScore],
    settings: ExplainSettings,
    run_timeout_s: float,
) -> RepairResult:
    """Re-run the target with the ranked edits until one passes (bounded by the settings)."""
    started = time.monotonic()
    path = uri_path(question.uri) if question.uri else None
    if path is None or question.language != "python" or not path.is_file():
        return RepairResult()
    if is_test_file(path):
        return RepairResult()  # a test "fixed" by changing the test proves nothing
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    lines = text.split("\n")
    shown = question.code.split("\n")
    if lines[question.first_line : question.first_line + len(shown)] != shown:
        return RepairResult()  # unsaved changes: the run would not see the code shown
    edits = ranked_edits(question, text, scores)[: settings.repair_max_runs]
    sources = [mutations.apply(text, edit) for edit in edits]
    outcomes = tracing.run_candidates(
        kind,
        target,
        root,
        path,
        sources,
        run_timeout_s,
        settings.repair_budget_s,
        settings.run_memory_mb,
    )
    result = RepairResult(
        candidates=len(edits),
        tried=len(outcomes),
        outcomes=outcomes,
        seconds=time.monotonic() - started,
    )
    if outcomes and outcomes[-1] == "passed":
        edit = edits[len(outcomes) - 1]
        result.edit = edit
        result.fix = VerifiedFix(edit.line, edit.code.strip(), _evidence(kind, edit, lines))
    return result


def _evidence(kind: str, edit: mutations.Edit, lines: list[str]) -> str:
    what = "the failing test passes" if kind == "pytest" else "the script runs without an error"
    if not edit.code:
        return f"without line {edit.line + 1} (`{lines[edit.line].strip()}`) {what}"
    return f"with line {edit.line + 1} as `{edit.code.strip()}` {what}"


def checks_results(kind: str, target: str, root: Path, outcome: str) -> bool:
    """Whether passing means the code is right, not just that it stopped crashing: a test does
    (its asserts), and so does a script that failed an assert or holds asserts; a script that
    merely raised would "pass" with any change that avoids the exception, such as dropping the
    division that raised."""
    if kind == "pytest" or outcome.startswith("failed: AssertionError"):
        return True
    path = Path(target) if Path(target).is_absolute() else root / target
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="surrogateescape"))
    except (OSError, SyntaxError, ValueError):
        return False
    return any(isinstance(node, ast.Assert) for node in ast.walk(tree))


def ground(
    question: Question,
    target: tuple[str, str],
    root: Path,
    settings: ExplainSettings,
    score: Callable[[Question], list[TokenScore]],
) -> tuple[list[str], RepairResult | None]:
    """Run the failing target traced; when it fails and `explain.repair` is on, search for a
    verified fix (set on the question) in the suspect function: the one shown, or, for a
    failing line of a test file, the workspace function it calls (then shown instead when the
    fix is found there). The facts for the model: the fix when one was found, else what the
    traced run recorded. `score` is the model's token scores of a question's code."""
    path = uri_path(question.uri) if question.uri else None
    started = time.monotonic()
    traced = tracing.run_traced(
        *target, root, path, question.function, settings.run_timeout_s, settings.run_memory_mb
    )
    baseline = time.monotonic() - started
    add_runtime_values(question, traced.events)  # a dict's real keys, a list's real length
    failed = traced.outcome.startswith("failed") or traced.outcome == "timeout"
    if not settings.repair or not failed or not checks_results(*target, root, traced.outcome):
        return traced.facts, None
    # A change that fixes a hanging run makes it quick; one that does not must not eat the budget.
    slowest = 1.0 if traced.outcome == "timeout" else max(1.0, 5 * baseline)
    run_timeout = min(float(settings.run_timeout_s), slowest)
    suspect = imported_callee(question, root) or question
    result = find_fix(suspect, *target, root, score(suspect), settings, run_timeout)
    if result.fix is None:
        if result.tried:
            note = f"runtime: none of {result.tried} one-line changes tried made the run pass"
            return [*traced.facts, note], result
        return traced.facts, result
    if suspect is not question:
        move_to(question, suspect, "the fix was found there")
    question.verified_fix = result.fix
    fact = f"verified: {result.fix.evidence} (re-run sandboxed; the file was not changed)"
    return [fact, traced.facts[-1]], result
