"""Plain text for pre-training the text encoder (and for its vocabulary), from several kinds of source.

`read_texts` takes, for each entry:

* a `.txt` file: one text per line (blank lines skipped);
* "nlvr_world" or "shapes": statements (true and false) about `scenes` generated
  training scenes;
* any data path `open_source` knows (NLVR, Flickr8k, COCO, a manifest, TFRecords):
  the texts of its *train* part only, so validation and test sentences never
  reach pre-training.

Texts are returned once each, in first-seen order (NLVR repeats a sentence for
each of its six renderings).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from gemini_tf.data import nlvr_statements, shapes
from gemini_tf.data.report import DataError
from gemini_tf.data.sources import open_source

GENERATED = ("nlvr_world", "shapes")


def read_texts(entries: Sequence[str], scenes: int = 16000, seed: int = 0) -> list[str]:
    """The distinct texts of every entry (see the module docstring), in order."""
    texts: dict[str, None] = {}
    for entry in entries:
        texts.update(dict.fromkeys(_texts_of(entry, scenes, seed)))
    return list(texts)


def _texts_of(entry: str, scenes: int, seed: int) -> list[str]:
    if entry == "nlvr_world":
        return [text for _, text, _ in nlvr_statements.make_examples(scenes, np.random.default_rng([seed, 5381]))]
    if entry == "shapes":
        return list(shapes.make_pairs(scenes, "train", seed, statements=True).texts)
    if entry.endswith(".txt"):
        if not os.path.isfile(entry):
            raise FileNotFoundError(f"No such text file: {entry}")
        with open(entry, encoding="utf-8") as f:
            lines = [line.strip() for line in f]
        texts = [line for line in lines if line]
        if not texts:
            raise DataError(f"{entry}: no text in the file (one text per line expected).")
        return texts
    source = open_source(entry)
    view = source.captions("train") if source.holds == "captions" else source.pairs("train")
    return list(view.texts)
