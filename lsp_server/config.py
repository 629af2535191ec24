"""Settings: every knob, its default, and where a value may come from.

Sources, later ones winning: the defaults below, the environment (`HINTWISE_MODEL`,
`HINTWISE_DATA_DIR`), the client's `initializationOptions`, its `workspace/configuration`
section `hintwise` (re-read on didChangeConfiguration), and command-line flags. Keys are dotted
(`completion.max_lines`) and may also arrive nested (`{"completion": {"max_lines": 4}}`). A value
of the wrong type is reported and ignored, never fatal.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import platformdirs

from hintwise.models.files.bundled import DEFAULT_MODEL

# A gate threshold: "auto" (the gate model's own) or a probability from 0 to 1.
Threshold = str | float


@dataclass(frozen=True)
class ModelSettings:
    name: str = DEFAULT_MODEL
    """Bundled model: gemma3-270m or smollm2-135m. Ignored when `path` is set."""
    path: str = ""
    """Any GGUF file; overrides `name`. Env: HINTWISE_MODEL (a path or a bundled name)."""
    context_length: int = 4096
    """llama.cpp context size in tokens (prompt window + suggestion must fit)."""
    threads: int = 0
    """CPU threads for llama.cpp; 0 = all cores but one (at most 8)."""
    prompt_threads: int = 0
    """Threads for a long prompt; 0 = every core while the rest of the machine is idle."""
    gpu_layers: int = 0
    """Layers to offload to a GPU, if llama.cpp was built with one."""
    adapter: str = ""
    """A LoRA adapter (GGUF) for completions. Empty: the one `hintwise tune` installed for this
    model, if any; `none`: no adapter; else a path to a GGUF LoRA file."""


@dataclass(frozen=True)
class CompletionSettings:
    enabled: bool = True
    """Offer completions at all."""
    prefix_tokens: int = 1024
    """Model tokens of code before the cursor in the prompt (cut at a line start)."""
    suffix_tokens: int = 128
    """Model tokens of code after the cursor, for models with FIM tokens."""
    project_tokens: int = 0
    """Model tokens of the rest of the project put before the file: recently viewed chunks of
    other files and the definitions of names imported from them (0 = off; off by default: no
    measured gain with the bundled model, see docs/performance.md; try 512 with a larger one)."""
    max_tokens: int = 64
    """Most tokens generated for one suggestion."""
    max_lines: int = 8
    """Most lines in a multi-line suggestion."""
    time_limit_ms: int = 1000
    """Most time spent generating one suggestion (the prompt evaluation is not counted)."""
    multiline: Literal["auto", "always", "never"] = "auto"
    """auto: several lines on an empty line that opens or ends a block, one line elsewhere."""
    min_chars: int = 3
    """Suggestions with fewer non-blank characters are dropped."""
    max_chars_right: int = 8
    """Automatic requests are skipped with more non-blank characters right of the cursor."""
    token_healing: bool = True
    """Re-create the token the cursor splits (after `ret`, after auto-indent) instead of
    continuing from a broken token."""
    prewarm: bool = True
    """Evaluate the prompt when a document is opened or edited after a pause."""
    prewarm_pause_ms: int = 1000
    """Pause in typing after which an edit triggers a prompt pre-warm."""
    candidates: int = 4
    """Single-line suggestions from a model without FIM tokens: candidates generated (the top
    first tokens, each continued) and ranked by how well the code after the cursor follows
    each. 1: the greedy continuation only. Invoked requests search at least 3 (alternatives)."""
    candidate_min_p: float = 0.2
    """Runner-up first tokens less likely than this are not continued (0: all `candidates`):
    a sure model costs one candidate (see docs/performance.md for the trade-off)."""


@dataclass(frozen=True)
class TelemetrySettings:
    enabled: bool = True
    """Keep the local feedback store (never sent anywhere)."""
    store_code: Literal["full", "hashed", "none"] = "full"
    """How code (prompts, prefixes, suggestions, file paths) is stored: as is, as sha256, or not.
    Secrets are redacted before anything is written, whatever this says."""
    reject_after_s: int = 10
    """A suggestion neither accepted nor otherwise answered within this many seconds is rejected."""
    retention_days: int = 365
    """Suggestions older than this are deleted at startup (0 = keep)."""
    retention_rows: int = 50000
    """At most this many suggestions are kept (0 = no limit)."""


@dataclass(frozen=True)
class GateSettings:
    enabled: bool = True
    """Let the acceptance gate skip model calls and hide suggestions unlikely to be accepted.
    Requests the user invokes (a completion shortcut) are never skipped or hidden."""
    pre_threshold: Threshold = "auto"
    """Below this pre-generation score the model is not called. `auto`: the installed gate's
    own threshold (keeps 95% of accepted suggestions on its validation data); or 0–1."""
    post_threshold: Threshold = "auto"
    """Below this score a generated suggestion is not shown. `auto` or 0–1, as above."""
    model: str = ""
    """A gate model directory (from `hintwise gate train --output`). Default: your own trained
    gate in `<data_dir>/gate` once there is one, else the shipped default."""
    min_labels: int = 200
    """Answered suggestions needed before `hintwise gate train` trains a personal gate."""
    retrain_every: int = 200
    """Retrain in the background after this many new answered suggestions (0 = never); the new
    gate is installed only if it beats the current one on your most recent suggestions."""


@dataclass(frozen=True)
class EngineSettings:
    kind: Literal["local", "http"] = "local"
    """local: the GGUF in `model.*` runs in-process. http: an OpenAI-compatible server at `url`
    (llama-server, python -m llama_cpp.server, vLLM, Ollama) does the work."""
    url: str = ""
    """The server's address, e.g. http://127.0.0.1:8080 (with or without /v1)."""
    model: str = ""
    """The model name to ask the server for; empty = the first one it lists."""
    server: Literal["auto", "llama-server", "llama-cpp-python", "vllm", "ollama", "openai"] = "auto"
    """What kind of server it is; auto = ask it (/v1/models, /props, /api/version)."""
    api_key_env: str = "HINTWISE_API_KEY"
    """Environment variable holding the API key (sent as a Bearer token, never logged)."""
    api_key_file: str = ""
    """A file holding the API key instead (its first line)."""
    verify_tls: bool = True
    """Check the server's TLS certificate (https URLs)."""
    ca_file: str = ""
    """A CA bundle for a server with a private certificate authority."""
    connect_timeout_ms: int = 3000
    """Longest wait for a connection."""
    timeout_ms: int = 10000
    """Longest wait for the first token and between tokens before the server counts as slow."""
    retries: int = 2
    """More tries after a refused connection, HTTP 429 or 5xx, with growing pauses
    (completions try once more at most: the user has moved on)."""
    logprobs: Literal["auto", "on", "off"] = "auto"
    """Ask for per-token log-probabilities (the acceptance gate uses them). auto: on, except
    for llama-cpp-python, whose server computes them in Python (18x slower with Gemma)."""


