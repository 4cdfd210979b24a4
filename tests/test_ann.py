import numpy as np
import pytest

from gemini_tf.retrieval import Index


def clustered(n, d=16, clusters=20, seed=0):
    """Normalised draws around a few random directions, like real embeddings."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, d))
    x = centers[rng.integers(clusters, size=n)] + 0.5 * rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype("float32")


def gallery(n, **kwargs):
    return Index(clustered(n), [f"img_{i}.jpg" for i in range(n)], "image", **kwargs)


def test_ann_recall_against_exact_search():
    index, exact = gallery(2000, search_mode="ann"), gallery(2000, search_mode="exact")
    queries = clustered(50, seed=1)
    rows, scores = index.search(queries, k=10)
    truth, _ = exact.search(queries, k=10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(rows, truth)])
    assert recall >= 0.9
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", queries, index.embeddings[rows]), rtol=1e-6)
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_auto_mode_switches_at_the_threshold():
    assert gallery(99, ann_threshold=100).search_mode == "exact"
    assert gallery(100, ann_threshold=100).search_mode == "ann"
    with pytest.raises(ValueError, match="search_mode"):
        gallery(10, search_mode="fast")


def test_ann_index_save_load_round_trip(tmp_path):
    index = gallery(500, search_mode="ann")
    path = str(tmp_path / "gallery.npz")
    index.save(path)
    loaded = Index.load(path)
    assert loaded.search_mode == "ann" and loaded.ann.params == index.ann.params
    queries = clustered(5, seed=2)
    for got, expected in zip(loaded.search(queries, k=10), index.search(queries, k=10)):
        np.testing.assert_array_equal(got, expected)


def test_index_file_without_search_mode_loads_as_exact(tmp_path):
    embeddings = clustered(300)
    path = str(tmp_path / "old.npz")
    np.savez(path, embeddings=embeddings, ids=np.asarray([str(i) for i in range(300)]), kind=np.asarray("image"))
    loaded = Index.load(path)
    assert loaded.search_mode == "exact" and loaded.ann is None
    rows, _ = loaded.search(embeddings[:3], k=1)
    np.testing.assert_array_equal(rows[:, 0], [0, 1, 2])


def test_ann_query_of_the_wrong_dimension_errors():
    with pytest.raises(ValueError, match="dimension"):
        gallery(50, search_mode="ann").search(np.zeros((1, 8), "float32"), 1)
