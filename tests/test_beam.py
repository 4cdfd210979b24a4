"""Beam engines on tiny data: the pipelines give what the single-process paths give."""

import json

import numpy as np
import pytest

from gemini_tf.beam.convert import convert_manifest_beam
from gemini_tf.beam.options import parse_beam_options, pipeline_options
from gemini_tf.data.report import DataError
from gemini_tf.data.tfrecords import convert_manifest, read_tfrecords

from conftest import jpeg_bytes

# The default (2 worker processes) runs in the first test; the others run in this process (CI time).
IN_PROCESS = {"direct_running_mode": "in_memory", "direct_num_workers": "1"}


def examples_of(folder) -> set:
    return {
        (e["image"], e["text"], int(e["label"]), e["image_key"], e["id"])
        for e in read_tfrecords(str(folder)).as_numpy_iterator()
    }


def test_beam_conversion_matches_the_single_process_converter(bad_data, tmp_path):
    """Same example set, same report counts, the shard names of `gemini-tf data convert`."""
    paths, report = convert_manifest_beam(str(bad_data), str(tmp_path / "beam"), shards=3)
    _, expected = convert_manifest(str(bad_data), str(tmp_path / "plain"), shards=2, progress=False)
    assert [p.rsplit("/", 1)[1] for p in paths] == [f"data-{i:05d}-of-00003.tfrecord" for i in range(3)]
    assert examples_of(tmp_path / "beam") == examples_of(tmp_path / "plain") and report.used == 2
    written = json.loads((tmp_path / "beam" / "report.json").read_text())
    assert {k: written[k] for k in ("rows_read", "used", "skipped")} == {
        k: expected.to_dict()[k] for k in ("rows_read", "used", "skipped")
    }
    assert sorted(written["offenders"]) == sorted(expected.offenders)
    assert not list((tmp_path / "beam").glob(".beam-*"))  # scratch removed


def test_beam_strict_conversion_fails_on_an_unreadable_image_and_leaves_no_shards(tmp_path):
    (tmp_path / "ok.jpg").write_bytes(jpeg_bytes(0))
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    (tmp_path / "m.csv").write_text("image,text\nok.jpg,fine\nbad.jpg,broken\n")
    with pytest.raises(DataError, match=r"m.csv:3: image file is empty, truncated or not an image"):
        convert_manifest_beam(
            str(tmp_path / "m.csv"), str(tmp_path / "out"), shards=2, strict=True, beam_options=IN_PROCESS
        )
    assert not list((tmp_path / "out").glob("*.tfrecord"))


def test_beam_options_parse_and_refuse_bad_input():
    assert parse_beam_options(["direct_num_workers=4", "--project=p"]) == {"direct_num_workers": "4", "project": "p"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_beam_options(["direct_num_workers"])
    with pytest.raises(ValueError, match="Unknown Beam runner"):
        pipeline_options("LocalRunner")
    options = pipeline_options("DirectRunner", {"direct_num_workers": "3"}).get_all_options()
    assert options["direct_num_workers"] == 3 and options["direct_running_mode"] == "multi_processing"


def test_beam_index_equals_the_single_process_index(trained_bundle, exported, tmp_path):
    """RunInference over the SavedModel's embed signatures gives `gemini-tf index`'s embeddings."""
    from gemini_tf.beam.embed import build_index_beam
    from gemini_tf.data import shapes
    from gemini_tf.retrieval import build_index

    from conftest import encode_image

    pairs = shapes.make_pairs(6, "test", seed=2)
    files = []
    for i, image in enumerate(pairs.images):
        files.append(str(tmp_path / f"{i}.png"))
        (tmp_path / f"{i}.png").write_bytes(encode_image(image, "PNG"))
    for kind, items in (("image", files), ("text", pairs.texts)):
        beam_index = build_index_beam(exported[1], items, kind, beam_options=IN_PROCESS, batch_size=4)
        expected = build_index(trained_bundle, items, kind)
        assert beam_index.ids == expected.ids and beam_index.kind == kind
        np.testing.assert_allclose(beam_index.embeddings, expected.embeddings, atol=1e-5, rtol=0)