@dataclass(frozen=True)
class FeatureEngineSettings:
    kind: Literal["", "local", "http"] = ""
    """Empty: the same engine as completions; local or http: its own engine."""
    model: str = ""
    """local: a bundled model name or a GGUF path; http: the server's model name."""
    url: str = ""
    """http: the server's address; empty = engine.url (key, TLS and timeouts come from engine.*)."""


@dataclass(frozen=True)
class ReviewSettings:
    on_save: bool = True
    """Review the functions changed since the last review each time a file is saved."""
    max_per_function: int = 2
    """Most comments kept for one function."""
    max_per_file: int = 10
    """Most comments kept for one file (the most severe first)."""
    fail_severity: Literal["error", "warning", "info", "never"] = "warning"
    """`hintwise review` exits with status 1 when a comment at or above this severity exists."""
    static_checks: bool = True
    """Add the real defects ruff finds in Python files (undefined names, unused variables,
    `== None`, mutated mutable defaults, self-assignment...) to the review, except on lines
    another server already flagged."""


@dataclass(frozen=True)
class ExplainSettings:
    run: bool = False
    """Run the failing test or script (sandboxed) to record local variables for explanations.
    Off by default: it executes workspace code. Set it per workspace."""
    run_timeout_s: int = 10
    """Most seconds a traced run may take before it is killed."""
    run_memory_mb: int = 512
    """Address-space limit of a traced run."""
    repair: bool = True
    """With `run`: re-run the failing target with one-line changes of the suspect function (in
    memory, sandboxed) and report a change that makes it pass as a verified fix."""
    repair_max_runs: int = 200
    """Most candidate changes re-run for one explanation."""
    repair_budget_s: float = 20.0
    """Most seconds spent re-running candidate changes for one explanation."""
    max_tokens: int = 256
    """Most tokens in one explanation."""


