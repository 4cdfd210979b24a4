import numpy as np
import pytest

from gemini_tf import retrieval
from gemini_tf.retrieval import Index, recall_at_k, rerank


def brute_force_recall(similarity, image_index, k):
    i2t = []
    for image in range(similarity.shape[0]):
        top = sorted(range(similarity.shape[1]), key=lambda t: -similarity[image, t])[:k]
        i2t.append(any(image_index[t] == image for t in top))
    t2i = []
    for text in range(similarity.shape[1]):
        top = sorted(range(similarity.shape[0]), key=lambda i: -similarity[i, text])[:k]
        t2i.append(image_index[text] in top)
    return np.mean(i2t), np.mean(t2i)


def test_recall_at_k_matches_brute_force_with_five_captions_per_image():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(40, 8))
    image_index = np.repeat(np.arange(40), 5)
    texts = images[image_index] + rng.normal(scale=2.0, size=(200, 8))  # noisy captions
    similarity = images @ texts.T
    result = recall_at_k(similarity, image_index)
    for k in (1, 5, 10):
        i2t, t2i = brute_force_recall(similarity, image_index, k)
        assert result[f"i2t_r{k}"] == pytest.approx(i2t)
        assert result[f"t2i_r{k}"] == pytest.approx(t2i)
    assert result["r_mean"] == pytest.approx(np.mean([result[k] for k in result if k != "r_mean"]))
    assert 0 < result["t2i_r1"] < result["t2i_r10"] < 1  # the fixture is neither trivial nor hopeless


def test_perfect_embeddings_give_recall_one():
    image_index = np.array([0, 0, 1, 2, 2])
    similarity = (np.arange(3)[:, None] == image_index[None, :]).astype(float)
    assert recall_at_k(similarity, image_index)["r_mean"] == 1.0


def test_rerank_only_reorders_within_the_top_k():
    rng = np.random.default_rng(1)
    similarity = rng.normal(size=(6, 30))
    itm = rng.normal(size=(6, 30))
    reranked = rerank(similarity, lambda rows, cols: itm[rows, cols], k=5, scale=3.0)
    before = np.argsort(-similarity, axis=1)
    after = np.argsort(-reranked, axis=1)
    for row in range(6):
        assert set(after[row, :5]) == set(before[row, :5])
        np.testing.assert_array_equal(after[row, 5:], before[row, 5:])
        top = after[row, :5]
        assert np.all(np.diff(itm[row, top] + 3.0 * similarity[row, top]) <= 0)  # ITM + ITC logits


def test_index_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    embeddings = rng.normal(size=(10, 4)).astype("float32")
    index = Index(embeddings, [f"img_{i}.jpg" for i in range(10)], "image")
    path = str(tmp_path / "gallery.npz")
    index.save(path)
    loaded = Index.load(path)
    np.testing.assert_array_equal(loaded.embeddings, embeddings)
    assert loaded.ids == index.ids and loaded.kind == "image"
    rows, scores = loaded.search(embeddings[3:4], k=3)
    assert rows[0, 0] == np.argmax(embeddings @ embeddings[3])
    assert np.all(np.diff(scores[0]) <= 0)


def test_bad_index_file_and_dimension_mismatch(tmp_path):
    path = tmp_path / "not_an_index.npz"
    np.savez(path, something=np.zeros(3))
    with pytest.raises(ValueError, match="not a gemini_tf index"):
        Index.load(str(path))
    index = Index(np.zeros((2, 4), "float32"), ["a", "b"], "text")
    with pytest.raises(ValueError, match="dimension"):
        index.search(np.zeros((1, 8)), 1)


