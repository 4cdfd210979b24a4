"""Knowledge distillation losses: the student matches the teacher's softened distributions.

Every output of a Gemini model is a distribution a student can learn from
(Hinton et al. 2015): the in-batch image->text and text->image similarity
softmaxes (contrastive relational distillation), and the Bernoulli P(match) /
P(true) of each scored pair. Each loss is KL(teacher || student) at temperature
T, times T^2 so its gradients keep their size whatever T is.
"""

from __future__ import annotations

from keras import ops

from gemini_tf.models.contrastive import same_image_mask

_NEG_INF = -1e9


def kd_loss(teacher_logits, student_logits, temperature: float = 1.0):
    """Mean over rows of T^2 * KL(softmax(teacher / T) || softmax(student / T)) along the last axis."""
    teacher = ops.softmax(ops.stop_gradient(teacher_logits) / temperature, axis=-1)
    log_teacher = ops.log_softmax(ops.stop_gradient(teacher_logits) / temperature, axis=-1)
    log_student = ops.log_softmax(student_logits / temperature, axis=-1)
    # Masked columns (logit -1e9 in both) have teacher probability 0 and add nothing.
    kl = ops.sum(ops.where(teacher > 0, teacher * (log_teacher - log_student), 0.0), axis=-1)
    return temperature**2 * ops.mean(kl)


def binary_kd_loss(teacher_logits, student_logits, temperature: float = 1.0):
    """`kd_loss` of the Bernoulli distributions (1 - sigmoid(z / T), sigmoid(z / T)) of match logits [N]."""
    as_two_classes = lambda logits: ops.stack([ops.zeros_like(logits), logits], axis=-1)  # noqa: E731
    return kd_loss(as_two_classes(teacher_logits), as_two_classes(student_logits), temperature)


def similarity_kd_loss(teacher_logits, student_logits, image_ids, temperature: float = 1.0):
    """Contrastive relational distillation: `kd_loss` of the in-batch image->text softmax (rows of
    the [images, texts] logits) and text->image softmax (columns), averaged.

    As in `infonce_loss`, other captions of a row's own image are left out of its softmax.
    """
    same = same_image_mask(image_ids)
    others = ops.logical_and(same, ops.logical_not(ops.eye(ops.shape(same)[0], dtype="bool")))
    teacher_logits = ops.where(others, _NEG_INF, teacher_logits)
    student_logits = ops.where(others, _NEG_INF, student_logits)
    image_to_text = kd_loss(teacher_logits, student_logits, temperature)
    text_to_image = kd_loss(ops.transpose(teacher_logits), ops.transpose(student_logits), temperature)
    return 0.5 * (image_to_text + text_to_image)
