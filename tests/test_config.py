"""Settings: sources, coercion, and bad values reported rather than fatal."""

from __future__ import annotations

import re
from pathlib import Path

from hintwise.lsp_server import config


def test_nested_and_dotted_values_are_the_same():
    a, _ = config.apply(config.Settings(), {"completion": {"max_lines": 4}})
    b, _ = config.apply(config.Settings(), {"completion.max_lines": "4"})
    assert a == b
    assert a.completion.max_lines == 4


def test_bad_values_are_reported_and_ignored():
    settings, problems = config.apply(
        config.Settings(),
        {
            "completion.multiline": "sometimes",
            "completion.max_tokens": "many",
            "completion.enabled": "nope",
            "model.threads": -2,
            "colour": "blue",
        },
    )
    assert settings == config.Settings()
    assert len(problems) == 5
    assert any("multiline" in p and "auto, always, never" in p for p in problems)
    assert any("unknown setting 'colour'" in p for p in problems)


def test_every_numeric_setting_refuses_out_of_range_values_with_a_message():
    """Issue 15: `{"completion": {"max_lines": 1e999}}` raised OverflowError out of `apply`, so
    `initialize` failed and the model never started, silently."""
    numeric = {
        key: value
        for key, value in config.defaults().items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    assert len(numeric) > 20
    for bad in (float("inf"), float("-inf"), float("nan"), 1e999, -1, 2**40, "1e999", [], 0.5):
        for key in numeric:
            if bad == 0.5 and isinstance(numeric[key], float):
                continue  # a fraction is a fine value for a float setting
            values = {key: bad, "completion.enabled": False}
            settings, problems = config.apply(config.Settings(), values)
            assert settings.completion.enabled is False, (key, bad)  # the rest is applied
            assert len(problems) == 1 and key in problems[0], (key, bad, problems)


def test_a_float_setting_takes_a_number():
    settings, problems = config.apply(config.Settings(), {"completion.candidate_min_p": 0.05})
    assert problems == [] and settings.completion.candidate_min_p == 0.05
    settings, problems = config.apply(config.Settings(), {"completion.candidate_min_p": 1.5})
    assert len(problems) == 1 and settings.completion.candidate_min_p == 0.2


def test_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HINTWISE_MODEL", str(tmp_path / "m.gguf"))
    monkeypatch.setenv("HINTWISE_DATA_DIR", str(tmp_path))
    settings = config.from_environment()
    assert settings.model.path == str(tmp_path / "m.gguf")
    assert settings.data_path == tmp_path
    monkeypatch.setenv("HINTWISE_MODEL", "smollm2-135m")
    assert config.from_environment().model_spec() == "smollm2-135m"


def test_every_setting_is_documented_in_the_readme():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    documented = set(re.findall(r"`([a-z_]+(?:\.[a-z_]+)?)`", readme))
    missing = [key for key in config.defaults() if key not in documented]
    assert not missing, f"README lacks settings: {missing}"
