"""`distill`: a small student learns from a trained teacher bundle, L = λ·KD + (1−λ)·CL.

The student reads exactly what the teacher reads — its vocabulary, sequence
length, image size, task and (by default) training data — and takes its widths
and depths from `preset` ("tiny" by default). Training is the ordinary `train`
run of that data, with the recipe wrapped in a `DistillationRecipe` (the
teacher frozen, scored on the fly, or read from a `teacher_cache` folder written
by an earlier run of the same batches; see `models.distillation_trainer` and
`training.teacher_cache`). The
student is an ordinary bundle: evaluate, index, retrieve, export and TFLite
work on it unchanged, and its `pretraining` record names its teacher.

    distill("saved_models/tiny_student", "saved_models/small_grounded", kd_weight=0.5)
"""

from __future__ import annotations

import os

from gemini_tf.bundle import GeminiBundle
from gemini_tf.bundle import load as load_bundle
from gemini_tf.config import PRESET_SIZE_FIELDS, GeminiConfig, preset_fields
from gemini_tf.models.distillation_trainer import check_settings
from gemini_tf.training.recipes import DistillationRecipe, Recipe
from gemini_tf.training.teacher_cache import TeacherCache
from gemini_tf.training.train import train

# Generated data a teacher may have been trained on: `train` regenerates it by name.
GENERATED = ("shapes", "nlvr_world")
# What the student must share with its teacher: the same batches feed both.
SHARED_INPUTS = ("image_size", "patch_size", "sequence_length")


class Teacher:
    """A trained bundle that teaches a student (what `train(teacher=...)` takes).

    Args:
        path: the teacher's bundle folder.
        kd_weight: λ in [0, 1]: 0 trains on the student's own loss alone, 1 on KD alone.
        temperature: T of the softened distributions.
        student_loss: the student's own term: "contrastive" (its ITC loss, the documents'
            L_CL) or "task" (ITC + its recipe's matching loss; λ = 0 is then the
            no-teacher run).
        cache: a folder for the teacher's outputs (`TeacherCache`): the first run writes
            them, later runs of the same data and settings read them instead of running
            the teacher. None: the teacher runs on the fly.
    """

    def __init__(
        self,
        path: str,
        kd_weight: float = 0.5,
        temperature: float = 2.0,
        student_loss: str = "contrastive",
        cache: str | None = None,
    ):
        check_settings(kd_weight, temperature, student_loss, ("--lambda", "--temperature", "--student-loss"))
        self.path = path
        self.bundle: GeminiBundle = load_bundle(path)
        self.kd_weight = kd_weight
        self.temperature = temperature
        self.student_loss = student_loss
        self.cache = cache

    @property
    def task(self) -> str:
        return self.bundle.config.task

    def data(self) -> str:
        """What the teacher was trained on: a generated source's name or the dataset's path."""
        spec = self.bundle.data
        if spec.get("kind") in GENERATED:
            return spec["kind"]
        if "path" not in spec:
            raise ValueError(f"--teacher {self.path} does not record its training data; pass --data.")
        return spec["path"]

    def student_config(self, preset: str | None, requested: dict) -> GeminiConfig:
        """The teacher's config with the widths and depths of `preset` (default "tiny") and the
        `requested` options (fusion, ...); the inputs must stay the teacher's."""
        teacher = self.bundle.config.to_dict()
        changed = [
            f"{key} {value!r} (the teacher's: {teacher[key]!r})"
            for key, value in requested.items()
            if key in SHARED_INPUTS and _as_list(value) != _as_list(teacher[key])
        ]
        if changed:
            raise ValueError(
                f"the student reads the teacher's batches, so it keeps the teacher's inputs; got {', '.join(changed)}."
            )
        sizes = preset_fields(preset or "tiny", patch_size=teacher["patch_size"])
        return GeminiConfig.from_dict({**teacher, **sizes, **requested})

    def vocabulary(self, vocabulary_size: int | None = None) -> list[str]:
        """The teacher's vocabulary (the student tokenizes like the teacher)."""
        vocabulary = self.bundle.preprocessor.vocabulary
        if vocabulary_size not in (None, len(vocabulary)):
            raise ValueError(
                f"the student keeps the teacher's {len(vocabulary)}-token vocabulary; drop --vocabulary-size."
            )
        return vocabulary

    def recipe(self, base: Recipe, verbose: bool = True) -> DistillationRecipe:
        """`base`'s data, taught by this teacher (from its cache, if it has one)."""
        cache = TeacherCache(self.cache, verbose) if self.cache else None
        return DistillationRecipe(base, self.bundle.model, self.kd_weight, self.temperature, self.student_loss, cache)

    def record(self) -> dict:
        """What the student's bundle records about its teacher."""
        return {
            "teacher": os.path.abspath(self.path),
            "kd_weight": self.kd_weight,
            "temperature": self.temperature,
            "student_loss": self.student_loss,
            "teacher_cache": os.path.abspath(self.cache) if self.cache else None,
            "teacher_sizes": {key: self.bundle.config.to_dict()[key] for key in PRESET_SIZE_FIELDS},
        }


def distill(
    output_dir: str,
    teacher: str,
    *,
    kd_weight: float = 0.5,
    temperature: float = 2.0,
    student_loss: str = "contrastive",
    teacher_cache: str | None = None,
    preset: str = "tiny",
    data: str | None = None,
    **train_options,
) -> GeminiBundle:
    """Trains a `preset` student from the `teacher` bundle and saves it in `output_dir`.

    Args:
        output_dir: the student's bundle folder.
        teacher: the teacher's bundle folder.
        kd_weight: λ, the weight of the distillation term (`Teacher`).
        temperature: T of the distillation term.
        student_loss: "contrastive" or "task" (`Teacher`).
        teacher_cache: a folder for the teacher's outputs, written by the first run of these
            settings and read by the next ones (`training.teacher_cache`); None: on the fly.
        preset: the student's widths and depths.
        data: what to train on (default: the teacher's training data).
        **train_options: `train`'s fit and data options (epochs, batch_size,
            learning_rate, train_scenes, matching, fusion, ...).
    """
    teaching = Teacher(teacher, kd_weight, temperature, student_loss, teacher_cache)
    return train(
        output_dir, data or teaching.data(), task=teaching.task, preset=preset, teacher=teaching, **train_options
    )


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]
