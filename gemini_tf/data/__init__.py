"""Data: the Shapes generator, dataset readers, the split rule, data sources and tf.data pipelines."""
