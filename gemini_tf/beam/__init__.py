"""Apache Beam pipelines for data at scale: manifest -> TFRecords, and gallery embedding.

The single-process paths (`gemini_tf.data.tfrecords.convert_manifest`,
`gemini_tf.retrieval.build_index`) stay the default; these run the same per-row
work on any Beam runner. Import them from their modules (`gemini_tf.beam.convert`,
`gemini_tf.beam.embed`): Beam is only imported when one is used.
"""
