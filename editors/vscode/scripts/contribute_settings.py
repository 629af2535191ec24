"""Write every server setting into the extension's package.json (contributes.configuration).

The server's settings (lsp_server.config) are the source: key, type, default and allowed values;
the description is the README's Configuration row. Run it after adding a setting:

    .venv/bin/python editors/vscode/scripts/contribute_settings.py          # rewrite
    .venv/bin/python editors/vscode/scripts/contribute_settings.py --check  # exit 1 if stale

tests/test_vscode_package.py runs the check.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "editors" / "vscode" / "package.json"
README = ROOT / "README.md"
sys.path.insert(0, str(ROOT))

from hintwise.lsp_server import config  # noqa: E402

CLIENT_SETTINGS: dict[str, dict[str, Any]] = {
    "hintwise.server.path": {
        "type": "string",
        "default": "",
        "scope": "machine-overridable",
        "markdownDescription": "The `hintwise` executable. Empty: a project venv's "
        "(`.venv`, `venv`, `env`, `$VIRTUAL_ENV`), else `hintwise` on `PATH`.",
    },
    "hintwise.server.pythonPath": {
        "type": "string",
        "default": "",
        "scope": "machine-overridable",
        "markdownDescription": "A Python interpreter with hintwise installed; the server runs as "
        "`python -m hintwise serve`. Used when `hintwise.server.path` is empty.",
    },
    "hintwise.server.args": {
        "type": "array",
        "items": {"type": "string"},
        "default": [],
        "markdownDescription": "Extra arguments for `hintwise serve`, e.g. "
        '`["--log-file", "/tmp/hintwise.log"]`.',
    },
}


def readme_descriptions() -> dict[str, str]:
    """`key` → description from the README's Configuration table."""
    rows = re.findall(r"^\| `([\w.]+)` \| [^|]* \| (.+) \|$", README.read_text(), re.MULTILINE)
    return dict(rows)


def field_types() -> dict[str, str]:
    settings = config.Settings()
    types: dict[str, str] = {}
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if dataclasses.is_dataclass(value):
            for inner in dataclasses.fields(value):
                types[f"{field.name}.{inner.name}"] = str(inner.type)
        else:
            types[field.name] = str(field.type)
    return types


def schema(key: str, default: Any, kind: str, description: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"default": default}
    if "Literal" in kind:
        entry["type"] = "string"
        entry["enum"] = re.findall(r"'([^']*)'", kind)
    elif kind == "bool" or isinstance(default, bool):
        entry["type"] = "boolean"
    elif kind == "int" or isinstance(default, int):
        entry["type"] = "integer"
        entry["minimum"] = 0
    elif kind == "float" or isinstance(default, float):
        entry["type"] = "number"
    else:
        entry["type"] = "string"
    if key in ("model.path", "data_dir"):
        entry["scope"] = "machine-overridable"
    entry["markdownDescription"] = description or f"Server setting `{key}`."
    return entry


def contributed() -> dict[str, Any]:
    descriptions = readme_descriptions()
    kinds = field_types()
    properties = dict(CLIENT_SETTINGS)
    for key, default in config.defaults().items():
        properties[f"hintwise.{key}"] = schema(
            key, default, kinds.get(key, ""), descriptions.get(key, "")
        )
    return {"title": "hintwise", "properties": properties}


def main() -> int:
    package = json.loads(PACKAGE.read_text())
    wanted = contributed()
    if "--check" in sys.argv:
        if package.get("contributes", {}).get("configuration") != wanted:
            print(f"{PACKAGE} is stale: run {Path(__file__).relative_to(ROOT)}", file=sys.stderr)
            return 1
        return 0
    package.setdefault("contributes", {})["configuration"] = wanted
    PACKAGE.write_text(json.dumps(package, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
