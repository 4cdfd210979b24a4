"""Captioning metrics: BLEU-1..4 and CIDEr, two reference baselines, and truth on Shapes.

Scores come from pycocoevalcap's `Bleu` and `Cider` scorers (the COCO caption
evaluation code), on captions lower-cased with punctuation removed (what its
PTB tokenizer does, without Java). The baselines are scored the same way:

* `nearest_neighbour`: for each image, the first caption of the training image
  closest to it in the captioner's own image-encoder embedding (mean patch state, cosine);
* `most_frequent`: the single most frequent training caption, for every image.

On Shapes a generated caption is checked by the generator's own grammar and
truth function (`shapes.parse_caption`, `shapes.is_true`).
"""

from __future__ import annotations

import collections
import re

import numpy as np
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider

from gemini_tf.data import shapes
from gemini_tf.data.captions import CaptionSet
from gemini_tf.data.sources import DataSource, ShapesSource
from gemini_tf.preprocessing.image import preprocess_images


def normalise(text: str) -> str:
    """Lower case, punctuation removed, single spaces."""
    return " ".join(re.sub(r"[^a-z0-9 ]+", " ", text.lower()).split())


def caption_scores(predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    """BLEU-1..4 and CIDEr (pycocoevalcap) of one predicted caption per image against its references."""
    if len(predictions) != len(references):
        raise ValueError(f"Got {len(predictions)} predictions for {len(references)} images.")
    if not predictions:
        raise ValueError("No captions to score.")
    ground_truth = {i: [normalise(r) for r in refs] for i, refs in enumerate(references)}
    results = {i: [normalise(p)] for i, p in enumerate(predictions)}
    bleu, _ = Bleu(4).compute_score(ground_truth, results, verbose=0)
    cider, _ = Cider().compute_score(ground_truth, results)
    return {**{f"bleu_{n + 1}": float(b) for n, b in enumerate(bleu)}, "cider": float(cider)}


def references(captions: CaptionSet) -> list[list[str]]:
    """Every image's captions, in image order."""
    grouped: list[list[str]] = [[] for _ in range(captions.num_images)]
    for text, row in zip(captions.texts, captions.image_index):
        grouped[row].append(text)
    return grouped


def most_frequent_caption(texts: list[str]) -> str:
    """The most frequent caption (normalised; the first seen among ties)."""
    return collections.Counter(normalise(t) for t in texts).most_common(1)[0][0]


def image_features(image_encoder, pixels: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """L2-normalised mean patch states of uint8 images [N, H, W, 3]."""
    features = []
    for start in range(0, len(pixels), batch_size):
        images = preprocess_images(pixels[start : start + batch_size], image_encoder.image_size)
        features.append(np.asarray(image_encoder(images, training=False)["pooled"]))
    features = np.concatenate(features)
    return features / np.linalg.norm(features, axis=1, keepdims=True).clip(1e-12)


def nearest_neighbour_captions(image_encoder, train: CaptionSet, pixels: np.ndarray) -> list[str]:
    """For each image of `pixels`, the first caption of the closest training image."""
    first_caption = {}
    for text, row in zip(train.texts, train.image_index):
        first_caption.setdefault(int(row), text)
    size = tuple(image_encoder.image_size)
    gallery = image_features(image_encoder, train.pixels(size))
    nearest = np.argmax(image_features(image_encoder, pixels) @ gallery.T, axis=1)
    return [first_caption[int(row)] for row in nearest]


def describe_part(bundle, captions: CaptionSet, sampler: str = "greedy", num_beams: int = 4, rerank=None) -> list[str]:
    """The bundle's caption of every image of `captions`."""
    pixels = captions.pixels(bundle.config.image_size)
    return bundle.describe(pixels, sampler=sampler, num_beams=num_beams, rerank=rerank)


def baseline_scores(bundle, source: DataSource, part: str, max_train_images: int | None = None) -> dict:
    """{"nearest_neighbour": scores, "most_frequent": scores} on `part` of `source`."""
    train, scored = source.captions("train").first(max_train_images), source.captions(part)
    pixels = scored.pixels(bundle.config.image_size)
    truth = references(scored)
    return {
        "nearest_neighbour": caption_scores(
            nearest_neighbour_captions(bundle.model.image_encoder, train, pixels), truth
        ),
        "most_frequent": caption_scores([most_frequent_caption(train.texts)] * len(truth), truth),
    }


def shapes_truth(texts: list[str], scene_objects: list[list]) -> dict[str, float]:
    """`true`: share of captions that parse and are true of their scene; `grammatical`: that parse;
    `names_all_objects`: share of 1-2-object scenes whose caption names (colour and shape) all of them."""
    parsed = [shapes.parse_caption(t) for t in texts]
    true = [c is not None and shapes.is_true(c, objects) for c, objects in zip(parsed, scene_objects)]
    small = [i for i, objects in enumerate(scene_objects) if len(objects) <= 2]
    names_all = [_names_all(parsed[i], scene_objects[i]) for i in small]
    return {
        "true": float(np.mean(true)),
        "grammatical": float(np.mean([c is not None for c in parsed])),
        "names_all_objects": float(np.mean(names_all)) if names_all else float("nan"),
    }


def _held_out(obj) -> bool:
    shape, colour = obj[0], obj[1]
    return (shapes.COLOUR_NAMES[colour], shapes.SHAPES[shape]) in shapes.HELD_OUT_OBJECTS


def _names_all(caption: shapes.Caption | None, objects: list) -> bool:
    if caption is None:
        return False
    named = {(caption.colour, caption.shape), (caption.colour2, caption.shape2)}
    return all((shapes.COLOUR_NAMES[c], shapes.SHAPES[s]) in named for s, c, _, _, _ in objects)


def evaluate_descriptions(
    bundle, source: DataSource, part: str, sampler: str = "greedy", num_beams: int = 4, rerank=None
) -> dict[str, float]:
    """A describe bundle's scores on `part`: Shapes truth (`shapes_truth`; `true_seen` /
    `true_held_out` on scenes without / with a `shapes.HELD_OUT_OBJECTS` combination, which
    training never shows unless the source was built with `hold_out=False`) on generated
    scenes, BLEU / CIDEr (`caption_scores`) on caption data. `rerank`: a matcher choosing among the
    `num_beams` beams (`GeminiBundle.describe`)."""
    if isinstance(source, ShapesSource):
        scenes = shapes.generate_scenes(source.scenes[part], part, source.seed)
        images = shapes.render(scenes, bundle.config.image_size[0], source.part_style(part), source.seed)
        texts = bundle.describe(images, sampler=sampler, num_beams=num_beams, rerank=rerank)
        objects = [scenes.objects(i) for i in range(len(scenes))]
        metrics = shapes_truth(texts, objects)
        # Scenes with a systematic-generalisation combination (shapes.HELD_OUT_OBJECTS), and the rest.
        unseen = np.asarray([any(_held_out(o) for o in scene) for scene in objects])
        for name, rows in (("seen", ~unseen), ("held_out", unseen)):
            rows = np.flatnonzero(rows)
            if len(rows):
                metrics[f"true_{name}"] = shapes_truth([texts[i] for i in rows], [objects[i] for i in rows])["true"]
        return {**metrics, "examples": float(len(texts))}
    captions = source.captions(part)
    predictions = describe_part(bundle, captions, sampler, num_beams, rerank)
    return {**caption_scores(predictions, references(captions)), "examples": float(captions.num_images)}
