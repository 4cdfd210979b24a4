"""Mixed precision: bfloat16 compute, float32 weights, losses and logits; float32 bundles."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import gemini_tf
from gemini_tf.data import shapes
from gemini_tf.models.gemini import gemini_model
from gemini_tf.models.listwise_trainer import ListwiseTrainer
from gemini_tf.training import FitSettings, train
from gemini_tf.training.loop import PRECISIONS, precision_policy


def dense_layers(model: keras.Model) -> list[keras.layers.Dense]:
    return [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.Dense)]


def test_mixed_bfloat16_computes_in_bfloat16_with_float32_losses(preprocessor):
    keras.utils.set_random_seed(0)
    groups = shapes.make_groups(8, "train", seed=2, group_size=3)
    dataset = groups.dataset(preprocessor, (64, 64), batch_size=4)
    with precision_policy("mixed_bfloat16"):
        model = gemini_model("tiny", vocabulary_size=preprocessor.vocabulary_size, fusion="grounded")
        trainer = ListwiseTrainer(model)
    assert keras.config.dtype_policy().name == "float32"  # restored
    trainer.compile(keras.optimizers.Adam(1e-3))
    history = trainer.fit(dataset, epochs=1, verbose=0)  # 2 steps
    assert np.isfinite(history.history["loss"]).all()

    encoder_dense = dense_layers(model.text_encoder) + dense_layers(model.image_encoder) + dense_layers(model.fusion)
    assert encoder_dense and {layer.compute_dtype for layer in encoder_dense} == {"bfloat16"}
    assert {v.dtype for v in model.weights} == {"float32"}
    for layer in (model.head, model.head.dense, model.text_projection, model.image_projection, model.contrastive_head):
        assert layer.compute_dtype == "float32", layer.name
    x, y = next(iter(dataset))
    y_pred = trainer(x, training=True)
    assert y_pred["logits"].dtype == "float32" and y_pred["similarity"].dtype == "float32"
    assert trainer.compute_loss(y=y, y_pred=y_pred).dtype == "float32"


def test_precision_policy_is_restored_on_error():
    with pytest.raises(RuntimeError), precision_policy("mixed_bfloat16"):
        raise RuntimeError("interrupted")
    assert keras.config.dtype_policy().name == "float32"
    with pytest.raises(ValueError, match="Unknown precision 'float16'"):
        FitSettings(precision="float16")
    assert PRECISIONS == ("float32", "mixed_bfloat16")


@pytest.mark.slow  # CI time: ~1 min; `make test-slow` runs it
def test_mixed_bfloat16_training_saves_a_float32_bundle(tmp_path):
    bundle = train(
        str(tmp_path),
        matching="contrastive",
        train_scenes=64,
        validation_scenes=16,
        epochs=1,
        batch_size=16,
        precision="mixed_bfloat16",
        verbose=0,
    )
    assert keras.config.dtype_policy().name == "float32"
    loaded = gemini_tf.load(str(tmp_path))
    assert {layer.compute_dtype for layer in loaded.model._flatten_layers()} == {"float32"}

    # The trained model: the same weights under the training policy.
    with precision_policy("mixed_bfloat16"):
        trained = gemini_model(bundle.config)
    trained.set_weights(loaded.model.get_weights())
    assert dense_layers(trained.text_encoder)[0].compute_dtype == "bfloat16"
    pairs = shapes.make_pairs(16, "validation", seed=3)
    token_ids = loaded.preprocessor(tf.constant(pairs.texts))
    images = pairs.images.astype("float32") / 255.0
    np.testing.assert_allclose(
        loaded.model.predict([token_ids, images], verbose=0),
        trained.predict([token_ids, images], verbose=0),
        atol=0.05,
    )
    np.testing.assert_allclose(loaded.model.embed_images(images), trained.embed_images(images), atol=0.05)
