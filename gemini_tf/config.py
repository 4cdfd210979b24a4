"""`GeminiConfig`: every size of the model in one dataclass, plus named presets.

Presets are data: `GeminiConfig.from_preset("tiny", fusion="concat")` copies the
preset and applies overrides. Configs round-trip through JSON so a saved model
can always be rebuilt.
"""

from __future__ import annotations

import dataclasses
import json

from gemini_tf.models.grounded_fusion import check_phrase_options
from gemini_tf.models.image_encoder import check_stem_norm

FUSIONS = ("concat", "cross_attention", "grounded")
TASKS = ("itm", "classify", "describe")
CONTRASTIVE_LOSSES = ("infonce", "sigmoid")
# The widths and depths a preset names (not its input sizes, fusion or task).
PRESET_SIZE_FIELDS = (
    "hidden_dim",
    "num_heads",
    "intermediate_dim",
    "stem_channels",
    "text_layers",
    "image_layers",
    "fusion_layers",
    "decoder_layers",
    "embedding_dim",
)


@dataclasses.dataclass
class GeminiConfig:
    """Sizes and choices of a Gemini model.

    image_size is (height, width); both must be multiples of patch_size, the
    stride of the convolutional stem (a power of two: one stride-2 stage each).
    """

    image_size: tuple[int, int] = (64, 64)
    patch_size: int = 16
    sequence_length: int = 16
    vocabulary_size: int = 1000
    hidden_dim: int = 64
    num_heads: int = 4
    intermediate_dim: int = 128
    stem_channels: tuple[int, ...] = (16, 32, 48)
    text_layers: int = 1
    image_layers: int = 1
    fusion_layers: int = 2
    decoder_layers: int = 2
    fusion: str = "cross_attention"
    phrase_evidence: bool = False
    phrase_relations: bool = False
    stem_norm: str = "layer"
    train_shift: float = 0.0
    similarity_weight: float = 1.0
    task: str = "itm"
    num_classes: int = 2
    embedding_dim: int = 64
    contrastive_loss: str = "infonce"
    dropout: float = 0.0

    def __post_init__(self):
        self.image_size = tuple(int(s) for s in self.image_size)
        self.stem_channels = tuple(int(c) for c in self.stem_channels)
        if self.fusion not in FUSIONS:
            raise ValueError(f"Unknown fusion {self.fusion!r}; choose one of {list(FUSIONS)}.")
        if self.task not in TASKS:
            raise ValueError(f"Unknown task {self.task!r}; choose one of {list(TASKS)}.")
        if self.phrase_evidence and self.fusion != "grounded":
            raise ValueError(f"phrase_evidence is part of the grounded fusion; got fusion {self.fusion!r}.")
        check_phrase_options(self.phrase_evidence, self.phrase_relations)
        check_stem_norm(self.stem_norm)
        if not 0.0 <= self.train_shift < 0.5:
            raise ValueError(f"train_shift is a fraction of the image size in [0, 0.5), got {self.train_shift}.")
        stages = self.patch_size.bit_length() - 1
        if self.patch_size < 2 or 2**stages != self.patch_size:
            raise ValueError(f"patch_size must be a power of two >= 2, got {self.patch_size}.")
        if any(s % self.patch_size for s in self.image_size):
            raise ValueError(f"image_size {self.image_size} must be a multiple of patch_size {self.patch_size}.")
        if len(self.stem_channels) != stages - 1:
            raise ValueError(
                f"patch_size {self.patch_size} needs {stages} stem stages: "
                f"{stages - 1} stem_channels plus hidden_dim, got {self.stem_channels}."
            )
        if self.hidden_dim % self.num_heads:
            raise ValueError("hidden_dim must be divisible by num_heads.")
        if self.num_classes != 2:
            raise ValueError(
                f"num_classes={self.num_classes}: gemini_tf's heads are binary (match / no match, "
                "true / false); multi-class classification is not supported."
            )
        if self.contrastive_loss not in CONTRASTIVE_LOSSES:
            raise ValueError(
                f"Unknown contrastive loss {self.contrastive_loss!r}; choose one of {list(CONTRASTIVE_LOSSES)}."
            )

    @property
    def grid_size(self) -> tuple[int, int]:
        return (self.image_size[0] // self.patch_size, self.image_size[1] // self.patch_size)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> GeminiConfig:
        """A preset with overrides. A new `patch_size` without `stem_channels` keeps the
        preset's first stem widths (one stride-2 stage fewer or more per halving/doubling)."""
        if name not in PRESETS:
            raise ValueError(f"Unknown preset {name!r}; choose one of {sorted(PRESETS)}.")
        preset = PRESETS[name]
        if "patch_size" in overrides and "stem_channels" not in overrides:
            stages = max(int(overrides["patch_size"]).bit_length() - 2, 0)
            channels = preset.stem_channels
            overrides["stem_channels"] = (channels + (channels[-1],) * stages)[:stages]
        return dataclasses.replace(preset, **overrides)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GeminiConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


# The grounding that plain binary cross-entropy can train (the README's Keras workflow) and that
# survives the shifted renderer once trained on the varied one: each phrase grounded on its own cell
# and relations read from those cells, no cross-attention blocks, a BatchNorm stem, shifted training
# images, and a head that starts from the grounded score alone (the pooled similarity's weight is 0).
GROUNDED_OPTIONS = {
    "fusion": "grounded",
    "phrase_evidence": True,
    "phrase_relations": True,
    "fusion_layers": 0,
    "stem_norm": "batch",
    "train_shift": 0.03,
    "similarity_weight": 0.0,
}
# Shapes captions and statements need at most 11 tokens with [CLS] and [SEP].
TINY = GeminiConfig(sequence_length=12)
SMALL = GeminiConfig(
    sequence_length=16,
    hidden_dim=128,
    num_heads=4,
    intermediate_dim=256,
    stem_channels=(32, 64, 96),
    embedding_dim=128,
    text_layers=2,
    image_layers=2,
    fusion_layers=2,
)
PRESETS = {
    "tiny": TINY,
    "tiny_grounded": dataclasses.replace(TINY, **GROUNDED_OPTIONS),
    "small": SMALL,
    "small_grounded": dataclasses.replace(SMALL, **GROUNDED_OPTIONS),
}


def preset_fields(name: str, **overrides) -> dict:
    """The widths and depths (`PRESET_SIZE_FIELDS`) of preset `name` (with `overrides`, e.g. a patch
    size that changes the stem)."""
    config = GeminiConfig.from_preset(name, **overrides).to_dict()
    return {key: config[key] for key in PRESET_SIZE_FIELDS}


def config_for(preset: str | None, task: str, options: dict) -> GeminiConfig:
    """The config a training run asks for: `preset` (default "tiny") with `options` (fusion,
    image_size, ...) applied."""
    return GeminiConfig.from_preset(preset or "tiny", task=task, **options)
