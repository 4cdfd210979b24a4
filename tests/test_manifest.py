import json

import numpy as np
import pytest

from gemini_tf.data.manifest import parse_label, read_manifest
from gemini_tf.data.report import DataError

from conftest import jpeg_bytes


def test_labels_accept_the_documented_spellings():
    assert [parse_label(v) for v in ("1", "0", "TRUE", "false", "Yes", "no", True, 0)] == [1, 0, 1, 0, 1, 0, 1, 0]
    assert parse_label("maybe") is None and parse_label("2") is None


def test_relative_and_absolute_paths(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.jpg").write_bytes(jpeg_bytes(0))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    absolute = elsewhere / "b.jpg"
    absolute.write_bytes(jpeg_bytes(1))
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "c.jpg").write_bytes(jpeg_bytes(2))
    manifest = folder / "m.jsonl"
    manifest.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"image": "c.jpg", "text": "relative", "label": 1},
                {"image": str(absolute), "text": "absolute", "label": "no"},
            ]
        )
        + "\n"
    )
    records, report = read_manifest(str(manifest))
    assert [r.image for r in records] == [str(folder / "c.jpg"), str(absolute)]
    assert [r.label for r in records] == [1, 0]
    assert report.rows_read == 2 and report.used == 2 and report.num_skipped == 0


def test_every_bad_reason_is_counted(bad_data):
    records, report = read_manifest(str(bad_data))
    assert [r.text for r in records] == ["a photo", "another photo"]
    assert report.rows_read == 7 and report.used == 2
    assert dict(report.skipped) == {
        "unreadable_image": 2,
        "missing_image": 1,
        "empty_text": 1,
        "bad_label": 1,
    }
    assert report.offenders[0].startswith(f"{bad_data}:3:")  # header is line 1
    assert "rows read" in report.summary() and "bad_label: 1" in report.summary()


def test_strict_names_the_first_offender(bad_data):
    with pytest.raises(DataError, match=rf"{bad_data}:3: image file is empty, truncated or not an image"):
        read_manifest(str(bad_data), strict=True)


def test_paths_outside_the_manifest_folder_need_permission(tmp_path):
    (tmp_path / "outside.jpg").write_bytes(jpeg_bytes(0))
    folder = tmp_path / "manifests"
    folder.mkdir()
    manifest = folder / "m.csv"
    manifest.write_text("image,text\n../outside.jpg,escapes\n")
    records, report = read_manifest(str(manifest))
    assert records == [] and report.skipped == {"outside_root": 1}
    records, report = read_manifest(str(manifest), allow_outside_root=True)
    assert len(records) == 1 and records[0].label is None


def test_malformed_manifests_get_clear_errors(tmp_path):
    bad_header = tmp_path / "m.csv"
    bad_header.write_text("path,caption\nx.jpg,hello\n")
    with pytest.raises(DataError, match="image,text"):
        read_manifest(str(bad_header))
    bad_json = tmp_path / "m.jsonl"
    bad_json.write_text('{"image": "x.jpg", "text": "ok"}\n{not json\n')
    with pytest.raises(DataError, match=r"m.jsonl:2: not valid JSON"):
        read_manifest(str(bad_json))
    with pytest.raises(FileNotFoundError):
        read_manifest(str(tmp_path / "absent.csv"))


def test_from_manifest_yields_model_batches_and_the_report(bad_data):
    from gemini_tf.data.manifest import from_manifest
    from gemini_tf.preprocessing import TextPreprocessor, learn_vocabulary

    preprocessor = TextPreprocessor(learn_vocabulary(["a photo", "another photo"], 50), 8)
    dataset, report = from_manifest(str(bad_data), preprocessor, (32, 32), batch_size=8)
    (token_ids, images), labels = next(iter(dataset))
    assert token_ids.shape == (2, 8) and images.shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(labels, [1, 0])
    assert report.used == 2 and report.num_skipped == 5


def test_library_code_logs_reports_instead_of_printing(bad_data, capsys, caplog):
    from gemini_tf.data.sources import open_source

    with caplog.at_level("WARNING", logger="gemini_tf"):
        pairs = open_source(str(bad_data)).pairs("all")
    assert len(pairs) == 2
    assert capsys.readouterr().out == ""
    assert "5 skipped" in caplog.text and "missing_image: 1" in caplog.text
