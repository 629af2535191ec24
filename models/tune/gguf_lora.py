"""A PEFT LoRA folder written as the GGUF adapter llama.cpp loads (`Llama(lora_path=...)`).

Written with the `gguf` package directly rather than by llama.cpp's `convert_lora_to_gguf.py`:
that script needs the base model's Hugging Face config folder, which a GGUF-only install does
not have, and is found only inside a source distribution. What llama.cpp expects is small
(llama-adapter.cpp): `general.type = adapter`, `adapter.type = lora`, `adapter.lora.alpha`,
the base's `general.architecture`, and per adapted weight `<gguf name>.lora_a` (rank × in)
and `<gguf name>.lora_b` (out × rank), with scale alpha / rank as in PEFT.

Every tensor is checked against the base GGUF (name, in and out sizes) before anything is
written, so an adapter trained for another model fails here with a sentence, not in llama.cpp
at load time.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"

# transformers un-permutes the q/k rows of these architectures when it loads their GGUF
# (convert_hf_to_gguf permutes them for llama.cpp's rope; Mistral is "llama" in GGUF), so an
# adapter trained on the transformers model must permute the rows of lora_b the same way.
_PERMUTED_QK = {"llama"}


class AdapterMismatch(ValueError):
    """The PEFT adapter does not fit the base GGUF (architecture, layers, shapes, kind)."""


@dataclass(frozen=True)
class _Base:
    """What of the base GGUF the adapter must match."""

    architecture: str
    block_count: int
    head_count: int
    head_count_kv: int
    shapes: dict[str, tuple[int, int]]  # weight name -> (in, out), ggml order


def _field_value(reader: Any, key: str) -> Any:
    found = reader.fields.get(key)
    if found is None:
        return None
    return found.contents()


def _read_base(base_gguf: Path) -> _Base:
    from gguf import GGUFReader

    reader = GGUFReader(base_gguf)
    arch = str(_field_value(reader, "general.architecture"))
    shapes = {
        tensor.name: (int(tensor.shape[0]), int(tensor.shape[1]))
        for tensor in reader.tensors
        if len(tensor.shape) == 2
    }
    heads = _field_value(reader, f"{arch}.attention.head_count") or 0
    heads_kv = _field_value(reader, f"{arch}.attention.head_count_kv") or heads
    return _Base(
        architecture=arch,
        block_count=int(_field_value(reader, f"{arch}.block_count") or 0),
        head_count=int(heads),
        head_count_kv=int(heads_kv),
        shapes=shapes,
    )


def _read_peft(peft_dir: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    config_path, weights_path = peft_dir / CONFIG_FILE, peft_dir / WEIGHTS_FILE
    for needed in (config_path, weights_path):
        if not needed.is_file():
            raise AdapterMismatch(
                f"{peft_dir} is not a PEFT LoRA folder: {needed.name} is missing "
                f"(expected {CONFIG_FILE} and {WEIGHTS_FILE}, as `save_pretrained` writes them)"
            )
    config = json.loads(config_path.read_text(encoding="utf-8"))
    from safetensors import safe_open

    # Through torch: adapters trained elsewhere are often bfloat16, which numpy cannot hold.
    weights: dict[str, np.ndarray] = {}
    with safe_open(str(weights_path), framework="pt") as handle:
        for name in handle.keys():  # noqa: SIM118 (safe_open is not iterable)
            weights[name] = handle.get_tensor(name).float().numpy()
    return config, weights


def _check_config(config: dict[str, Any]) -> None:
    kind = config.get("peft_type", "LORA")
    if kind != "LORA":
        raise AdapterMismatch(f"a {kind} adapter: only LoRA adapters can run in llama.cpp")
    if config.get("use_dora"):
        raise AdapterMismatch("a DoRA adapter: llama.cpp applies plain LoRA only")
    if config.get("modules_to_save"):
        raise AdapterMismatch(
            f"the adapter also trains whole modules ({config['modules_to_save']}): "
            "llama.cpp applies only the LoRA matrices"
        )


def _alpha(config: dict[str, Any], rank: int) -> float:
    """llama.cpp scales by alpha / rank; rsLoRA scales by alpha / sqrt(rank)."""
    alpha = float(config.get("lora_alpha", rank))
    return alpha * math.sqrt(rank) if config.get("use_rslora") else alpha


def _pairs(weights: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """{transformers module name: {"A": lora_A, "B": lora_B}}."""
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for name, value in weights.items():
        for part in ("A", "B"):
            marker = f".lora_{part}.weight"
            if name.endswith(marker):
                module = name[: -len(marker)].removeprefix("base_model.model.")
                pairs.setdefault(module, {})[part] = value
                break
        else:
            raise AdapterMismatch(f"unexpected tensor {name!r}: not a lora_A or lora_B matrix")
    for module, pair in pairs.items():
        if len(pair) != 2:
            raise AdapterMismatch(f"{module} has only lora_{next(iter(pair))}")
    return pairs


def _gguf_name(module: str, base: _Base) -> str:
    import gguf

    arch = next(
        (key for key, value in gguf.MODEL_ARCH_NAMES.items() if value == base.architecture), None
    )
    if arch is None:
        raise AdapterMismatch(
            f"the gguf package does not know the architecture {base.architecture}"
        )
    name = gguf.get_tensor_name_map(arch, base.block_count).get_name(module)
    if name is None or f"{name}.weight" not in base.shapes:
        raise AdapterMismatch(
            f"the adapter's module {module} has no weight in the {base.architecture} base model "
            f"({base.block_count} layers): it was trained for another model"
        )
    return name


def permute_rows(b: np.ndarray, heads: int) -> np.ndarray:
    """convert_hf_to_gguf's q/k permutation, applied to the output rows of lora_b."""
    out = b.shape[0]
    return b.reshape(heads, 2, out // heads // 2, *b.shape[1:]).swapaxes(1, 2).reshape(b.shape)


def _tensors(pairs: dict[str, dict[str, np.ndarray]], base: _Base) -> list[tuple[str, np.ndarray]]:
    tensors: list[tuple[str, np.ndarray]] = []
    for module, pair in sorted(pairs.items()):
        name = _gguf_name(module, base)
        a, b = pair["A"], pair["B"]
        n_in, n_out = base.shapes[f"{name}.weight"]
        if a.ndim != 2 or b.ndim != 2 or a.shape[1] != n_in or b.shape[0] != n_out:
            raise AdapterMismatch(
                f"{module}: the adapter's matrices are {tuple(a.shape)} and {tuple(b.shape)}, "
                f"the base model's weight is {n_out} × {n_in}: it was trained for another model"
            )
        if a.shape[0] != b.shape[1]:
            raise AdapterMismatch(f"{module}: lora_A and lora_B have different ranks")
        if base.architecture in _PERMUTED_QK and name.endswith(("attn_q", "attn_k")):
            heads = base.head_count if name.endswith("attn_q") else base.head_count_kv
            b = permute_rows(b, heads)
        tensors.append((f"{name}.weight.lora_a", a))
        tensors.append((f"{name}.weight.lora_b", b))
    return tensors


def write_gguf_lora(peft_dir: Path, base_gguf: Path, out: Path) -> Path:
    """Write the PEFT LoRA in `peft_dir` as a GGUF adapter for `base_gguf` at `out`.

    Raises AdapterMismatch when the adapter does not fit the base; `out` is replaced
    atomically (a half-written adapter would fail the server's next load)."""
    import gguf

    config, weights = _read_peft(peft_dir)
    _check_config(config)
    base = _read_base(base_gguf)
    pairs = _pairs(weights)
    if not pairs:
        raise AdapterMismatch(f"{peft_dir} holds no LoRA matrices")
    tensors = _tensors(pairs, base)
    rank = int(tensors[0][1].shape[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    writer = gguf.GGUFWriter(str(partial), base.architecture)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, _alpha(config, rank))
    for name, value in tensors:
        # f16 halves the file (r=8 on every linear layer of Gemma 3 270M: ~3.8 MB); llama.cpp
        # computes the LoRA product in f32 either way.
        writer.add_tensor(name, np.ascontiguousarray(value, dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(partial, out)
    return out


def import_peft(peft_dir: Path, base_gguf: Path, out: Path) -> Path:
    """An adapter trained elsewhere (a PEFT folder: adapter_config.json and
    adapter_model.safetensors) converted for `base_gguf`; AdapterMismatch says why it does not
    fit (kind, architecture, layer count or shapes)."""
    peft_dir = Path(peft_dir)
    if not peft_dir.is_dir():
        raise AdapterMismatch(f"{peft_dir} is not a folder")
    return write_gguf_lora(peft_dir, base_gguf, out)
