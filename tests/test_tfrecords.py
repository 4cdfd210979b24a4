import json

import numpy as np
import pytest

from gemini_tf.data.sources import open_source
from gemini_tf.data.splits import PARTS, parts_of
from gemini_tf.data.tfrecords import TFRecordPairs, convert_manifest, read_tfrecords

from conftest import jpeg_bytes


def test_round_trip_is_byte_identical(tmp_path):
    images = {f"img{i}.jpg": jpeg_bytes(i) for i in range(7)}
    for name, data in images.items():
        (tmp_path / name).write_bytes(data)
    texts = [f"caption number {i} with ünïcode" for i in range(7)]
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "image,text,label\n" + "".join(f"img{i}.jpg,{texts[i]},{i % 2}\n" for i in range(7)), encoding="utf-8"
    )
    paths, report = convert_manifest(str(manifest), str(tmp_path / "shards"), shards=3, progress=False)
    assert len(paths) == 3 and report.used == 7
    examples = list(read_tfrecords(str(tmp_path / "shards")).as_numpy_iterator())
    assert len(examples) == 7
    by_text = {e["text"].decode(): e for e in examples}
    for i, text in enumerate(texts):
        assert by_text[text]["image"] == images[f"img{i}.jpg"]
        assert by_text[text]["label"] == i % 2
    assert json.loads((tmp_path / "shards" / "report.json").read_text())["used"] == 7


def test_conversion_counts_bad_rows(bad_data, tmp_path):
    _, report = convert_manifest(str(bad_data), str(tmp_path / "out"), shards=2, progress=False)
    assert report.rows_read == 7 and report.used == 2
    assert dict(report.skipped) == {"unreadable_image": 2, "missing_image": 1, "empty_text": 1, "bad_label": 1}
    assert len(list(read_tfrecords(str(tmp_path / "out")))) == 2


def test_from_tfrecords_feeds_the_model_pipeline(tmp_path):
    from gemini_tf.preprocessing import TextPreprocessor, learn_vocabulary

    for i in range(4):
        (tmp_path / f"{i}.jpg").write_bytes(jpeg_bytes(i))
    (tmp_path / "m.csv").write_text("image,text,label\n" + "".join(f"{i}.jpg,photo {i},{i % 2}\n" for i in range(4)))
    convert_manifest(str(tmp_path / "m.csv"), str(tmp_path / "s"), shards=2, progress=False)
    preprocessor = TextPreprocessor(learn_vocabulary(["photo 0 1 2 3"], 30), 6)
    batches = list(TFRecordPairs(str(tmp_path / "s")).dataset(preprocessor, (16, 16), batch_size=3))
    (token_ids, images), labels = batches[0]
    assert token_ids.shape[1] == 6 and images.shape[1:] == (16, 16, 3)
    assert sum(len(b[1]) for b in batches) == 4 and set(np.concatenate([b[1] for b in batches])) == {0, 1}


def test_existing_shards_are_not_overwritten(tmp_path):
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes(0))
    (tmp_path / "m.csv").write_text("image,text\na.jpg,x\n")
    convert_manifest(str(tmp_path / "m.csv"), str(tmp_path / "s"), progress=False)
    with pytest.raises(FileExistsError):
        convert_manifest(str(tmp_path / "m.csv"), str(tmp_path / "s"), progress=False)


def test_shards_split_by_image_exactly_like_their_manifest(tmp_path):
    """Rows of one image never straddle parts, and TFRecords hold out the same rows as the manifest."""
    for i in range(40):
        (tmp_path / f"{i}.jpg").write_bytes(jpeg_bytes(i, size=8))
    rows = [(f"{i % 40}.jpg", f"caption {r} of image {i % 40}", r % 2) for r, i in enumerate(range(160))]
    (tmp_path / "m.csv").write_text("image,text,label\n" + "".join(f"{i},{t},{y}\n" for i, t, y in rows))
    convert_manifest(str(tmp_path / "m.csv"), str(tmp_path / "s"), shards=4, progress=False)
    manifest, shards = open_source(str(tmp_path / "m.csv")), open_source(str(tmp_path / "s"))
    expected = parts_of([image for image, _, _ in rows])
    assert set(expected) == set(PARTS)  # the fixture has every part
    for part in PARTS:
        texts = {t for (_, t, _), p in zip(rows, expected) if p == part}
        assert set(manifest.pairs(part).texts) == texts
        assert set(shards.pairs(part).texts) == texts
        images = {t.split()[-1] for t in texts}
        others = {t.split()[-1] for (_, t, _), p in zip(rows, expected) if p != part}
        assert not images & others  # all four captions of an image share its part
    assert len(shards.pairs("all")) == len(manifest.pairs("all")) == 160
