"""The repository's text cut into training windows (`hintwise tune --objective text`)."""

from __future__ import annotations

from pathlib import Path

from hintwise.lsp_server.tune.replay_files import stdlib_root
from hintwise.lsp_server.tune.text_windows import (
    PROMPT_CHARS,
    TARGET_CHARS,
    file_windows,
    general_files,
    mixed,
    windows,
)


def _module(n: int) -> str:
    return "".join(
        f"def handler_{i}(event):\n    return event.get({i!r}, None)\n\n\n" for i in range(n)
    )


def test_targets_tile_the_file_at_line_boundaries_after_the_code_before_them(
    tmp_path: Path,
) -> None:
    text = _module(120)
    (tmp_path / "handlers.py").write_text(text)
    found = file_windows(tmp_path / "handlers.py", tmp_path)
    assert len(found) > 5
    # (a last window of blank lines alone is no example)
    assert "".join(window.target for window in found).rstrip() == text.rstrip()
    position = 0
    for window in found:
        assert window.target.endswith("\n") and len(window.target) < TARGET_CHARS + 80
        assert text[:position].endswith(window.before)
        assert len(window.before) <= PROMPT_CHARS and (position == 0 or window.before)
        assert window.before == "" or text[position - len(window.before) - 1] == "\n"
        line = text[:position].count("\n") + 1
        assert window.origin == f"text:handlers.py:{line}"
        position += len(window.target)


def test_windows_are_taken_through_every_file_and_unreadable_files_give_none(
    tmp_path: Path,
) -> None:
    (tmp_path / "pkg").mkdir()
    for name in ("a.py", "b.py", "c.py"):
        (tmp_path / "pkg" / name).write_text(_module(30))
    (tmp_path / "pkg" / "blob.py").write_bytes(b"\xff\xfe\x00binary")
    (tmp_path / "pkg" / "minified.py").write_text("x = [" + "1, " * 400 + "]\n")
    files = sorted((tmp_path / "pkg").glob("*.py"))
    assert file_windows(tmp_path / "pkg" / "blob.py", tmp_path) == []
    assert file_windows(tmp_path / "pkg" / "minified.py", tmp_path) == []
    every = windows(files, tmp_path, 1000)
    few = windows(files, tmp_path, 6)
    assert len(few) == 6 and set(few) <= set(every)
    assert {w.origin.split(":")[1] for w in few} == {"pkg/a.py", "pkg/b.py", "pkg/c.py"}


def test_general_code_is_the_standard_librarys_packages_and_none_of_the_regression_set() -> None:
    from hintwise.lsp_server.tune.replay import stdlib_cases

    root = stdlib_root()
    found = general_files(root)
    assert len(found) > 100
    parts = {part for path in found for part in path.relative_to(root).parts}
    assert {"asyncio", "email", "json"} <= parts
    assert not parts & {"test", "encodings", "site-packages", "idlelib", "pydoc_data"}
    # the default regression set replays top-level modules; these are all in packages
    regression = {case.origin.split(":")[1] for case in stdlib_cases(40)}
    assert regression and not regression & {p.relative_to(root).as_posix() for p in found}


def test_a_share_of_the_windows_is_general_code_and_a_small_repository_keeps_all_its_own(
    tmp_path: Path,
) -> None:
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text(_module(300))
    files = sorted(tmp_path.glob("*.py"))
    own = windows(files, tmp_path, 1000)
    big = mixed(files, tmp_path, 20, 0.25)
    assert [w.source for w in big] == ["text"] * 15 + ["general"] * 5
    assert all(w.origin.startswith("general:") and w.target.strip() for w in big[15:])
    small = mixed(files, tmp_path, 1000, 0.2)
    assert small[: len(own)] == own and len(small) == len(own) + round(len(own) / 4)
    assert mixed(files, tmp_path, 1000, 0.0) == own
