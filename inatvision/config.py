"""One typed configuration tree for the whole pipeline.

Two profiles share it: `production` is the iNaturalist recipe, `demo` shrinks the
same tree to run on a 2-core laptop (as big_vision's `runlocal`). Any key can be
overridden with `--set dotted.key=value`; values are parsed to the field's type.
"""
from __future__ import annotations

import difflib
import json
import os
from typing import Any, Literal, Optional

import pydantic
from pydantic import BaseModel, ConfigDict, Field

CC_LICENSES = ["CC0", "CC-BY", "CC-BY-NC", "CC-BY-SA", "CC-BY-ND", "CC-BY-NC-SA", "CC-BY-NC-ND"]


class ConfigError(ValueError):
    """A configuration key or value the user gave is wrong."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ExportConfig(_Section):
    """Inclusion criteria, splits and photo rules (docs: inat-recipe.md, section 1)."""

    min_observations: int = 100
    min_research_grade: int = 50
    max_leaf_rank: Literal["species", "genus", "family", "order"] = "genus"
    include_casual: bool = False  # casual observations as train photos only, never counted
    seed: int = 0
    eval_fraction: float = Field(0.05, ge=0, lt=1)
    test_fraction: float = Field(0.05, ge=0, lt=1)
    max_photos_per_observation: int = 5
    max_train_photos_per_leaf: int = 1000
    max_eval_photos_per_leaf: int = 100
    max_test_photos_per_leaf: int = 100
    min_eval_photos_warning: int = 10
    licenses: list[str] = Field(default_factory=lambda: list(CC_LICENSES))
    photo_size: str = "medium"
    min_photo_side: int = 32  # smaller photos are rejected
    max_photo_side: int = 800  # larger photos are downscaled before they are stored
    max_rejected_fraction: float = Field(0.2, ge=0, le=1)  # of selected photos; above it the run fails


class ValidationConfig(_Section):
    """Schema gate and drift checks (TFDV)."""

    warn_only: list[str] = Field(default_factory=list)  # anomaly types or feature names downgraded
    taxon_drift_linf: float = 0.25  # L-infinity distance on leaf taxon_id vs the previous release
    iconic_drift_linf: float = 0.25
    train_eval_skew_linf: float = 0.5
    block_on_drift: bool = False


class TrainerConfig(_Section):
    """The production Xception recipe (docs: inat-recipe.md, section 2)."""

    image_size: int = 299
    global_batch_size: int = 256
    base_learning_rate: float = 0.05  # at a global batch of 256; scaled linearly (see learning_rate)
    learning_rate: Optional[float] = None  # None: base_learning_rate * global_batch_size / 256
    lr_decay_rate: float = 0.94
    lr_decay_epochs: int = 4
    warmup_epochs: int = 0
    epochs: int = Field(80, ge=0)
    steps_per_epoch: Optional[int] = None  # None: one pass over the train split
    label_smoothing: float = 0.1
    rmsprop_rho: float = 0.9
    rmsprop_momentum: float = 0.9
    rmsprop_epsilon: float = 1.0
    precision: Literal["float32", "mixed_float16", "mixed_bfloat16"] = "mixed_float16"
    xla: bool = False
    color_jitter_fraction: float = 0.3
    shuffle_buffer: int = 10000
    warm_start: bool = False
    batchnorm_momentum: Optional[float] = None  # None: Keras' 0.99; short runs need less to settle eval statistics
    precise_batchnorm_batches: int = 0  # after training, re-estimate BatchNorm statistics on this many train batches
    top_k: int = 10  # taxa returned by the serving signature

    def effective_learning_rate(self) -> float:
        """Linear scaling rule: 0.05 at a global batch of 256."""
        if self.learning_rate is not None:
            return self.learning_rate
        return self.base_learning_rate * self.global_batch_size / 256


class GateConfig(_Section):
    """Release gate: absolute floor and paired no-regression tests against the baseline."""

    min_top1: float = 0.0
    max_top1_drop: float = 0.005  # 0.5 points on common taxa
    max_top5_drop: float = 0.005
    confidence: float = 0.95
    common_taxa_min_train_photos: int = 50  # "common taxa": at least this many training photos
    iconic_max_top1_drop: Optional[float] = None  # per-iconic-taxon limit, off by default
    iconic_min_examples: int = 200  # the iconic limit applies only to slices this large
    bootstrap_resamples: int = 2000


class GeoConfig(_Section):
    """Location prior trained as a second model (docs: inat-recipe.md, section 4)."""

    enabled: bool = True
    max_positional_accuracy_m: float = 50000
    positive_weight: Optional[float] = Field(2048, gt=0)  # None: the number of leaf classes (see below)
    hidden_units: int = 256
    residual_blocks: int = 4
    epochs: int = 30
    batch_size: int = 512
    learning_rate: float = 0.0005
    use_date: bool = False
    min_score: float = 0.005  # vision x max(geo, min_score)
    threshold_percentile: float = 5.0

    def effective_positive_weight(self, num_classes: int) -> float:
        """The weight of an observation's own leaf in the presence-only loss.

        Each leaf is a negative at every other leaf's observations and at every background location, about
        2N terms against its own N/C presences, so the weight that balances them grows with the class count C.
        The recipe's 2048 (Mac Aodha et al. 2019) suits iNaturalist's thousands of classes (iNat 2018 has
        8,142: about C/4). With a few dozen classes it outweighs all negatives so far that every leaf scores
        about 1 wherever any presence is near, and the prior changes no prediction; None gives the number of
        classes, the demo profile's setting.
        """
        if self.positive_weight is not None:
            return float(self.positive_weight)
        return float(max(num_classes, 1))


class PushConfig(_Section):
    destination: str = ""  # empty: <root>/releases


class BeamConfig(_Section):
    """Beam options for the data steps; DirectRunner multi-processing locally."""

    runner: str = "DirectRunner"
    direct_num_workers: int = 0
    direct_running_mode: Literal["in_memory", "multi_threading", "multi_processing"] = "multi_processing"
    extra_args: list[str] = Field(default_factory=list)  # e.g. --project=..., --flink_master=...

    def pipeline_args(self) -> list[str]:
        args = [f"--runner={self.runner}"]
        if self.runner == "DirectRunner":
            args += [
                f"--direct_running_mode={self.direct_running_mode}",
                f"--direct_num_workers={self.direct_num_workers}",
            ]
        return args + list(self.extra_args)


class Config(_Section):
    profile: str = "production"
    pipeline_name: str = "inatvision"
    export: ExportConfig = Field(default_factory=ExportConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    geo: GeoConfig = Field(default_factory=GeoConfig)
    push: PushConfig = Field(default_factory=PushConfig)
    beam: BeamConfig = Field(default_factory=BeamConfig)

    def to_json(self) -> str:
        return self.model_dump_json()

    def sections_json(self, *sections: str) -> str:
        """Only the sections a component reads, so a change elsewhere does not invalidate its cache."""
        return self.model_dump_json(include={"profile", "pipeline_name", *sections})

    @classmethod
    def from_json(cls, text: str) -> "Config":
        return cls.model_validate_json(text)


def production() -> Config:
    """iNaturalist's July 2021 recipe: 299 px Xception, batch 256, 80 epochs, mixed_float16."""
    return Config(profile="production")


