"""Loads a SavedModel the way tensorflow_model_server does, in a process with no gemini_tf.

Run it as a file, not as a module, so that only tensorflow and tensorflow_text
(whose ops TF Serving links) are imported:

    python gemini_tf/export/serving_probe.py ops SAVED_MODEL_DIR
    python gemini_tf/export/serving_probe.py rest SAVED_MODEL_DIR BODY.json
    python gemini_tf/export/serving_probe.py grpc SAVED_MODEL_DIR REQUEST.pb

`ops` lists every op in the graph *and its function library* that this process
has not registered (or that calls back into Python), and exits 1 if there is any.
`rest` decodes a TF Serving REST body (row "instances" or columnar "inputs", with
{"b64": ...} for bytes) and prints the response TF Serving would send. `grpc`
parses a serialized `PredictRequest` and prints the outputs as JSON. Both run
the signature through a TF1 Session loaded with tag "serve".
"""

import base64
import json
import sys

import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the ops TF Serving links)
from tensorflow.python.framework import op_def_registry

PYTHON_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}


def unregistered_ops(saved_model_dir):
    """(op, where) pairs that this process cannot run."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    with open(f"{saved_model_dir}/saved_model.pb", "rb") as f:
        saved_model.ParseFromString(f.read())
    bad = []
    for meta_graph in saved_model.meta_graphs:
        library = meta_graph.graph_def.library
        functions = {f.signature.name for f in library.function}
        bodies = [("graph", meta_graph.graph_def.node)]
        bodies += [(f"function {f.signature.name}", f.node_def) for f in library.function]
        for where, nodes in bodies:
            for node in nodes:
                if node.op in PYTHON_OPS or node.op not in functions and op_def_registry.get(node.op) is None:
                    bad.append((node.op, where))
    return sorted(set(bad))


def run_signature(saved_model_dir, inputs, signature="serving_default"):
    """Feeds `inputs` (name -> array-like) to a signature in a TF1 Session."""
    graph = tf.Graph()
    with tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], saved_model_dir)
        signature_def = meta_graph.signature_def[signature]
        missing = set(signature_def.inputs) - set(inputs)
        if missing:
            raise ValueError(f"missing inputs {sorted(missing)} for signature {signature!r}")
        feed = {signature_def.inputs[k].name: v for k, v in inputs.items()}
        fetch = {k: v.name for k, v in signature_def.outputs.items()}
        return session.run(fetch, feed_dict=feed)


def decode_b64(value):
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [decode_b64(v) for v in value]
    return value


def rest_predict(saved_model_dir, body):
    """What TF Serving's REST `:predict` answers for `body` (row or columnar format)."""
    signature = body.get("signature_name", "serving_default")
    if "instances" in body:
        rows = [{k: decode_b64(v) for k, v in row.items()} for row in body["instances"]]
        inputs = {k: [row[k] for row in rows] for k in rows[0]}
        outputs = run_signature(saved_model_dir, inputs, signature)
        names = sorted(outputs)
        return {"predictions": [{name: outputs[name][i].tolist() for name in names} for i in range(len(rows))]}
    inputs = {k: decode_b64(v) for k, v in body["inputs"].items()}
    outputs = run_signature(saved_model_dir, inputs, signature)
    return {"outputs": {k: v.tolist() for k, v in outputs.items()}}


def grpc_predict(saved_model_dir, serialized_request):
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.ParseFromString(serialized_request)
    inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
    signature = request.model_spec.signature_name or "serving_default"
    outputs = run_signature(saved_model_dir, inputs, signature)
    return {"model": request.model_spec.name, "outputs": {k: v.tolist() for k, v in outputs.items()}}


def main(argv):
    command, saved_model_dir = argv[1], argv[2]
    if command == "ops":
        bad = unregistered_ops(saved_model_dir)
        for op, where in bad:
            print(f"unregistered or Python op {op} in {where}")
        print(json.dumps({"bad_ops": len(bad), "gemini_tf_imported": "gemini_tf" in sys.modules}))
        return 1 if bad else 0
    with open(argv[3], "rb") as f:
        payload = f.read()
    if command == "rest":
        response = rest_predict(saved_model_dir, json.loads(payload))
    else:
        response = grpc_predict(saved_model_dir, payload)
    response["gemini_tf_imported"] = "gemini_tf" in sys.modules
    print(json.dumps(response))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
