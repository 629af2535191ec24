"""PEFT folders written as GGUF LoRA adapters for the real bundled model, and refused with a
sentence when they were made for another model (hand-made PEFT folders: no torch needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.model, pytest.mark.tune]
pytest.importorskip("torch", reason='needs the tune extra (pip install -e ".[tune]")')
gguf = pytest.importorskip("gguf")

from safetensors.numpy import save_file  # noqa: E402

from hintwise.models.tune.gguf_lora import AdapterMismatch, import_peft  # noqa: E402

# Gemma 3 270M: hidden 640, 4 query heads and 1 key/value head of 256, 18 layers.
Q_PROJ = "base_model.model.model.layers.{}.self_attn.q_proj"
V_PROJ = "base_model.model.model.layers.{}.self_attn.v_proj"


def _peft(folder: Path, tensors: dict[str, np.ndarray], **config: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    settings = {"peft_type": "LORA", "r": 4, "lora_alpha": 8, **config}
    (folder / "adapter_config.json").write_text(json.dumps(settings))
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    return folder


def _pair(name: str, n_in: int, n_out: int, rank: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        f"{name}.lora_A.weight": rng.normal(size=(rank, n_in)).astype(np.float32),
        f"{name}.lora_B.weight": rng.normal(size=(n_out, rank)).astype(np.float32),
    }


def test_a_fitting_adapter_becomes_a_gguf_lora(tmp_path: Path, gemma_path: Path) -> None:
    tensors = {**_pair(Q_PROJ.format(0), 640, 1024), **_pair(V_PROJ.format(17), 640, 256)}
    out = import_peft(_peft(tmp_path / "peft", tensors), gemma_path, tmp_path / "a.gguf")
    reader = gguf.GGUFReader(out)
    assert reader.fields["general.type"].contents() == "adapter"
    assert reader.fields["adapter.type"].contents() == "lora"
    assert reader.fields["adapter.lora.alpha"].contents() == 8.0
    assert reader.fields["general.architecture"].contents() == "gemma3"
    shapes = {t.name: tuple(int(n) for n in t.shape) for t in reader.tensors}
    assert shapes == {  # ggml order: (columns, rows)
        "blk.0.attn_q.weight.lora_a": (640, 4),
        "blk.0.attn_q.weight.lora_b": (4, 1024),
        "blk.17.attn_v.weight.lora_a": (640, 4),
        "blk.17.attn_v.weight.lora_b": (4, 256),
    }
    a = next(t for t in reader.tensors if t.name == "blk.0.attn_q.weight.lora_a")
    expected = tensors[f"{Q_PROJ.format(0)}.lora_A.weight"]
    assert np.allclose(np.asarray(a.data, dtype=np.float32), expected, atol=1e-2)


def test_rslora_alpha_is_rescaled_for_llama_cpp(tmp_path: Path, gemma_path: Path) -> None:
    peft = _peft(tmp_path / "peft", _pair(Q_PROJ.format(0), 640, 1024), use_rslora=True)
    out = import_peft(peft, gemma_path, tmp_path / "a.gguf")
    assert gguf.GGUFReader(out).fields["adapter.lora.alpha"].contents() == pytest.approx(16.0)


@pytest.mark.parametrize(
    ("tensors", "config", "said"),
    [
        (_pair(Q_PROJ.format(0), 2048, 1024), {}, "trained for another model"),
        (_pair(Q_PROJ.format(0), 640, 4096), {}, "trained for another model"),
        (_pair(Q_PROJ.format(30), 640, 1024), {}, "18 layers"),
        (_pair("base_model.model.model.layers.0.self_attn.qkv", 640, 1024), {}, "another model"),
        (_pair(Q_PROJ.format(0), 640, 1024), {"use_dora": True}, "DoRA"),
        (_pair(Q_PROJ.format(0), 640, 1024), {"modules_to_save": ["lm_head"]}, "whole modules"),
        ({"model.norm.weight": np.ones(640, np.float32)}, {}, "not a lora_A or lora_B"),
    ],
)
def test_an_adapter_for_another_model_is_refused_with_the_reason(
    tmp_path: Path, gemma_path: Path, tensors: dict, config: dict, said: str
) -> None:
    out = tmp_path / "a.gguf"
    with pytest.raises(AdapterMismatch, match=said):
        import_peft(_peft(tmp_path / "peft", tensors, **config), gemma_path, out)
    assert not out.exists()


def test_a_folder_without_the_peft_files_is_refused(tmp_path: Path, gemma_path: Path) -> None:
    with pytest.raises(AdapterMismatch, match=r"adapter_config\.json"):
        import_peft(tmp_path, gemma_path, tmp_path / "a.gguf")


def test_a_bfloat16_adapter_converts(tmp_path: Path, gemma_path: Path) -> None:
    import torch
    from safetensors.torch import save_file as save_torch

    tensors = _pair(Q_PROJ.format(0), 640, 1024)
    peft = _peft(tmp_path / "peft", tensors)
    save_torch(
        {name: torch.from_numpy(value).bfloat16() for name, value in tensors.items()},
        str(peft / "adapter_model.safetensors"),
    )
    reader = gguf.GGUFReader(import_peft(peft, gemma_path, tmp_path / "a.gguf"))
    b = next(t for t in reader.tensors if t.name == "blk.0.attn_q.weight.lora_b")
    expected = tensors[f"{Q_PROJ.format(0)}.lora_B.weight"]
    assert np.allclose(np.asarray(b.data, dtype=np.float32), expected, atol=0.05)


def test_hintwise_tune_import_installs_a_fitting_adapter_and_refuses_another(
    tmp_path: Path, gemma_path: Path
) -> None:
    """Through the real command: the converted adapter is installed (status shows it, revert
    undoes it); a folder for another model is refused with the reason and nothing changes."""
    from click.testing import CliRunner

    from hintwise.lsp_server.cli import main

    env = {"HINTWISE_DATA_DIR": str(tmp_path / "data"), "HINTWISE_MODEL": str(gemma_path)}

    def tune(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, ["tune", *args], env=env)
        return result.exit_code, result.output

    other = _peft(tmp_path / "other", _pair(Q_PROJ.format(0), 2048, 2048))
    code, out = tune("--import", str(other))
    assert code == 1 and "cannot import" in out
    assert json.loads(tune("--status", "--json")[1])["installed"] is None
    fitting = _peft(tmp_path / "peft", _pair(Q_PROJ.format(0), 640, 1024))
    code, out = tune("--import", str(fitting), "--json")
    assert code == 0, out
    installed = json.loads(out)["installed"]
    assert installed["report"]["imported_from"] == str(fitting)
    assert gguf.GGUFReader(installed["path"]).fields["adapter.type"].contents() == "lora"
    assert json.loads(tune("--status", "--json")[1])["installed"]["run"] == installed["run"]
    assert tune("--revert")[0] == 0
    assert json.loads(tune("--status", "--json")[1])["installed"] is None
