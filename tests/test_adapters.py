"""The installed-adapter registry: install, replace, revert, and files gone or garbled."""

from __future__ import annotations

from pathlib import Path

from hintwise.models.files import adapters


def _base(tmp_path: Path, content: bytes = b"GGUF" + b"x" * 5000) -> Path:
    base = tmp_path / "model.gguf"
    base.write_bytes(content)
    return base


def _run(data: Path, base: Path, name: str) -> Path:
    run = adapters.model_dir(data, base) / "runs" / name
    run.mkdir(parents=True)
    (run / adapters.ADAPTER_FILE).write_bytes(b"lora " + name.encode())
    (run / adapters.REPORT_FILE).write_text('{"decision": "installed"}')
    return run


def test_install_then_revert_goes_back_one_adapter_at_a_time(tmp_path: Path) -> None:
    data, base = tmp_path / "data", _base(tmp_path)
    assert adapters.installed(data, base) is None
    first, second = _run(data, base, "r1"), _run(data, base, "r2")
    adapters.install(data, base, first)
    adapters.install(data, base, second)
    current = adapters.installed(data, base)
    assert current is not None and current.run_id == "r2"
    assert current.report == {"decision": "installed"}
    assert [run.run_id for run in adapters.runs(data, base)] == ["r1", "r2"]
    back = adapters.revert(data, base)
    assert back is not None and back.run_id == "r1"
    assert adapters.installed(data, base).run_id == "r1"  # type: ignore[union-attr]
    assert adapters.revert(data, base) is None
    assert adapters.installed(data, base) is None


def test_each_base_model_has_its_own_adapters(tmp_path: Path) -> None:
    data = tmp_path / "data"
    one = _base(tmp_path)
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF" + b"y" * 5000)
    adapters.install(data, one, _run(data, one, "r1"))
    assert adapters.installed(data, other) is None


def test_a_garbled_state_file_or_a_deleted_adapter_means_no_adapter(tmp_path: Path) -> None:
    data, base = tmp_path / "data", _base(tmp_path)
    run = _run(data, base, "r1")
    adapters.install(data, base, run)
    (run / adapters.ADAPTER_FILE).unlink()
    assert adapters.installed(data, base) is None
    (adapters.model_dir(data, base) / adapters.INSTALLED_FILE).write_text("[not json")
    assert adapters.installed(data, base) is None
    assert adapters.revert(data, base) is None


def test_new_run_folders_never_collide(tmp_path: Path) -> None:
    data, base = tmp_path / "data", _base(tmp_path)
    first = adapters.new_run_dir(data, base, now=0)
    first.mkdir(parents=True)
    second = adapters.new_run_dir(data, base, now=0)
    assert first != second and not second.exists()
