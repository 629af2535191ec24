"""Real defects from a static analyser, as review comments.

ruff is the analyser: one binary wheel on every platform (a dependency, found with the `ruff`
package's own `find_ruff_bin`), about 10 ms per file, and it has every check the review wants
(pyflakes' undefined and unused names, pycodestyle's `== None`, bugbear's mutable default
arguments, pylint's self-assignment). pyflakes alone lacks the last three. The document text goes
in on stdin (no temporary file in the workspace) with `--isolated`: the user's own ruff
configuration decides what *their* ruff shows, which the review de-duplicates against; ours is a
fixed list of defects that must not grow (a `select = ["ALL"]`) or break (an invalid config file)
with theirs. `# noqa` comments in the code are still honoured.

Only rules that are defects are selected, each kept after counting its hits on CPython's standard
library (docs/review-static.md has the counts); review/intended.py drops the findings on code
written that way on purpose.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field

from hintwise.lsp_server.review.comments import Comment, apply_replacement
from hintwise.lsp_server.review.intended import intended
from hintwise.lsp_server.review.unreachable import unreachable

# Rule → comment severity. error: raises or misbehaves at run time every time it runs;
# warning: a likely defect; info: works today, breaks on types that override `==`.
RULES: dict[str, str] = {
    "F821": "error",  # undefined name
    "F822": "error",  # undefined name in __all__
    "F823": "error",  # local variable referenced before assignment
    "F632": "error",  # `is` with a literal
    "F631": "error",  # assert on a non-empty tuple: always true
    "F633": "error",  # `print >>`
    "F701": "error",  # break outside a loop
    "F702": "error",  # continue outside a loop
    "F704": "error",  # yield outside a function
    "F706": "error",  # return outside a function
    "F707": "error",  # bare except not last
    "F501": "error",  # % format: invalid
    "F502": "error",
    "F503": "error",
    "F504": "warning",  # % format: unused named arguments
    "F505": "error",
    "F506": "error",
    "F507": "error",  # % format: wrong number of arguments
    "F508": "error",
    "F509": "error",
    "F521": "error",  # .format: invalid
    "F522": "warning",
    "F523": "warning",
    "F524": "error",  # .format: missing argument
    "F525": "error",
    "F601": "warning",  # dict key repeated with another value
    "F602": "warning",
    "F622": "error",
    "F811": "warning",  # redefinition of an unused name
    "F841": "warning",  # local variable assigned but never used
    "E711": "info",  # comparison to None with ==
    "B006": "warning",  # mutable default argument (mutated in the function)
    "B015": "warning",  # comparison whose result is thrown away
    "B016": "error",  # raise a literal
    "B025": "warning",  # duplicate except handler
    "B029": "error",  # except ()
    "B030": "error",  # except with a non-exception
    "B032": "warning",  # `x: 1` meant `x = 1`
    "B033": "warning",  # duplicate set item
    "B035": "warning",  # dict comprehension with a constant key
    "PLW0127": "warning",  # self-assignment
    "PLW0133": "warning",  # exception created, never raised
    "PLE1142": "error",  # await outside async
    "PLE1205": "error",  # logging: too many arguments
    "PLE1206": "error",  # logging: too few arguments
    "PLE1300": "error",  # bad format character
    "PLE1307": "error",  # bad format type
    "PLE1310": "warning",  # strip with repeated characters
    "PLW1501": "error",  # invalid open() mode
}
# Checks of our own (tree-sitter), for what ruff does not check.
OWN_RULES: dict[str, str] = {"unreachable": "warning"}
TIMEOUT_S = 5.0
PREFIX = "ruff:"  # a static comment's kind is PREFIX + rule, or OWN_PREFIX + own rule
OWN_PREFIX = "hintwise:"


@dataclass(frozen=True)
class Edit:
    """One of ruff's edits: 0-based rows, 0-based character columns, end exclusive."""

    row: int
    column: int
    end_row: int
    end_column: int
    content: str


@dataclass(frozen=True)
class Finding:
    """One defect as ruff reports it (0-based lines and character columns)."""

    code: str
    message: str
    line: int
    column: int
    end_line: int
    end_column: int
    fix_message: str = ""
    edits: tuple[Edit, ...] = ()


@dataclass
class StaticResult:
    """What one run found, or why it did not run (`problem`), and its time."""

    findings: list[Finding] = field(default_factory=list)
    problem: str | None = None
    ms: float = 0.0
    dropped: dict[str, int] = field(default_factory=dict)


