"""Loaders on the real datasets beside the repo ($GEMINI_TF_DATA); skipped where absent."""

import collections
import os

import numpy as np
import pytest

from gemini_tf.data.coco import load_coco
from gemini_tf.data.flickr8k import load_flickr8k
from gemini_tf.data.nlvr import RENDERINGS, directory_of, load_nlvr, split_by_directory
from gemini_tf.data.report import DataError
from gemini_tf.data.sources import open_source

ROOT = os.environ.get("GEMINI_TF_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))


def dataset(name):
    path = os.path.join(ROOT, name)
    if not os.path.isdir(path):
        pytest.skip(f"{name} not found at {path}: set GEMINI_TF_DATA to the shared data folder to run this test")
    return path


def test_coco_loader_reads_coco_mini():
    path = dataset("coco_mini")
    captions = load_coco(path, "val2017")
    assert open_source(path).kind == "coco" and open_source(path).parts == ("train", "validation")
    assert len(captions.images) == 79 and len(captions) == 395
    counts = collections.Counter(captions.image_index.tolist())
    assert set(counts.values()) == {5}  # five captions per COCO image
    assert all(os.path.isfile(p) for p in captions.images)
    assert captions.report.used == 395 and captions.report.num_skipped == 0
    with pytest.raises(DataError, match="captions_test2017"):
        load_coco(path, "test2017")


def test_flickr8k_dev_has_five_captions_per_image():
    path = dataset("flickr8k")
    dev = load_flickr8k(path, "dev")
    assert len(dev.images) == 1000 and len(dev) == 5000
    assert np.all(np.bincount(dev.image_index) == 5)


def test_flickr8k_without_a_test_split_reports_on_dev_and_validates_on_train_images():
    # The shared copy ships train + dev only: dev is what figures are reported on, so early
    # stopping must validate on images taken out of train by the split rule, never on dev.
    path = dataset("flickr8k")
    source = open_source(path)
    assert source.kind == "flickr8k" and source.parts == ("train", "validation", "test")
    train, validation, test = (source.captions(p) for p in ("train", "validation", "test"))
    dev = load_flickr8k(path, "dev")
    assert [os.path.basename(p) for p in test.images] == [os.path.basename(p) for p in dev.images]
    assert len(train.images) + len(validation.images) == 5999
    assert 0.07 < len(validation.images) / 5999 < 0.13
    assert not set(train.images) & set(validation.images)
    assert not (set(train.images) | set(validation.images)) & set(test.images)
    assert np.all(np.bincount(validation.image_index) >= 1) and len(validation) >= 4 * len(validation.images)
    assert "dev.txt" in source.describe("test") and source.held_out_part == "test"


def test_nlvr_keeps_a_sentences_six_images_in_one_split():
    path = dataset("nlvr")
    records, report = load_nlvr(path, "dev")
    assert open_source(path).kind == "nlvr" and report.num_skipped == 0 and len(records) == 989 * RENDERINGS
    train, validation = split_by_directory(records, ["5"])
    train_ids, validation_ids = {r.image_id for r in train}, {r.image_id for r in validation}
    assert not train_ids & validation_ids
    assert {directory_of(r) for r in validation} == {"5"}
    per_sentence = collections.Counter(r.image_id for r in records)
    assert set(per_sentence.values()) == {RENDERINGS}
    assert {r.label for r in records} == {0, 1}
