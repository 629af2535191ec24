"""A trained gate on disk and in memory: two LightGBM models (before and after generation) in
LightGBM's text format, with `gate.json` beside them (feature names, thresholds, provenance).

Loading checks everything a server would otherwise trip over later (files present, parseable,
features matching this version of hintwise), so a bad file is refused with a message at load time
and the caller falls back to the shipped default.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import lightgbm as lgb
import numpy as np

from hintwise.models.errors import GateModelError
from hintwise.models.gate.features import FEATURE_VERSION, STAGES

DEFAULT_DIR = Path(__file__).resolve().parent / "default"
META_FILE = "gate.json"
STAGE_FILES = {"pre": "pre.txt", "post": "post.txt"}


@dataclass
class StageModel:
    booster: lgb.Booster
    names: tuple[str, ...]
    threshold: float  # recommended: keeps 95% of accepted suggestions on validation data

    def score(self, vector: list[float]) -> float:
        """Probability of acceptance for one feature vector (one thread: no OpenMP wake-up,
        whose spin made single predictions take up to 12 ms at p99)."""
        row = np.asarray([vector], dtype=np.float64)
        return float(self.booster.predict(row, num_threads=1)[0])

    def scores(self, rows: np.ndarray) -> np.ndarray:
        scores = self.booster.predict(np.asarray(rows, dtype=np.float64), num_threads=1)
        return cast(np.ndarray, scores)  # dense input: LightGBM answers with an array


@dataclass
class GateModel:
    """Both stages and what is known about them."""

    directory: Path
    pre: StageModel
    post: StageModel
    meta: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.meta.get("label") or self.directory.name

    @property
    def is_default(self) -> bool:
        return self.directory.resolve() == DEFAULT_DIR

    def stage(self, name: str) -> StageModel:
        return self.pre if name == "pre" else self.post


def _threshold(meta: dict, stage: str) -> float:
    value = meta.get("thresholds", {}).get(stage)
    if not isinstance(value, int | float) or math.isnan(value) or not 0 <= value <= 1:
        raise GateModelError(f"{META_FILE}: thresholds.{stage} must be a number from 0 to 1")
    return float(value)


def load(directory: Path) -> GateModel:
    """A gate from `directory`; GateModelError says what is wrong with it."""
    directory = Path(directory)
    meta_path = directory / META_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GateModelError(f"{meta_path} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise GateModelError(f"{meta_path} is not readable JSON ({error})") from None
    if not isinstance(meta, dict):
        raise GateModelError(f"{meta_path} must hold a JSON object")
    if meta.get("feature_version") != FEATURE_VERSION:
        raise GateModelError(
            f"{meta_path}: trained on feature version {meta.get('feature_version')!r}, this "
            f"hintwise computes version {FEATURE_VERSION}; retrain it (hintwise gate train)"
        )
    stages = {}
    for stage, file_name in STAGE_FILES.items():
        path = directory / file_name
        if not path.is_file():
            raise GateModelError(f"{path} is missing")
        try:
            booster = lgb.Booster(model_file=str(path))
        except lgb.basic.LightGBMError as error:
            raise GateModelError(f"{path} is not a LightGBM model ({error})") from None
        names = STAGES[stage]
        if booster.num_feature() != len(names):
            raise GateModelError(
                f"{path} expects {booster.num_feature()} features, hintwise computes {len(names)}"
            )
        stages[stage] = StageModel(booster, names, _threshold(meta, stage))
    return GateModel(directory, stages["pre"], stages["post"], meta)


def save(model_dir: Path, boosters: dict[str, lgb.Booster], meta: dict) -> None:
    """Write both stages and gate.json; the files appear whole or not at all (rename)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    for stage, file_name in STAGE_FILES.items():
        partial = model_dir / (file_name + ".part")
        boosters[stage].save_model(str(partial))
        partial.replace(model_dir / file_name)
    partial = model_dir / (META_FILE + ".part")
    partial.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    partial.replace(model_dir / META_FILE)