def find_ruff() -> str | None:
    """The ruff binary of this environment (the `ruff` package), else one on PATH."""
    try:
        from ruff import find_ruff_bin

        return str(find_ruff_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("ruff")


def ruff_version(binary: str | None = None) -> str | None:
    binary = binary or find_ruff()
    if binary is None:
        return None
    try:
        done = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=TIMEOUT_S
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip().removeprefix("ruff ") or None


def run_ruff(text: str, filename: str = "review.py", binary: str | None = None) -> StaticResult:
    """ruff's findings of the selected rules for `text` (stdin); never raises."""
    started = time.perf_counter()
    binary = binary or find_ruff()
    if binary is None:
        return StaticResult(problem="ruff is not installed (pip install ruff)")
    command = [
        binary,
        "check",
        "--isolated",
        "--no-cache",
        "--select",
        ",".join(RULES),
        "--output-format",
        "json",
        "--stdin-filename",
        filename,
        "-",
    ]
    try:
        done = subprocess.run(
            command, input=text, capture_output=True, text=True, timeout=TIMEOUT_S
        )
        items = json.loads(done.stdout)
    except subprocess.TimeoutExpired:
        return StaticResult(problem=f"ruff took more than {TIMEOUT_S:.0f} s")
    except (OSError, subprocess.SubprocessError, json.JSONDecodeError) as error:
        return StaticResult(problem=f"ruff failed: {error}")
    if done.returncode not in (0, 1) or not isinstance(items, list):
        return StaticResult(problem=f"ruff failed: {done.stderr.strip()[:200]}")
    findings = [f for f in map(_finding, items) if f is not None]
    return StaticResult(findings, ms=(time.perf_counter() - started) * 1000)


def _finding(item: dict) -> Finding | None:
    """A Finding from one JSON item; None for syntax errors (code null) and unknown rules."""
    code = item.get("code")
    if code not in RULES:
        return None
    start, end = item["location"], item["end_location"]
    fix = item.get("fix") or {}
    edits = tuple(
        Edit(
            e["location"]["row"] - 1,
            e["location"]["column"] - 1,
            e["end_location"]["row"] - 1,
            e["end_location"]["column"] - 1,
            e["content"],
        )
        for e in fix.get("edits") or []
    )
    return Finding(
        code=code,
        message=item.get("message", ""),
        line=start["row"] - 1,
        column=start["column"] - 1,
        end_line=end["row"] - 1,
        end_column=end["column"] - 1,
        fix_message=fix.get("message") or "",
        edits=edits if fix.get("applicability") in ("safe", "unsafe") else (),
    )


def check(text: str, language: str, filename: str = "review.py") -> StaticResult:
    """The findings worth a review comment in a Python document (nothing for other
    languages), after the precision filters."""
    if language != "python":
        return StaticResult()
    result = run_ruff(text, filename if filename.endswith((".py", ".pyi")) else "review.py")
    kept = []
    for finding in result.findings:
        reason = intended(finding, text, result.findings)
        if reason:
            result.dropped[reason] = result.dropped.get(reason, 0) + 1
        else:
            kept.append(finding)
    result.findings = kept + _unreachable(text)
    return result


def _unreachable(text: str) -> list[Finding]:
    lines = text.split("\n")
    findings = []
    for node, jump in unreachable(text):
        line, byte = node.start_point
        code = lines[line].encode("utf-8", "surrogatepass")
        findings.append(
            Finding(
                code="unreachable",
                message=f"Unreachable code: it comes after a `{jump}`",
                line=line,
                column=len(code[:byte].decode("utf-8", "surrogatepass")),
                end_line=line,
                end_column=len(lines[line].rstrip()),
            )
        )
    return findings


def fixed_text(text: str, finding: Finding) -> str | None:
    """The text with ruff's own edits for the finding applied, or None without edits."""
    if not finding.edits:
        return None
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)

    def offset(row: int, column: int) -> int:
        return min(starts[min(row, len(lines))] + column, len(text))

    result = text
    for edit in sorted(finding.edits, key=lambda e: (e.row, e.column), reverse=True):
        start, end = offset(edit.row, edit.column), offset(edit.end_row, edit.end_column)
        result = result[:start] + edit.content + result[end:]
    return result


def line_replacement(old: str, new: str, line: int) -> str | None:
    """The new line(s) that stand for `line` when `new` differs from `old` on that line only;
    None when the change reaches other lines or removes the line."""
    old_lines, new_lines = old.split("\n"), new.split("\n")
    head = 0
    while head < min(len(old_lines), len(new_lines)) and old_lines[head] == new_lines[head]:
        head += 1
    tail = 0
    while (
        tail < min(len(old_lines), len(new_lines)) - head
        and old_lines[-1 - tail] == new_lines[-1 - tail]
    ):
        tail += 1
    changed_old = old_lines[head : len(old_lines) - tail]
    changed_new = new_lines[head : len(new_lines) - tail]
    if head != line or len(changed_old) != 1 or not changed_new:
        return None
    if not any(part.strip() for part in changed_new):
        return None
    return "\n".join(changed_new)


def comments_for(
    text: str, language: str, findings: list[Finding], flagged_lines: set[int]
) -> tuple[list[Comment], dict[str, int]]:
    """A review comment per finding (one per rule and line), with ruff's own fix when it is a
    change of that line that still parses; none on lines another server already flagged."""
    comments: list[Comment] = []
    dropped: dict[str, int] = {}
    seen: set[tuple[int, str]] = set()
    lines = text.split("\n")
    for finding in findings:
        reason = (
            "line already has a diagnostic"
            if finding.line in flagged_lines
            else "repeated"
            if (finding.line, finding.code) in seen
            else None
        )
        if reason:
            dropped[reason] = dropped.get(reason, 0) + 1
            continue
        seen.add((finding.line, finding.code))
        line = lines[finding.line] if finding.line < len(lines) else ""
        comment = Comment(
            line=finding.line,
            severity=RULES.get(finding.code) or OWN_RULES[finding.code],
            message=f"{finding.message} [{finding.code}]"
            if finding.code in RULES
            else finding.message,
            kind=(PREFIX if finding.code in RULES else OWN_PREFIX) + finding.code,
            start_character=finding.column,
            end_character=finding.end_column
            if finding.end_line == finding.line
            else len(line.rstrip()),
            end_line=finding.line,
        )
        fixed = fixed_text(text, finding)
        comment.replacement = line_replacement(text, fixed, finding.line) if fixed else None
        if comment.replacement is not None and apply_replacement(text, language, comment) is None:
            comment.replacement = None
        comments.append(comment)
    return comments, dropped


def is_static(comment: Comment) -> bool:
    return comment.kind.startswith((PREFIX, OWN_PREFIX))
