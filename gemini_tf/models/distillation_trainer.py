"""`DistillationTrainer`: a student `GeminiModel` learns from a frozen teacher, L = λ·KD + (1−λ)·CL.

Teacher and student read the same batch (the student is built with the
teacher's vocabulary, sequence length and image size). The teacher never
trains: it runs in inference mode on the fly, or its `teacher_outputs` for the
batch come with it from a cache (`training.teacher_cache`). Per batch layout
(the one its recipe's data has):

* "captions" — (token_ids, images, image_ids), photos with captions:
  KD = similarity KD (in-batch image->text and text->image softmaxes)
       + match KD on the ITM pairs mined from the *teacher's* similarities
       (both models score the same pairs); CL = the student's ITC loss.
* "groups" — ((token_ids [B, G, L], images), labels), Shapes one-difference
  groups: KD = similarity KD of the true captions + match KD on every caption
  of the group; CL = the student's ITC loss on the true captions.
* "pairs" — ((token_ids, images), labels), labelled statements (classify):
  KD = match KD of the classification logits; CL = the student's binary
  cross-entropy on the labels (a statement may be false, so in-batch
  contrast has no targets here).

λ = 0 trains on CL alone and λ = 1 on KD alone, exactly. The KD terms are
`models.distillation`'s; CL is the student's own `ContrastiveHead` loss.

`student_loss="task"` widens CL to the whole loss the student's recipe trains
with when alone: ITC + the listwise group loss ("groups") or ITC + ITM on the
mined pairs ("captions"). Then λ = 0 is exactly the no-teacher run, and the
teacher adds to the labels instead of replacing the matching loss.
"""

from __future__ import annotations

import keras
from keras import ops

from gemini_tf.models.contrastive import sample_hard_negatives
from gemini_tf.models.contrastive_trainer import balanced_accuracy, itm_loss, matching_rows
from gemini_tf.models.distillation import binary_kd_loss, similarity_kd_loss
from gemini_tf.models.gemini import GeminiModel
from gemini_tf.models.listwise_trainer import group_matching_loss

LAYOUTS = ("captions", "groups", "pairs")
# The student's own term: the contrastive (ITC) loss alone, or the whole loss of its recipe.
STUDENT_LOSSES = ("contrastive", "task")


def check_settings(
    kd_weight: float,
    temperature: float,
    student_loss: str,
    names: tuple[str, str, str] = ("kd_weight (lambda)", "temperature", "student_loss"),
) -> None:
    """ValueError naming the setting (`names`: as the caller spells them, e.g. CLI flags) that is out of range."""
    weight_name, temperature_name, loss_name = names
    if not 0.0 <= kd_weight <= 1.0:
        raise ValueError(f"{weight_name} must be in [0, 1], got {kd_weight}.")
    if temperature <= 0:
        raise ValueError(f"{temperature_name} must be positive, got {temperature}.")
    if student_loss not in STUDENT_LOSSES:
        raise ValueError(f"Unknown {loss_name} {student_loss!r}; choose one of {list(STUDENT_LOSSES)}.")


