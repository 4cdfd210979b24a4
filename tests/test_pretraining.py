"""Pre-training (issue #12): NLVR-world data, MLM masking, `pretrain` and fine-tuning with `init`."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from gemini_tf.bundle import VOCAB_FILE, load
from gemini_tf.cli import main
from gemini_tf.data.corpus import read_texts
from gemini_tf.data.report import DataError
from gemini_tf.data.sources import NLVRWorldSource, open_source
from gemini_tf.models.gemini import MODEL_PARTS, gemini_model
from gemini_tf.models.masked_lm import TextMaskedLM
from gemini_tf.preprocessing.masking import mask_generator, masked_dataset
from gemini_tf.preprocessing.text import CLS, PAD, SEP, TextPreprocessor, learn_vocabulary
from gemini_tf.training import train
from gemini_tf.training.pretrain import pretrain
from gemini_tf.training.pretrained import check_vocabulary, load_pretrained_weights

# Small enough for tests: 32x128 images (a 2x8 patch grid), 24 tokens.
SMALL = {"image_size": (32, 128), "sequence_length": 24}
FIT = {"epochs": 1, "batch_size": 16, "verbose": 0}


@pytest.fixture(scope="module")
def statements_bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain") / "statements"
    bundle = pretrain(str(out), "statements", scenes=64, validation_scenes=32, config_overrides=SMALL, **FIT)
    return str(out), bundle


@pytest.fixture(scope="module")
def mlm_bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain") / "mlm"
    bundle = pretrain(str(out), "mlm", texts=["nlvr_world"], scenes=400, config_overrides=SMALL, **FIT)
    return str(out), bundle


def test_world_source_gives_a_true_statement_and_its_false_twin_per_scene():
    source = NLVRWorldSource({"train": 20, "validation": 10}, image_size=(32, 128))
    groups = source.groups("train")
    assert groups.images.shape == (20, 32, 128, 3) and groups.images.dtype == np.uint8
    assert all(len(group) == 2 and group[0] != group[1] for group in groups.texts)
    pairs = source.pairs("train")
    assert len(pairs) == 40 and pairs.labels.tolist() == [1, 0] * 20
    assert not set(source.groups("validation").texts[0]) <= set(sum(groups.texts, []))  # other scenes
    spec = {key: value for key, value in source.spec().items() if key != "kind"}
    assert isinstance(open_source(source.spec()), NLVRWorldSource)
    again = NLVRWorldSource({"train": 20}, **spec).groups("train")
    assert np.array_equal(again.images, groups.images) and again.texts == groups.texts


def test_mask_generator_never_masks_cls_sep_or_pad():
    texts = read_texts(["nlvr_world"], scenes=200)
    preprocessor = TextPreprocessor(learn_vocabulary(texts, 300), sequence_length=24)
    special = [preprocessor.vocabulary.index(token) for token in (PAD, CLS, SEP)]
    generator = mask_generator(preprocessor, rate=0.5)  # many masks per text: many chances to go wrong
    token_ids = preprocessor(texts)
    masked = generator(token_ids)
    positions, weights = masked["mask_positions"].numpy(), masked["mask_weights"].numpy()
    chosen = np.take_along_axis(token_ids.numpy(), positions, axis=1)[weights > 0]
    assert chosen.size > len(texts)  # masks were drawn
    assert not np.isin(chosen, special).any()
    assert np.array_equal(masked["mask_ids"].numpy()[weights > 0], chosen)  # targets are the original tokens


def test_masked_lm_head_is_tied_to_the_text_encoder_embeddings():
    texts = read_texts(["nlvr_world"], scenes=100)
    preprocessor = TextPreprocessor(learn_vocabulary(texts, 300), sequence_length=24)
    model = gemini_model("tiny", vocabulary_size=preprocessor.vocabulary_size, sequence_length=24)
    masked_lm = TextMaskedLM(model.text_encoder)
    inputs, _, _ = next(iter(masked_dataset(texts, preprocessor, batch_size=8)))
    logits = masked_lm(inputs)
    assert logits.shape[-1] == preprocessor.vocabulary_size
    embedding = model.text_encoder.get_layer("token_and_position_embedding").token_embedding
    assert masked_lm.mlm_head.token_embedding is embedding
    own_kernels = [w for w in masked_lm.mlm_head.weights if len(w.shape) == 2 and w.path != embedding.embeddings.path]
    assert all(preprocessor.vocabulary_size not in w.shape for w in own_kernels)  # the output projection is tied


def test_mlm_pretraining_hands_on_only_the_text_encoder(mlm_bundle):
    path, bundle = mlm_bundle
    assert bundle.trained_parts == ("text_encoder",)
    assert 0.0 <= bundle.metrics["masked_accuracy"] <= 1.0
    reloaded = load(path)
    assert reloaded.trained_parts == ("text_encoder",) and reloaded.pretraining["objective"] == "mlm"


def test_statement_pretraining_saves_a_classifier_of_every_part(statements_bundle):
    path, bundle = statements_bundle
    assert bundle.config.task == "classify" and bundle.config.image_size == (32, 128)
    assert bundle.trained_parts == MODEL_PARTS and "accuracy" in bundle.metrics
    assert load(path).pretraining["objective"] == "statements"


def test_init_really_loads_the_pretrained_weights(statements_bundle):
    path, pretrained = statements_bundle
    keras.utils.set_random_seed(1)
    fresh = gemini_model(pretrained.config)
    loaded = gemini_model(pretrained.config)
    assert load_pretrained_weights(loaded, pretrained, path) == MODEL_PARTS
    groups = NLVRWorldSource({"test": 8}, seed=5, image_size=(32, 128)).groups("test")
    token_ids = pretrained.preprocessor([g[0] for g in groups.texts])
    inputs = [token_ids, tf.constant(groups.images, tf.float32) / 255.0]
    expected = np.asarray(pretrained.model(inputs))
    np.testing.assert_allclose(np.asarray(loaded(inputs)), expected, atol=1e-6)
    assert np.abs(np.asarray(fresh(inputs)) - expected).max() > 1e-4


def test_fine_tuning_keeps_vocabulary_and_frozen_weights(statements_bundle, tmp_path):
    path, pretrained = statements_bundle
    tuned = train(str(tmp_path / "tuned"), "nlvr_world", task="classify", matching="binary", init=path,
                  freeze="text", train_scenes=32, validation_scenes=16, **FIT)  # fmt: skip
    assert tuned.preprocessor.vocabulary == pretrained.preprocessor.vocabulary
    for before, after in zip(pretrained.model.text_encoder.get_weights(), tuned.model.text_encoder.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert any(
        not np.array_equal(b, a)
        for b, a in zip(pretrained.model.image_encoder.get_weights(), tuned.model.image_encoder.get_weights())
    )
    assert tuned.model.text_encoder.trainable  # unfrozen again in the saved model
    assert load(str(tmp_path / "tuned")).pretraining["init_parts"] == list(MODEL_PARTS)


@pytest.mark.slow
def test_init_from_mlm_copies_the_text_encoder(mlm_bundle, tmp_path):
    path, pretrained = mlm_bundle
    tuned = pretrain(str(tmp_path / "both"), "statements", init=path, scenes=32, validation_scenes=16, **FIT)
    assert tuned.pretraining["init_parts"] == ("text_encoder",)
    assert tuned.preprocessor.vocabulary == pretrained.preprocessor.vocabulary


def test_mismatched_vocabulary_fails_clearly(statements_bundle, tmp_path):
    path, pretrained = statements_bundle
    other = learn_vocabulary(["a completely different corpus of words"] * 10, 100)
    with pytest.raises(ValueError, match="vocabulary differs from the pre-trained one"):
        check_vocabulary(pretrained, path, other)
    with pytest.raises(ValueError, match="keeps its .*-token vocabulary"):
        train(str(tmp_path / "x"), "nlvr_world", task="classify", init=path, vocabulary_size=50, **FIT)


def test_a_vocabulary_that_is_not_the_models_fails_clearly(statements_bundle, tmp_path):
    import shutil

    path, _ = statements_bundle
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    vocabulary = (copy / VOCAB_FILE).read_text().splitlines()
    (copy / VOCAB_FILE).write_text("\n".join(vocabulary[:-5]) + "\n")
    with pytest.raises(ValueError, match="does not belong to its model.keras"):
        train(str(tmp_path / "x"), "nlvr_world", task="classify", init=str(copy), **FIT)


def test_cli_init_with_another_architecture_is_one_clear_line(statements_bundle, tmp_path, capsys):
    path, _ = statements_bundle
    argv = ["train", "--task", "classify", "--data", "nlvr_world", "--init", path, "--preset", "small"]
    assert main([*argv, "--output-dir", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "was pre-trained with hidden_dim 64 (asked: 128)" in err and "Traceback" not in err


@pytest.mark.slow  # CI time: run by `make test-slow`
def test_cli_pretrain_then_train_init(tmp_path, capsys):
    world = tmp_path / "world"
    size = ["--image-size", "32", "128", "--sequence-length", "24"]
    run = ["--epochs", "1", "--batch-size", "16", "--quiet"]
    assert main(["pretrain", "--scenes", "48", *size, *run, "--output-dir", str(world)]) == 0
    assert "train --init" in capsys.readouterr().out
    argv = ["train", "--task", "classify", "--data", "nlvr_world", "--init", str(world), "--freeze", "image"]
    assert (
        main([*argv, "--train-scenes", "32", "--validation-scenes", "16", *run, "--output-dir", str(tmp_path / "t")])
        == 0
    )
    meta = json.loads((tmp_path / "t" / "gemini_tf.json").read_text())
    assert meta["pretraining"]["freeze"] == "image" and meta["config"]["image_size"] == [32, 128]


def test_read_texts_from_files_datasets_and_generators(tmp_path):
    file = tmp_path / "corpus.txt"
    file.write_text("a dog runs\n\nA dog runs\na dog runs\n")
    assert read_texts([str(file)]) == ["a dog runs", "A dog runs"]  # distinct, in order, no blank lines
    assert len(read_texts(["nlvr_world"], scenes=10)) > 5
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(DataError, match="no text in the file"):
        read_texts([str(tmp_path / "empty.txt")])
    with pytest.raises(FileNotFoundError, match="No such text file"):
        read_texts([str(tmp_path / "missing.txt")])


def test_mlm_without_text_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="needs text"):
        pretrain(str(tmp_path / "m"), "mlm", **FIT)


def test_the_masked_dataset_is_batched_and_weighted():
    texts = read_texts(["nlvr_world"], scenes=50)
    preprocessor = TextPreprocessor(learn_vocabulary(texts, 300), sequence_length=24)
    inputs, ids, weights = next(iter(masked_dataset(texts, preprocessor, batch_size=4)))
    assert inputs["token_ids"].shape == (4, 24) and ids.shape == weights.shape == inputs["mask_positions"].shape
    assert weights.dtype == tf.float32 and float(tf.reduce_sum(weights)) >= 4


def test_masked_lm_round_trips_through_keras_file(tmp_path):
    texts = read_texts(["nlvr_world"], scenes=50)
    preprocessor = TextPreprocessor(learn_vocabulary(texts, 300), sequence_length=24)
    model = gemini_model("tiny", vocabulary_size=preprocessor.vocabulary_size, sequence_length=24)
    masked_lm = TextMaskedLM(model.text_encoder)
    inputs, _, _ = next(iter(masked_dataset(texts, preprocessor, batch_size=4)))
    masked_lm.save(tmp_path / "mlm.keras")
    restored = keras.saving.load_model(tmp_path / "mlm.keras")
    np.testing.assert_allclose(np.asarray(restored(inputs)), np.asarray(masked_lm(inputs)), atol=1e-6)


def test_contrast_groups_pair_each_true_image_with_a_false_one_of_the_same_text():
    from gemini_tf.data.labelled import LabelledPairs

    texts = ["two towers", "two towers", "two towers", "a blue block", "a blue block", "only true"]
    pairs = LabelledPairs([f"img{i}.png" for i in range(6)], texts, [1, 0, 1, 0, 1, 1])
    groups = pairs.contrast_groups(seed=0)
    assert groups.texts == ["two towers", "two towers", "a blue block"]  # "only true" has no false image
    assert groups.images == [["img0.png", "img1.png"], ["img2.png", "img1.png"], ["img4.png", "img3.png"]]
    with pytest.raises(ValueError, match="No text is labelled both true"):
        LabelledPairs(["a.png", "b.png"], ["x", "y"], [1, 0]).contrast_groups()


@pytest.mark.slow  # CI time: run by `make test-slow`
def test_image_listwise_trainer_learns_which_image_a_text_is_true_of():
    from gemini_tf.data.labelled import LabelledPairs
    from gemini_tf.models.listwise_trainer import ImageListwiseTrainer

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    bright, dark = np.full((32, 32, 32, 3), 230, np.uint8), np.full((32, 32, 32, 3), 20, np.uint8)
    bright[:, :, :, 1:] = rng.integers(0, 40, (32, 32, 32, 2))  # a little noise, same rule
    texts = ["it is bright"] * 64 + ["it is dark"] * 64  # each true of one kind of image, false of the other
    images = np.concatenate([bright, dark, dark, bright])
    labels = [1] * 32 + [0] * 32 + [1] * 32 + [0] * 32
    groups = LabelledPairs(images, texts, labels).contrast_groups()
    assert groups.images.shape == (64, 2, 32, 32, 3)
    preprocessor = TextPreprocessor(learn_vocabulary(texts, 50), sequence_length=8)
    model = gemini_model("tiny", vocabulary_size=preprocessor.vocabulary_size, image_size=(32, 32),
                         sequence_length=8, task="classify")  # fmt: skip
    trainer = ImageListwiseTrainer(model)
    trainer.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = trainer.fit(groups.dataset(preprocessor, (32, 32), 16, shuffle=True), epochs=15, verbose=0)
    assert history.history["group_accuracy"][-1] == 1.0


def _save_bert_preset(path, vocabulary, hidden_dim: int = 64):
    import keras_hub

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary), num_layers=1, num_heads=4, hidden_dim=hidden_dim, intermediate_dim=128,
        max_sequence_length=32,
    )  # fmt: skip
    backbone.save_to_preset(str(path))
    keras_hub.models.BertTokenizer(vocabulary=vocabulary).save_to_preset(str(path))
    return backbone


@pytest.mark.slow
def test_init_from_a_keras_hub_preset_takes_its_vocabulary_and_text_weights(tmp_path):
    vocabulary = learn_vocabulary(read_texts(["nlvr_world"], scenes=100), 200)
    backbone = _save_bert_preset(tmp_path / "bert", vocabulary)
    start = {"init": str(tmp_path / "bert"), "freeze": "text", "config_overrides": SMALL}
    tuned = train(str(tmp_path / "tuned"), "nlvr_world", task="classify", matching="binary", train_scenes=32,
                  validation_scenes=16, **start, **FIT)  # fmt: skip
    assert tuned.preprocessor.vocabulary == vocabulary
    embedding = tuned.model.text_encoder.get_layer("token_and_position_embedding")
    np.testing.assert_array_equal(embedding.token_embedding.embeddings, backbone.token_embedding.embeddings)
    positions = backbone.position_embedding.get_weights()[0][:24] + backbone.segment_embedding.get_weights()[0][0]
    np.testing.assert_allclose(embedding.position_embedding.get_weights()[0], positions, atol=1e-6)
    assert tuned.pretraining["init_parts"] == ("text_encoder",)


def test_a_keras_hub_preset_of_another_width_fails_clearly(tmp_path):
    vocabulary = learn_vocabulary(read_texts(["nlvr_world"], scenes=100), 200)
    _save_bert_preset(tmp_path / "bert", vocabulary, hidden_dim=32)
    with pytest.raises(ValueError, match="whose hidden size matches the preset's"):
        train(str(tmp_path / "x"), "nlvr_world", task="classify", init=str(tmp_path / "bert"), config_overrides=SMALL,
              train_scenes=32, validation_scenes=16, **FIT)  # fmt: skip
