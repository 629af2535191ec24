"""Without the `tune` extra, training says how to install it instead of an ImportError."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from hintwise.models.tune.examples import Example
from hintwise.models.tune.runtime import _MODULES, TuneUnavailable, require
from hintwise.models.tune.train import TrainConfig, train


@pytest.mark.parametrize("missing", ["torch", "transformers", "peft"])
def test_a_missing_module_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, missing: str, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # `import missing` raises ImportError
    # Without the extra (the README's test command) an earlier module is the first one missing.
    first = next(
        name for name in _MODULES if importlib.util.find_spec(name) is None or name == missing
    )
    with pytest.raises(TuneUnavailable, match=first) as caught:
        require()
    assert 'pip install "hintwise[tune]"' in str(caught.value)
    with pytest.raises(TuneUnavailable):
        train(tmp_path / "base.gguf", [Example((1, 2), "x")], tmp_path / "work", TrainConfig())
