"""SavedModel export, proven TF-Serving-ready in processes that import only TF + TF-Text."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from gemini_tf.data import shapes
from gemini_tf.export.saved_model import export_saved_model
from gemini_tf.serving import grpc_request, parse_grpc_response, parse_rest_response, rest_request

from conftest import encode_image

PROBE = os.path.join(os.path.dirname(__file__), "..", "gemini_tf", "export", "serving_probe.py")


def probe(*args: str) -> tuple[int, str, str]:
    """Runs serving_probe.py as a file: a fresh process with tensorflow + tensorflow_text only."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, PROBE, *args],
        capture_output=True,
        text=True,
        env={**env, "TF_CPP_MIN_LOG_LEVEL": "2"},
        cwd="/",
    )
    return result.returncode, result.stdout, result.stdout + result.stderr[-2000:]


@pytest.fixture(scope="module")
def test_images():
    scenes = shapes.make_pairs(3, "test", seed=0)
    return scenes, [encode_image(scenes.images[0], "JPEG", quality=95), encode_image(scenes.images[1], "PNG")]


def test_layout_versions_and_models_config(exported, trained_bundle):
    base, path = exported
    assert path == os.path.join(base, "shapes", "1")
    for name in ("saved_model.pb", "assets.extra/vocab.txt", "assets.extra/gemini_tf.json"):
        assert os.path.isfile(os.path.join(path, name))
    with open(os.path.join(path, "assets.extra", "gemini_tf.json")) as f:
        meta = json.load(f)
    assert meta["image_size"] == [64, 64] and meta["label_names"] == ["no_match", "match"]
    with pytest.raises(FileExistsError, match="never overwrite"):
        export_saved_model(trained_bundle, "shapes", base, version=1)
    with open(os.path.join(base, "models.config")) as f:
        assert 'base_path: "/models/shapes"' in f.read()
    assert not [d for d in os.listdir(os.path.join(base, "shapes")) if d.startswith(".")]


def test_every_op_is_registered_in_a_plain_tensorflow_process(exported):
    code, out, log = probe("ops", exported[1])
    assert code == 0, log
    assert '"bad_ops": 0' in out and '"gemini_tf_imported": false' in out


@pytest.mark.parametrize("columnar", [False, True], ids=["row", "columnar"])
def test_rest_request_through_the_server_loading_path(exported, trained_bundle, test_images, tmp_path, columnar):
    pairs, image_bytes = test_images
    texts = pairs.texts[:2]
    body = tmp_path / "body.json"
    body.write_text(json.dumps(rest_request(image_bytes, texts, columnar=columnar)))
    code, out, log = probe("rest", exported[1], str(body))
    assert code == 0, log
    response = json.loads(out)
    assert ("predictions" in response) != columnar and response["gemini_tf_imported"] is False
    served = parse_rest_response(response)
    keras_probabilities = trained_bundle.predict(
        np.stack([tf.io.decode_image(b, 3).numpy() for b in image_bytes]), texts
    )
    np.testing.assert_allclose(served, keras_probabilities, atol=1e-5)


def test_grpc_predict_request_round_trip(exported, trained_bundle, test_images, tmp_path):
    pairs, image_bytes = test_images
    request = grpc_request(image_bytes, pairs.texts[:2], model_name="shapes")
    path = tmp_path / "request.pb"
    path.write_bytes(request.SerializeToString())
    code, out, log = probe("grpc", exported[1], str(path))
    assert code == 0, log
    response = json.loads(out)
    assert response["model"] == "shapes"
    # Rebuild the PredictResponse the server would send and parse it as a client.
    from tensorflow_serving.apis import predict_pb2

    reply = predict_pb2.PredictResponse()
    reply.outputs["probability"].CopyFrom(
        tf.make_tensor_proto(np.asarray(response["outputs"]["probability"], np.float32))
    )
    keras_probabilities = trained_bundle.predict(
        np.stack([tf.io.decode_image(b, 3).numpy() for b in image_bytes]), pairs.texts[:2]
    )
    np.testing.assert_allclose(parse_grpc_response(reply), keras_probabilities, atol=1e-5)


def test_tensor_and_tokenize_signatures_match_keras(exported, trained_bundle):
    loaded = tf.saved_model.load(exported[1])
    pairs = shapes.make_pairs(4, "test", seed=1)
    token_ids = loaded.signatures["tokenize"](text=tf.constant(pairs.texts))["token_ids"]
    np.testing.assert_array_equal(token_ids, trained_bundle.preprocessor(pairs.texts))
    images = pairs.images.astype(np.float32) / 255.0
    out = loaded.signatures["predict_tensors"](image=tf.constant(images), token_ids=token_ids)
    np.testing.assert_allclose(out["probability"], trained_bundle.predict(pairs.images, pairs.texts), atol=1e-5)
    assert out["label"].dtype == tf.int32
