"""Data: the embedded Shapes world, real-data loaders, manifests, TFRecords and tf.data pipelines."""

from gemini_tf.data.manifest import from_manifest, read_manifest
from gemini_tf.data.report import DataError, DataReport
from gemini_tf.data.tfrecords import convert_manifest, from_tfrecords

__all__ = ["DataError", "DataReport", "convert_manifest", "from_manifest", "from_tfrecords", "read_manifest"]