def test_index_and_query_with_a_trained_bundle(contrastive_bundle, tmp_path):
    from gemini_tf.data import shapes

    pairs = shapes.make_pairs(12, "test", seed=3)
    texts = [t for t, label in zip(pairs.texts, pairs.labels) if label == 1][:10]
    index = retrieval.build_index(contrastive_bundle, texts, "text")
    assert index.embeddings.shape == (10, contrastive_bundle.config.embedding_dim)
    np.testing.assert_allclose(np.linalg.norm(index.embeddings, axis=1), 1.0, atol=1e-5)
    image_path = str(tmp_path / "scene.png")
    from PIL import Image

    Image.fromarray(pairs.images[0]).save(image_path)
    hits = retrieval.query(contrastive_bundle, index, image=image_path, k=3)
    assert len(hits) == 3 and hits[0][1] >= hits[1][1] >= hits[2][1]
    reranked = retrieval.query(contrastive_bundle, index, image=image_path, k=3, rerank_k=5)
    plain_top5 = {i for i, _ in retrieval.query(contrastive_bundle, index, image=image_path, k=5)}
    assert {i for i, _ in reranked} <= plain_top5
    assert all(np.isfinite(s) for _, s in reranked)
    with pytest.raises(ValueError, match="needs an index of images"):
        retrieval.query(contrastive_bundle, index, text="a red circle")


def test_gallery_embeddings_match_the_training_preprocessing(contrastive_bundle):
    from gemini_tf.data import shapes
    from gemini_tf.preprocessing.image import resize_and_scale

    images = shapes.make_pairs(6, "test", seed=4).images[:6]
    model, size = contrastive_bundle.model, contrastive_bundle.config.image_size
    expected = np.asarray(model.embed_images(resize_and_scale(images, size)))
    np.testing.assert_allclose(retrieval.embed_images(model, images, size), expected, atol=1e-5)
    with pytest.raises(ValueError, match="uint8"):
        retrieval.embed_images(model, images / 255.0, size)  # already scaled: refused, not rescaled


def test_evaluation_scores_pairs_exactly_as_training_does(contrastive_bundle):
    """Retrieval must see images and texts exactly as `fit` did: Recall@K computed from
    the gallery path equals Recall@K of the training forward pass on the same batch."""
    from gemini_tf.data import pipeline, shapes
    from gemini_tf.models.contrastive_trainer import ContrastiveTrainer

    pairs = shapes.make_pairs(40, "train", seed=0)
    keep = pairs.labels == 1
    images, texts = pairs.images[keep][:32], [t for t, k in zip(pairs.texts, keep) if k][:32]
    bundle = contrastive_bundle
    (batch,) = next(
        iter(
            pipeline.from_captions(
                images, texts, np.arange(32), bundle.preprocessor, bundle.config.image_size, batch_size=32
            )
        )
    )
    training_similarity = np.asarray(ContrastiveTrainer(bundle.model)(batch)["similarity"])
    result = retrieval.evaluate_retrieval(
        bundle.model, bundle.preprocessor, images, texts, np.arange(32), bundle.config.image_size
    )
    assert result["itc"] == recall_at_k(training_similarity, np.arange(32))


def test_dev_itm_accuracy_is_on_negatives_mined_by_the_evaluated_model(contrastive_bundle):
    """`itm_mined` scores each caption against its own image and the other image *this model's*
    ITC ranks highest for it (issue #13), with *this model's* ITM head."""
    from gemini_tf.data import shapes

    pairs = shapes.make_pairs(24, "test", seed=5)
    keep = pairs.labels == 1
    images, texts = pairs.images[keep], [t for t, k in zip(pairs.texts, keep) if k]
    image_index = np.arange(len(texts))
    model, size = contrastive_bundle.model, contrastive_bundle.config.image_size
    scores = retrieval.score_gallery(model, contrastive_bundle.preprocessor, images, texts, size, k_test=4)
    mined = retrieval.hardest_negative_images(scores.similarity, image_index)
    for t in range(len(texts)):  # the hardest other image by this model's own similarities
        others = np.delete(np.arange(len(images)), image_index[t])
        assert mined[t] == others[np.argmax(scores.similarity[others, t])]
    negative_logits = scores.score(np.arange(len(texts)), mined)
    result = retrieval.evaluate_retrieval(
        model, contrastive_bundle.preprocessor, images, texts, image_index, size, k_test=4
    )
    assert result["itm_mined"]["negatives_rejected"] == pytest.approx(np.mean(negative_logits <= 0))
    changed = scores.reranked_queries()
    unchanged = np.setdiff1d(np.arange(len(texts)), changed)
    assert np.all(scores.t2i[:, changed].argmax(0) != scores.similarity[:, changed].argmax(0))
    assert np.all(scores.t2i[:, unchanged].argmax(0) == scores.similarity[:, unchanged].argmax(0))
