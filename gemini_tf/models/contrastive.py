"""Contrastive image-text alignment (ITC): the two losses and the hard-negative miner.

Every function takes `image_ids` [batch]: row i of a batch is the pair
(image_i, text_i), and two rows with the same image id show the same image
(several captions of one photo). Such rows are true matches of each other's
image, so they are never used as negatives.

* `infonce_loss`: symmetric softmax cross-entropy over the batch (CLIP). Other
  captions of the same image are left out of the softmax.
* `sigmoid_loss`: one independent binary term per (image, text) pair
  (SigLIP, big_vision). Every same-image pair is a positive.
* `sample_hard_negatives`: ALBEF's miner — for each row, a negative drawn from
  the batch with probability softmax(similarity), positives excluded.
"""

from __future__ import annotations

import keras
from keras import ops

_NEG_INF = -1e9


def same_image_mask(image_ids):
    """[batch, batch] bool: True where rows i and j show the same image."""
    image_ids = ops.reshape(image_ids, (-1,))
    return ops.equal(image_ids[:, None], image_ids[None, :])


def infonce_loss(similarity, image_ids, scale):
    """CLIP's symmetric InfoNCE on cosine similarities [batch images, batch texts].

    Row i's target is column i; other columns showing the same image are masked
    out of both softmaxes (neither positive nor negative).
    """
    logits = scale * similarity
    same = same_image_mask(image_ids)
    others = ops.logical_and(same, ops.logical_not(ops.eye(ops.shape(same)[0], dtype="bool")))
    logits = ops.where(others, _NEG_INF, logits)
    targets = ops.arange(ops.shape(logits)[0])
    image_to_text = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
    text_to_image = keras.losses.sparse_categorical_crossentropy(targets, ops.transpose(logits), from_logits=True)
    return 0.5 * (ops.mean(image_to_text) + ops.mean(text_to_image))


def sigmoid_loss(similarity, image_ids, scale, bias):
    """SigLIP's pairwise loss: -sum_ij log sigmoid(z_ij * (scale * sim_ij + bias)) / batch.

    z_ij = +1 when image i and text j show the same image, else -1.
    """
    logits = scale * similarity + bias
    signs = 2.0 * ops.cast(same_image_mask(image_ids), logits.dtype) - 1.0
    return -ops.sum(ops.log_sigmoid(signs * logits)) / ops.cast(ops.shape(logits)[0], logits.dtype)


def sample_hard_negatives(logits, image_ids, seed=None):
    """For each row of `logits` [batch, batch], a column index that is a negative.

    Column j is drawn with probability softmax(logits[i]) over the columns that
    do not show row i's image (ALBEF). Pass `logits` for image rows to get a
    negative text per image, and its transpose to get a negative image per text.
    A row with no negative at all (one image fills the batch) falls back to a
    uniform draw; callers label pairs from image ids, so that never mislabels.
    """
    logits = ops.where(same_image_mask(image_ids), _NEG_INF, ops.stop_gradient(logits))
    return ops.cast(ops.reshape(keras.random.categorical(logits, 1, seed=seed), (-1,)), "int32")
