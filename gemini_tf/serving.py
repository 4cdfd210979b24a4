"""TF Serving client side: request bodies for REST and gRPC, and response parsing.

    body = rest_request(["cat.jpg"], ["a cat on a sofa"])          # POST to :predict
    request = grpc_request(["cat.jpg"], ["a cat on a sofa"], model_name="gemini")
    probabilities = parse_rest_response(response_json)

Images are sent as raw file bytes (base64 in JSON, as TF Serving expects for
binary strings); the server decodes, resizes and tokenizes inside the graph.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence

import numpy as np


def _image_bytes(image: bytes | str | os.PathLike) -> bytes:
    if isinstance(image, bytes):
        return image
    with open(image, "rb") as f:
        return f.read()


def rest_request(
    images: Sequence[bytes | str],
    texts: Sequence[str],
    columnar: bool = False,
    signature_name: str = "serving_default",
) -> dict:
    """The JSON body for `POST /v1/models/NAME:predict` (row or columnar format)."""
    if len(images) != len(texts):
        raise ValueError(f"Got {len(images)} images but {len(texts)} texts.")
    encoded = [{"b64": base64.b64encode(_image_bytes(i)).decode("ascii")} for i in images]
    if columnar:
        return {"signature_name": signature_name, "inputs": {"image_bytes": encoded, "text": list(texts)}}
    return {
        "signature_name": signature_name,
        "instances": [{"image_bytes": i, "text": t} for i, t in zip(encoded, texts)],
    }


def grpc_request(
    images: Sequence[bytes | str],
    texts: Sequence[str],
    model_name: str,
    signature_name: str = "serving_default",
    version: int | None = None,
):
    """A `tensorflow_serving.apis.predict_pb2.PredictRequest` for `PredictionService.Predict`."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    if len(images) != len(texts):
        raise ValueError(f"Got {len(images)} images but {len(texts)} texts.")
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = version
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([_image_bytes(i) for i in images], dtype=tf.string))
    request.inputs["text"].CopyFrom(tf.make_tensor_proto([t.encode("utf-8") for t in texts], dtype=tf.string))
    return request


def parse_rest_response(response: dict) -> np.ndarray:
    """Probabilities from a REST `:predict` response (row or columnar)."""
    if "error" in response:
        raise ValueError(f"TF Serving returned an error: {response['error']}")
    if "predictions" in response:
        return np.asarray([p["probability"] for p in response["predictions"]], np.float32)
    return np.asarray(response["outputs"]["probability"], np.float32)


def parse_grpc_response(response) -> np.ndarray:
    """Probabilities from a `PredictResponse`."""
    import tensorflow as tf

    return tf.make_ndarray(response.outputs["probability"]).astype(np.float32)