@keras.saving.register_keras_serializable(package="gemini_tf")
class DistillationTrainer(keras.Model):
    """Trains `student` to match `teacher` (see the module docstring for what each layout distils).

    Args:
        student: the `GeminiModel` to train; what you save and deploy.
        teacher: a trained `GeminiModel` with the same inputs; frozen here.
        layout: "captions", "groups" or "pairs": what the batches hold.
        kd_weight: λ in [0, 1], the weight of the distillation term.
        temperature: T of the softened distributions (KD terms are scaled by T²).
        student_loss: "contrastive" (CL = the student's ITC loss) or "task"
            (CL = ITC + its recipe's matching loss); "pairs" always uses binary
            cross-entropy.
        seed: seed of the hard-negative sampler ("captions").
    """

    def __init__(
        self,
        student: GeminiModel,
        teacher: GeminiModel,
        layout: str,
        kd_weight: float = 0.5,
        temperature: float = 2.0,
        student_loss: str = "contrastive",
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if layout not in LAYOUTS:
            raise ValueError(f"Unknown layout {layout!r}; choose one of {list(LAYOUTS)}.")
        check_settings(kd_weight, temperature, student_loss)
        self.student = student
        self.teacher = teacher
        teacher.trainable = False
        if layout != "pairs":
            student.contrastive_head.trainable = True  # its scale trains under the student's ITC loss
        self.layout = layout
        self.kd_weight = kd_weight
        self.temperature = temperature
        self.student_loss = student_loss
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.kd_loss_tracker = keras.metrics.Mean(name="kd_loss")
        self.student_loss_tracker = keras.metrics.Mean(name="student_loss")  # the (1 - λ) term
        # Share of pairs where student and teacher take the same match / no-match decision.
        self.agreement_tracker = keras.metrics.Mean(name="agreement")
        self.accuracy_tracker = keras.metrics.Mean(name="accuracy")  # balanced, of the student's decisions
        self.built = True  # every weight is the student's or the teacher's, both built

    def call(self, inputs, training=None):
        """`inputs`: a batch of the layout, or {"inputs": batch, "teacher": its `teacher_outputs`}
        (a batch read from a `TeacherCache`: the teacher does not run)."""
        if isinstance(inputs, dict):
            inputs, taught = inputs["inputs"], inputs["teacher"]
        else:
            taught = self.teacher_outputs(inputs)
        if self.layout == "captions":
            return self._captions(*inputs, taught, training=training)
        if self.layout == "groups":
            return self._groups(*inputs, taught, training=training)
        token_ids, images = inputs
        return {
            "match": {"student": _match_logits(self.student, token_ids, images, training), "teacher": taught["match"]}
        }

    def teacher_outputs(self, inputs) -> dict:
        """What the frozen teacher says about one batch (`teacher_outputs`)."""
        return teacher_outputs(self.teacher, self.layout, inputs, self.seed_generator)

    def _captions(self, token_ids, images, image_ids, taught, training=None):
        """The student on the teacher's mined rows: both models score the same pairs."""
        image_ids = ops.reshape(image_ids, (-1,))
        student = self.student
        text, image = _encode(student, token_ids, images, training)
        rows_text, rows_token_ids, rows_image, labels = matching_rows(
            text, token_ids, image, image_ids, taught["negative_text"], taught["negative_image"]
        )
        return _side_by_side(
            taught,
            student.match_logits(rows_text, rows_token_ids, rows_image, training=training),
            student.similarities(text["pooled"], image["pooled"]),
            image_ids,
            labels=labels,
        )

    def _groups(self, token_ids, images, taught, training=None):
        match, similarity = _group_scores(self.student, token_ids, images, training)
        return _side_by_side(taught, match, similarity, ops.arange(ops.shape(token_ids)[0]))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        match = y_pred["match"]
        kd = binary_kd_loss(match["teacher"], match["student"], self.temperature)
        if self.layout == "pairs":
            labels = ops.cast(ops.reshape(y, (-1,)), match["student"].dtype)
            own = ops.mean(keras.losses.binary_crossentropy(labels[:, None], match["student"][:, None], True))
        else:
            similarity, image_ids = y_pred["similarity"], y_pred["image_ids"]
            kd = kd + similarity_kd_loss(
                similarity["teacher"],  # the teacher's logits (its own contrastive head's scale)
                self.student.contrastive_head(similarity["student"]),
                image_ids,
                self.temperature,
            )
            own = self.student.contrastive_head.contrastive_loss(similarity["student"], image_ids)
            labels = y_pred["labels"] if self.layout == "captions" else ops.reshape(ops.cast(y, "float32"), (-1,))
            if self.student_loss == "task" and self.layout == "captions":
                own = own + itm_loss(labels, match["student"])
            elif self.student_loss == "task":
                grouped = ops.cast(y, match["student"].dtype)
                own = own + ops.mean(group_matching_loss(grouped, ops.reshape(match["student"], ops.shape(grouped))))
        self.kd_loss_tracker.update_state(kd)
        self.student_loss_tracker.update_state(own)
        agreement = ops.equal(match["teacher"] > 0, match["student"] > 0)
        self.agreement_tracker.update_state(ops.mean(ops.cast(agreement, "float32")))
        self.accuracy_tracker.update_state(balanced_accuracy(labels, match["student"]))
        return self.kd_weight * kd + (1.0 - self.kd_weight) * own

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return self.get_metrics_result()

    @property
    def metrics(self):
        trackers = [self.kd_loss_tracker, self.student_loss_tracker, self.agreement_tracker, self.accuracy_tracker]
        return [*super().metrics, *trackers]

    def get_config(self):
        return {
            **super().get_config(),
            "student": keras.layers.serialize(self.student),
            "teacher": keras.layers.serialize(self.teacher),
            "layout": self.layout,
            "kd_weight": self.kd_weight,
            "temperature": self.temperature,
            "student_loss": self.student_loss,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for role in ("student", "teacher"):
            config[role] = keras.layers.deserialize(config[role], custom_objects=custom_objects)
        return cls(**config)


def _encode(model: GeminiModel, token_ids, images, training):
    """(text, image): the outputs of `model`'s two encoders."""
    return model.text_encoder(token_ids, training=training), model.image_encoder(images, training=training)


def _group_scores(model: GeminiModel, token_ids, images, training):
    """`model` on one-difference groups (token ids [batch, group, length]): the match logit of
    every caption [batch * group] and the similarities of the true (first) captions [batch, batch]."""
    batch, group, length = ops.shape(token_ids)[0], ops.shape(token_ids)[1], ops.shape(token_ids)[2]
    flat = ops.reshape(token_ids, (batch * group, length))
    text, image = _encode(model, flat, images, training)
    repeated = {k: ops.repeat(v, group, axis=0) for k, v in image.items()}
    return (
        model.match_logits(text, flat, repeated, training=training),
        model.similarities(text["pooled"][::group], image["pooled"]),
    )


def teacher_outputs(teacher: GeminiModel, layout: str, inputs, seed_generator) -> dict:
    """What a frozen teacher says about one batch of `layout`: every teacher tensor the KD terms use.

    "captions": the in-batch similarity logits, the hard negatives mined from them (with
    `seed_generator`) and the match logits of the mined rows; "groups": the similarity logits
    of the true captions and the match logits of every caption; "pairs": the match
    (classification) logits. What a `TeacherCache` stores per batch.
    """
    if layout == "pairs":
        return {"match": _match_logits(teacher, *inputs, False)}
    if layout == "groups":
        match, similarity = _group_scores(teacher, *inputs, False)
        return {"logits": teacher.contrastive_head(similarity), "match": match}
    token_ids, images, image_ids = inputs
    image_ids = ops.reshape(image_ids, (-1,))
    text, image = _encode(teacher, token_ids, images, False)
    logits = teacher.contrastive_head(teacher.similarities(text["pooled"], image["pooled"]))
    negative_text = sample_hard_negatives(logits, image_ids, seed_generator)
    negative_image = sample_hard_negatives(ops.transpose(logits), image_ids, seed_generator)
    rows = matching_rows(text, token_ids, image, image_ids, negative_text, negative_image)[:3]
    return {
        "logits": logits,
        "negative_text": negative_text,
        "negative_image": negative_image,
        "match": teacher.match_logits(*rows, training=False),
    }


def _side_by_side(taught: dict, student_match, student_similarity, image_ids, **extra) -> dict:
    """`y_pred`: the teacher's and the student's side of each KD term (the teacher's
    similarity already scaled to logits by its own contrastive head)."""
    return {
        "match": {"teacher": taught["match"], "student": student_match},
        "similarity": {"teacher": taught["logits"], "student": student_similarity},
        "image_ids": image_ids,
        **extra,
    }


def _match_logits(model: GeminiModel, token_ids, images, training):
    text, image = _encode(model, token_ids, images, training)
    return model.match_logits(text, token_ids, image, training=training)