def demo() -> Config:
    """The production tree shrunk for a 2-core CPU and the generated sample export."""
    config = Config(profile="demo")
    config.export = ExportConfig(
        min_observations=20,
        min_research_grade=10,
        eval_fraction=0.15,
        test_fraction=0.15,
        max_train_photos_per_leaf=40,
        max_eval_photos_per_leaf=30,
        max_test_photos_per_leaf=30,
        min_eval_photos_warning=3,
        max_photo_side=500,
    )
    config.trainer = TrainerConfig(
        image_size=71,  # Xception's smallest input
        global_batch_size=32,
        learning_rate=0.01,
        lr_decay_epochs=2,
        epochs=4,
        batchnorm_momentum=0.9,
        precise_batchnorm_batches=8,
        precision="float32",
        shuffle_buffer=2000,
        top_k=10,
    )
    config.gate = GateConfig(max_top1_drop=0.05, max_top5_drop=0.05, common_taxa_min_train_photos=20,
                             bootstrap_resamples=500)
    # A few hundred presences of a few dozen leaves: the positive weight follows the class count (2048 would
    # saturate every leaf near any presence) and small batches over many epochs give ~1,000 Adam steps.
    config.geo = GeoConfig(positive_weight=None, hidden_units=64, residual_blocks=2, epochs=150, batch_size=64,
                           learning_rate=0.002)
    return config


PROFILES = {"production": production, "demo": demo}


def all_keys(model: BaseModel, prefix: str = "") -> list[str]:
    """Every dotted key of the tree, for error messages and docs."""
    keys = []
    for name, value in model:
        dotted = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            keys += all_keys(value, dotted + ".")
        else:
            keys.append(dotted)
    return keys


def _parse_value(raw: str, current: Any) -> Any:
    """Turns the text after `=` into a value pydantic validates for the field (lists: comma-separated)."""
    if isinstance(current, list):
        return [item.strip() for item in raw.split(",") if item.strip()] if raw else []
    if raw.lower() in ("none", "null"):
        return None
    return raw


def apply_override(config: Config, assignment: str) -> None:
    """Applies one `dotted.key=value` to `config` in place; raises ConfigError."""
    if "=" not in assignment:
        raise ConfigError(f"--set expects dotted.key=value, got {assignment!r}")
    key, raw = assignment.split("=", 1)
    key = key.strip()
    valid = all_keys(config)
    if key not in valid:
        near = difflib.get_close_matches(key, valid, n=5, cutoff=0.5)
        section = key.split(".")[0]
        near += [k for k in valid if k.startswith(section + ".") and k not in near][:8]
        hint = ", ".join(near) if near else ", ".join(valid[:10]) + ", ..."
        raise ConfigError(f"unknown configuration key {key!r}; valid keys near it: {hint}")
    *parents, leaf = key.split(".")
    node = config
    for part in parents:
        node = getattr(node, part)
    try:
        setattr(node, leaf, _parse_value(raw.strip(), getattr(node, leaf)))
    except pydantic.ValidationError as error:
        reason = error.errors()[0]["msg"]
        raise ConfigError(f"bad value for {key}: {raw!r} ({reason})") from None


def build_config(profile: str = "demo", overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """The profile's tree with every `--set` override applied."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    config = PROFILES[profile]()
    for assignment in overrides:
        apply_override(config, assignment)
    return config


def as_dict(config: Config) -> dict:
    return json.loads(config.to_json())


def resolve_config(config_json: str, overrides: str = "") -> Config:
    """The compiled configuration with submission-time overrides (`a.b=c` separated by `;` or newlines)."""
    config = Config.from_json(config_json)
    for assignment in overrides.replace("\n", ";").split(";"):
        if assignment.strip():
            apply_override(config, assignment.strip())
    return config


def local_paths(root: str) -> dict[str, str]:
    """The contract's folders under one `--root`."""
    return {"metadata": os.path.join(root, "metadata.sqlite"), "artifacts": os.path.join(root, "artifacts"),
            "runs": os.path.join(root, "runs"), "releases": os.path.join(root, "releases")}