@dataclass(frozen=True)
class Settings:
    model: ModelSettings = field(default_factory=ModelSettings)
    completion: CompletionSettings = field(default_factory=CompletionSettings)
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)
    gate: GateSettings = field(default_factory=GateSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    explain_engine: FeatureEngineSettings = field(default_factory=FeatureEngineSettings)
    review_engine: FeatureEngineSettings = field(default_factory=FeatureEngineSettings)
    review: ReviewSettings = field(default_factory=ReviewSettings)
    explain: ExplainSettings = field(default_factory=ExplainSettings)
    data_dir: str = ""
    """Where hintwise keeps the assembled model and (later) its feedback store.
    Default: the platform's user data dir. Env: HINTWISE_DATA_DIR."""

    @property
    def data_path(self) -> Path:
        return (
            Path(self.data_dir) if self.data_dir else Path(platformdirs.user_data_dir("hintwise"))
        )

    @property
    def models_path(self) -> Path:
        return self.data_path / "models"

    def model_spec(self) -> str:
        """The path, or bundled name, of the model these settings select (for completions: a
        remote engine is `URL#MODEL`)."""
        if self.engine.kind == "http":
            return (
                f"{self.engine.url}#{self.engine.model}" if self.engine.model else self.engine.url
            )
        return self.model.path or self.model.name

    def model_label(self) -> str:
        """A short name for the model: the bundled name, the GGUF file's name, or the remote
        model's name (else the server's address)."""
        if self.engine.kind == "http":
            return self.engine.model or self.engine.url
        return Path(self.model.path).name if self.model.path else self.model.name


def flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    """{"completion": {"max_lines": 4}} and {"completion.max_lines": 4} both → dotted keys."""
    flat: dict[str, Any] = {}
    if not isinstance(values, dict):
        return flat
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _boolean(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    raise ValueError(f"{key} must be true or false, not {value!r}")


# The range of each numeric setting, by field name (the same name means the same thing in every
# section); others: any whole number a JSON client can send safely. A value outside is refused with
# a message, like a value of the wrong type: 1e999 lines must not reach llama.cpp or a timer.
_RANGES: dict[str, tuple[float, float]] = {
    "context_length": (128, 1 << 20),
    "threads": (0, 1024),
    "prompt_threads": (0, 1024),
    "gpu_layers": (0, 100_000),
    "prefix_tokens": (0, 1 << 20),
    "suffix_tokens": (0, 1 << 20),
    "project_tokens": (0, 1 << 20),
    "max_tokens": (1, 32_768),
    "max_lines": (1, 1_000),
    "time_limit_ms": (1, 600_000),
    "min_chars": (0, 10_000),
    "max_chars_right": (0, 1_000_000),
    "prewarm_pause_ms": (0, 3_600_000),
    "candidates": (1, 16),
    "candidate_min_p": (0, 1),
    "reject_after_s": (1, 86_400),
    "connect_timeout_ms": (1, 3_600_000),
    "timeout_ms": (1, 3_600_000),
    "retries": (0, 100),
    "run_timeout_s": (1, 3_600),
    "run_memory_mb": (16, 1 << 24),
    "repair_max_runs": (1, 100_000),
    "repair_budget_s": (0.1, 3_600),
}
_WHOLE = (0, 2**31 - 1)


def _in_range(number: float, key: str, value: Any) -> None:
    low, high = _RANGES.get(key.rpartition(".")[2], _WHOLE)
    if not low <= number <= high:
        raise ValueError(f"{key} must be from {low:g} to {high:g}, not {value!r}")


def _whole_number(value: Any, key: str) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"{key} must be a whole number, not {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{key} must be a whole number, not {value!r}") from None
    _in_range(number, key, value)
    return number


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{key} must be a number, not {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{key} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{key} must be a finite number, not {value!r}")
    _in_range(number, key, value)
    return number


def _threshold(value: Any, key: str) -> Threshold:
    if value == "auto":
        return value
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{key} must be auto or a number from 0 to 1, not {value!r}") from None
    if isinstance(value, bool) or not 0 <= number <= 1:
        raise ValueError(f"{key} must be auto or a number from 0 to 1, not {value!r}")
    return number


def _text(value: Any, key: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{key} must be text, not {value!r}")
    return value


_COERCE = {"bool": _boolean, "int": _whole_number, "float": _number, "Threshold": _threshold}


def _coerce(value: Any, kind: Any, key: str) -> Any:
    """`value` as the field's type (the dataclass annotation, a string under
    `from __future__ import annotations`), or ValueError saying what was expected."""
    kind_name = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    if kind_name in _COERCE:
        return _COERCE[kind_name](value, key)
    if "Literal" in str(kind):
        allowed = [a.strip(" '\"") for a in str(kind).split("[", 1)[1].rstrip("]").split(",")]
        if value not in allowed:
            raise ValueError(f"{key} must be one of {', '.join(allowed)}, not {value!r}")
        return value
    return _text(value, key)


def apply(settings: Settings, values: dict[str, Any]) -> tuple[Settings, list[str]]:
    """New settings with `values` (dotted or nested) applied, and a message per rejected value."""
    problems: list[str] = []
    changes: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for key, value in flatten(values).items():
        section, _, name = key.partition(".")
        current = getattr(settings, section, None) if section in _SECTIONS else None
        try:
            if not name and section in _TOP_LEVEL:
                top[section] = _coerce(value, _TOP_LEVEL[section], key)
            elif current is not None and name in _fields(current):
                changes.setdefault(section, {})[name] = _coerce(value, _fields(current)[name], key)
            else:
                problems.append(f"unknown setting {key!r}")
        except (ValueError, TypeError, OverflowError) as error:
            problems.append(str(error))
    replaced = {
        section: dataclasses.replace(getattr(settings, section), **values)
        for section, values in changes.items()
    }
    return dataclasses.replace(settings, **top, **replaced), problems


def _fields(section: Any) -> dict[str, Any]:
    return {f.name: f.type for f in dataclasses.fields(section)}


_SECTIONS = (
    "model",
    "completion",
    "telemetry",
    "gate",
    "engine",
    "explain_engine",
    "review_engine",
    "review",
    "explain",
)
_TOP_LEVEL = {"data_dir": str}


def from_environment(settings: Settings | None = None) -> Settings:
    """Defaults plus HINTWISE_MODEL and HINTWISE_DATA_DIR."""
    settings = settings or Settings()
    values: dict[str, Any] = {}
    model = os.environ.get("HINTWISE_MODEL", "").strip()
    if model:
        from hintwise.models.files.bundled import is_bundled_name

        values["model.name" if is_bundled_name(model) else "model.path"] = model
    data_dir = os.environ.get("HINTWISE_DATA_DIR", "").strip()
    if data_dir:
        values["data_dir"] = data_dir
    return apply(settings, values)[0]


def defaults() -> dict[str, Any]:
    """Every setting's dotted key and default value (the README's table is checked against it)."""
    result: dict[str, Any] = {}
    defaults_ = Settings()
    for section in _SECTIONS:
        for name, value in dataclasses.asdict(getattr(defaults_, section)).items():
            result[f"{section}.{name}"] = value
    for name in _TOP_LEVEL:
        result[name] = getattr(defaults_, name)
    return result
