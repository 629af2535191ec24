"""What the store keeps of the user's code, and the secrets it never keeps.

Two independent protections, applied by the writer to every row before it is written:

1. `store_code` (`telemetry.store_code`): `full` keeps prompt, prefix, suffix, suggestion text,
   replacement text and file path; `hashed` keeps only their sha256 (hex), enough to tell
   "the same prompt" or "the same file" apart without the code; `none` keeps NULL.
2. Secret redaction, always, whatever `store_code` says (a hash of a short secret can be brute
   forced, so hashing happens after redaction): each secret that the maintained `detect-secrets`
   package finds is replaced by `[REDACTED:<its secret type>]`, e.g.
   `postgres://user:[REDACTED:Basic Auth Credentials]@host/db`.

Why detect-secrets and how it is used: it is Yelp's maintained detector (27 plugins: AWS, GitHub,
Slack, Stripe, JWT, private keys, basic auth in URLs, keyword assignments, high-entropy strings,
...). Its ad hoc `scan_line` turns on "eager" high-entropy search, which flags ordinary words
(`return`, `hashlib`) in code, so we call each plugin's `analyze_line` as its file scan does, with
a file name whose extension picks the right keyword rules (a `.env` file is read as an `.ini` one,
which is what its `KEY=value` lines are), and apply detect-secrets' own false-positive filters
(`detect_secrets.filters.heuristic`: sequential strings, UUIDs, templated values, `$VARS`,
indirect references...) to its two generic detectors only (keywords and entropy). The
format-specific ones (an `AKIA...` key, a `ghp_` token) are never filtered away.
Verification (which would send a candidate secret to its provider over the network) is switched
off: nothing here opens a socket. The public-IP detector is left out: an address is not a secret,
and redacting it would only damage training data.

Narrow additions where detect-secrets 1.5.0 stops short (tested in tests/test_telemetry_privacy.py):
- the GitHub token plugin reports only the `ghp` prefix (its pattern's capturing group) as the
  secret value: the whole pattern match is redacted instead (generally: a capturing group that
  starts where the match starts is a prefix selector, not the secret);
- the JWT plugin's pattern stops after the second dot: the signature after it is redacted too;
- its private-key plugin finds the `BEGIN ... PRIVATE KEY` header only: the whole PEM block
  (header, base64 body, footer) is redacted, also when the window cuts the block at either end;
- an AWS secret access key assigned without quotes (`AWS_SECRET_ACCESS_KEY=...` in shell and
  `.env` files) is missed by its AWS plugin, which requires quotes: one rule for that shape;
- GitHub's fine-grained tokens (`github_pat_...`, 2022) are not in its GitHub plugin: one rule;
- a URL password with an empty user name (`redis://:password@host`) escapes its basic-auth
  pattern, which needs a user name: one rule.

Speed: about 0.1 ms per line. Prompts repeat almost every line from one keystroke to the next, so
lines are cached (LRU), and this runs on the writer thread, never on the LSP loop. The cache holds
the last LINE_CACHE lines: enough for consecutive prompts of a long window (a 1,024-token prefix
is about 100 lines) to share their lines; 20,000 lines (about 12 MB) made the server's memory grow
for hours of typing, each keystroke adding one or two new lines, before it levelled off.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import PurePath
from typing import Any, Literal

StoreCode = Literal["full", "hashed", "none"]
STORE_CODE_VALUES: tuple[StoreCode, ...] = ("full", "hashed", "none")

# Columns holding code (or a path), per table: `store_code` applies to these.
CODE_FIELDS: dict[str, tuple[str, ...]] = {
    "suggestions": ("prompt", "prefix", "suffix", "text"),
    "events": ("text",),
}
PATH_FIELDS: dict[str, tuple[str, ...]] = {"suggestions": ("file",)}
# JSON columns whose string values are redacted (they are not code, so store_code leaves them).
FREE_JSON_FIELDS: dict[str, tuple[str, ...]] = {
    "suggestions": ("detail",),
    "events": ("data",),
}


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Privacy:
    """The user's privacy settings, applied to each row by `apply`."""

    store_code: StoreCode = "full"

    def __post_init__(self) -> None:
        if self.store_code not in STORE_CODE_VALUES:
            raise ValueError(
                f"telemetry.store_code must be one of {', '.join(STORE_CODE_VALUES)}, "
                f"not {self.store_code!r}"
            )

    def apply(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        """Return `row` as it may be stored: secrets redacted, code kept/hashed/dropped.

        `row` is a plain dict of column values (JSON columns still as Python objects); it is
        changed in place and returned.
        """
        hint = row.get("file") if table == "suggestions" else None
        hint = hint if isinstance(hint, str) else None
        for name in CODE_FIELDS.get(table, ()):
            if name in row:
                row[name] = self._code(row[name], hint)
        for name in PATH_FIELDS.get(table, ()):
            if name in row:
                row[name] = self._code(row[name], None)
        for name in FREE_JSON_FIELDS.get(table, ()):
            if name in row:
                row[name] = redact_values(row[name], hint)
        if table == "suggestions" and "token_logprobs" in row:
            row["token_logprobs"] = logprob_numbers(row["token_logprobs"])
        return row

    def _code(self, value: Any, hint: str | None) -> Any:
        if value is None or self.store_code == "none":
            return None
        if not isinstance(value, str):
            value = str(value)
        value = redact(value, path=hint)
        return sha256_hex(value) if self.store_code == "hashed" else value


def logprob_numbers(value: Any) -> Any:
    """Keep only the numbers of per-token log-probs.

    The token strings are the suggestion text cut into pieces, where redaction cannot see a secret
    split across tokens and `store_code` would not apply: the text lives in `text`, alone.
    Accepts `[-0.1, ...]`, `[["tok", -0.1], ...]` or `[{"token": "tok", "logprob": -0.1}, ...]`.
    """
    if not isinstance(value, list | tuple):
        return value
    numbers: list[float | None] = []
    for item in value:
        if isinstance(item, int | float):
            numbers.append(float(item))
        elif isinstance(item, list | tuple) and item and isinstance(item[-1], int | float):
            numbers.append(float(item[-1]))
        elif isinstance(item, dict) and isinstance(item.get("logprob"), int | float):
            numbers.append(float(item["logprob"]))
        else:
            numbers.append(None)
    return numbers


def redact_values(value: Any, hint: str | None = None) -> Any:
    """Redact every string inside a JSON-like value (dicts, lists), keys left as they are."""
    if isinstance(value, str):
        return redact(value, path=hint)
    if isinstance(value, dict):
        return {key: redact_values(item, hint) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_values(item, hint) for item in value]
    return value


# --- redaction -------------------------------------------------------------------------------


def redact(text: str, path: str | None = None) -> str:
    """Replace every secret in `text` by `[REDACTED:<type>]`; everything else is left as it is.

    `path` (the file the text comes from, if known) only picks the detector rules for its kind
    of file (e.g. unquoted `KEY=value` assignments count in config files, not in Python).
    """
    if not text:
        return text
    text = _redact_private_keys(text)
    hint = _filename_hint(path)
    lines = text.split("\n")
    return "\n".join(_redact_line(line, hint) if len(line) >= 8 else line for line in lines)


PRIVATE_KEY = "Private Key"
_PEM_LABEL = r"(?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?"
_PEM_BLOCK = re.compile(rf"-----BEGIN ({_PEM_LABEL})-----.*?-----END \1-----", re.DOTALL)
_PEM_BEGIN = re.compile(rf"-----BEGIN {_PEM_LABEL}-----")
_PEM_END = re.compile(rf"-----END {_PEM_LABEL}-----")
# A base64 line of a PEM block, possibly inside a string literal; a full one is 64 characters
# (the last one of a block is shorter).
_PEM_LINE = re.compile(r"^[\s\"'`]*[A-Za-z0-9+/]{4,}={0,2}(?:\\n)?[\s\"'`,;+)\\]*$")
_PEM_FULL_LINE = re.compile(r"[A-Za-z0-9+/]{40,}")
_PEM_FIELD = re.compile(r"^[\s\"'`]*(?:Proc-Type|DEK-Info|Comment|Version):|^[\s\"'`]*$")


def _marker(kind: str) -> str:
    return f"[REDACTED:{kind}]"


def _redact_private_keys(text: str) -> str:
    """Whole PEM private-key blocks, also when a prefix/suffix window cuts one at either end."""
    if "PRIVATE KEY" not in text:
        return text
    text = _PEM_BLOCK.sub(_marker(PRIVATE_KEY), text)
    if "PRIVATE KEY-----" not in text:
        return text
    lines = text.split("\n")
    drop: set[int] = set()

    def extend(start: int, step: int) -> set[int]:
        found, body, index = {start}, False, start + step
        while 0 <= index < len(lines) and (
            _PEM_LINE.match(lines[index]) or _PEM_FIELD.match(lines[index])
        ):
            body = body or bool(_PEM_FULL_LINE.search(lines[index]))
            found.add(index)
            index += step
        # A header or footer with no key material next to it is just a string in code that
        # handles keys; detect-secrets' own plugin still redacts the header phrase itself.
        return found if body else set()

    for index, line in enumerate(lines):
        if _PEM_BEGIN.search(line):
            drop |= extend(index, +1)
        elif _PEM_END.search(line):
            drop |= extend(index, -1)
    if not drop:
        return text
    out: list[str] = []
    for index, line in enumerate(lines):
        if index not in drop:
            out.append(line)
        elif index == 0 or index - 1 not in drop:
            out.append(_marker(PRIVATE_KEY))
    return "\n".join(out)


_CONFIG_SUFFIXES = {".env"}


def _filename_hint(path: str | None) -> str:
    """A stand-in file name with the same extension: it is what selects detector rules, and it
    keeps the line cache shared across files of one kind."""
    if not path:
        return "telemetry.txt"
    pure = PurePath(path)
    name, suffix = pure.name.lower(), pure.suffix.lower()
    if name == ".env" or name.startswith(".env.") or suffix in _CONFIG_SUFFIXES:
        return "telemetry.ini"
    return f"telemetry{suffix}" if suffix else "telemetry.txt"


# Generic detectors: their false-positive filters apply, and a specific type wins over them.
_GENERIC_TYPES = ("Secret Keyword", "Base64 High Entropy String", "Hex High Entropy String")
_LEFT_OUT_PLUGINS = {"IPPublicDetector"}
_JWT_TYPE = "JSON Web Token"
_JWT_SIGNATURE = re.compile(r"[A-Za-z0-9_\-+/=]+")
# Narrow rules for formats detect-secrets 1.5.0 misses: (pattern, group holding the secret, type).
_EXTRA_RULES: tuple[tuple[re.Pattern[str], int, str], ...] = (
    # An AWS secret access key assigned without quotes (shell, .env); its plugin wants quotes.
    (
        re.compile(
            r"aws.{0,20}?(?:secret|key|token).{0,20}?[=:]\s*([0-9a-zA-Z/+]{40})(?![0-9a-zA-Z/+=])",
            re.IGNORECASE,
        ),
        1,
        "AWS Access Key",
    ),
    # GitHub fine-grained personal access tokens (2022): its plugin knows only ghp_/gho_/...
    (re.compile(r"\bgithub_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}\b"), 0, "GitHub Token"),
    # A URL password with an empty user name (redis://:password@host): its basic-auth pattern
    # needs a user name.
    (re.compile(r"://:([^\s/?#@:{}]+)@"), 1, "Basic Auth Credentials"),
)

_setup_lock = threading.Lock()


@contextlib.contextmanager
def _no_ipv6_probe():
    """Import detect-secrets without the socket its dependencies open on import.

    detect-secrets imports `requests` (for the verification we turn off); importing urllib3
    creates an IPv6 socket and binds it to ::1 to learn whether IPv6 works. Nothing is sent, but
    hintwise promises that it opens no socket at all unless a remote engine is configured, and a
    test holds it to that. With `socket.has_ipv6` false while urllib3 loads, it skips the probe
    (and assumes no IPv6, which nothing here uses: telemetry never connects anywhere).
    """
    import socket

    saved = socket.has_ipv6
    socket.has_ipv6 = False
    try:
        yield
    finally:
        socket.has_ipv6 = saved


@lru_cache(maxsize=1)
def _detectors() -> tuple[list[Any], list[Callable[[str, str, Any], bool]], Any]:
    """detect-secrets plugins (instantiated once) and its heuristic false-positive filters."""
    with _setup_lock, _no_ipv6_probe():
        from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
        from detect_secrets.filters import heuristic
        from detect_secrets.settings import get_settings
        from detect_secrets.util.code_snippet import get_code_snippet

        # Never verify a candidate with its provider: that is a network call carrying a secret.
        get_settings().disable_filters(
            "detect_secrets.filters.common.is_ignored_due_to_verification_policies"
        )
        plugin_classes: list[type[Any]] = list(get_mapping_from_secret_type_to_class().values())
        plugins = [
            plugin_class()
            for plugin_class in plugin_classes
            if plugin_class.__name__ not in _LEFT_OUT_PLUGINS
        ]
        # Called as detect-secrets calls them: each with the arguments its signature names.
        filters: list[Callable[[str, str, Any], bool]] = [
            lambda secret, line, plugin: heuristic.is_sequential_string(secret),
            lambda secret, line, plugin: heuristic.is_potential_uuid(secret),
            lambda secret, line, plugin: heuristic.is_likely_id_string(secret, line, plugin),
            lambda secret, line, plugin: heuristic.is_templated_secret(secret),
            lambda secret, line, plugin: heuristic.is_prefixed_with_dollar_sign(secret),
            lambda secret, line, plugin: heuristic.is_indirect_reference(line),
            lambda secret, line, plugin: heuristic.is_not_alphanumeric_string(secret),
        ]
        return plugins, filters, get_code_snippet


def _filtered(
    filters: Iterable[Callable[[str, str, Any], bool]], secret: str, line: str, plugin: Any
) -> bool:
    return any(check(secret, line, plugin) for check in filters)


def _spans(plugin: Any, line: str, values: set[str]) -> list[tuple[int, int]]:
    """Where in `line` the values a plugin reported are."""
    from detect_secrets.plugins.base import RegexBasedDetector

    spans: list[tuple[int, int]] = []
    if isinstance(plugin, RegexBasedDetector):
        for regex in plugin.denylist:
            for match in regex.finditer(line):
                if not regex.groups:
                    if match.group(0) in values:
                        spans.append(match.span())
                    continue
                for group in range(1, regex.groups + 1):
                    if match.group(group) and match.group(group) in values:
                        # A group at the very start is a prefix selector, e.g. GitHub's
                        # `(ghp|gho|...)_[A-Za-z0-9_]{36}`: the secret is the whole match.
                        at_start = match.start(group) == match.start()
                        spans.append(match.span() if at_start else match.span(group))
    if not spans:
        for value in values:
            start = line.find(value)
            while start != -1:
                spans.append((start, start + len(value)))
                start = line.find(value, start + len(value))
    return spans


LINE_CACHE = 2048


@lru_cache(maxsize=LINE_CACHE)
def _redact_line(line: str, filename: str) -> str:
    plugins, filters, get_code_snippet = _detectors()
    context = get_code_snippet(lines=[line], line_number=1)
    found: list[tuple[int, int, str]] = []
    for plugin in plugins:
        secrets = plugin.analyze_line(filename=filename, line=line, line_number=1, context=context)
        kind = plugin.secret_type
        values = {
            secret.secret_value
            for secret in secrets
            if secret.secret_value
            and not (
                kind in _GENERIC_TYPES and _filtered(filters, secret.secret_value, line, plugin)
            )
        }
        if not values:
            continue
        for start, end in _spans(plugin, line, values):
            if kind == _JWT_TYPE and line[start:end].endswith("."):
                signature = _JWT_SIGNATURE.match(line, end)
                end = signature.end() if signature else end
            found.append((start, end, kind))
    for pattern, group, kind in _EXTRA_RULES:
        for match in pattern.finditer(line):
            found.append((*match.span(group), kind))
    if not found:
        return line
    return _replace(line, found)


def _rank(kind: str) -> int:
    """Specific detectors name a span better than the generic ones."""
    return _GENERIC_TYPES.index(kind) + 1 if kind in _GENERIC_TYPES else 0


def _replace(line: str, found: list[tuple[int, int, str]]) -> str:
    """Merge overlapping spans, then replace each by one marker naming the best type."""
    found.sort()
    merged: list[list[Any]] = []
    for start, end, kind in found:
        if merged and start < merged[-1][1]:
            last = merged[-1]
            last[1] = max(last[1], end)
            if _rank(kind) < _rank(last[2]):
                last[2] = kind
        else:
            merged.append([start, end, kind])
    out, position = [], 0
    for start, end, kind in merged:
        out.append(line[position:start])
        out.append(_marker(kind))
        position = end
    out.append(line[position:])
    return "".join(out)
