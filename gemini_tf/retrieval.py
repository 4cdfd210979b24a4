"""Retrieval: embed galleries, save/load an index, query by text or image, re-rank with ITM.

Works with any model that has `embed_texts(token_ids)` and `embed_images(images)`
returning L2-normalised vectors and a contrastive `scale`: a `GeminiModel` and
the keras-hub CLIP peer (`baselines.clip.ClipMatcher`); re-ranking also needs
the `GeminiModel`'s `match_logits`.
Re-ranking (ALBEF's `k_test`) scores only the top k of each query with the
fusion ITM head, so it reorders within the top k and never changes which items
are in it. A re-ranked item's score is the ITM logit plus the ITC logit
(learned scale x cosine), a product of the two experts as in BLIP's
evaluation (which adds ITM probability and cosine): a confident ITM head
reorders, an unsure one (logit near 0) leaves the ITC order.
Search is exact (one matrix product) for galleries below `ANN_THRESHOLD` and
approximate (`gemini_tf.ann`, a faiss IVF index) above it, or as asked.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from gemini_tf.ann import IvfParams, IvfSearcher
from gemini_tf.data.pipeline import check_texts
from gemini_tf.preprocessing.image import load_images, resize_and_scale
from gemini_tf.preprocessing.text import TextPreprocessor

KINDS = ("image", "text")
SEARCH_MODES = ("auto", "exact", "ann")
ANN_THRESHOLD = 100_000  # "auto" galleries from this size on use ANN search
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp")
RERANK_OFFSET = 1e4  # re-ranked scores sit above every cosine similarity


def _batches(count: int, batch_size: int, desc: str, progress: bool):
    starts = range(0, count, batch_size)
    return tqdm(starts, desc=desc, disable=not progress, total=len(starts))


def embed_texts(
    model, preprocessor: TextPreprocessor, texts: Sequence[str], batch_size: int = 256, progress: bool = False
) -> np.ndarray:
    """Texts -> [N, D] normalised embeddings, in batches."""
    texts = check_texts(texts)
    out = [
        np.asarray(model.embed_texts(preprocessor(texts[i : i + batch_size])))
        for i in _batches(len(texts), batch_size, "embedding texts", progress)
    ]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def embed_images(
    model, images, image_size: tuple[int, int], batch_size: int = 128, progress: bool = False
) -> np.ndarray:
    """Image file paths or uint8 arrays [N, H, W, 3] -> [N, D] normalised embeddings.

    Pixels go through the shared `resize_and_scale`, so pass raw 0..255 images,
    never already-scaled floats.
    """
    if not isinstance(images, (list, tuple)) and np.asarray(images).dtype != np.uint8:
        raise ValueError(f"embed_images takes file paths or uint8 images (0..255), got {np.asarray(images).dtype}.")
    out = []
    for i in _batches(len(images), batch_size, "embedding images", progress):
        chunk = images[i : i + batch_size]
        pixels = (
            load_images(list(chunk), image_size)
            if isinstance(chunk[0], str)
            else resize_and_scale(np.asarray(chunk), image_size)
        )
        out.append(np.asarray(model.embed_images(pixels)))
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _best_first(rows: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorts each query's (row, score) pairs by score, ties by row."""
    order = np.lexsort((rows, -scores))
    return np.take_along_axis(rows, order, axis=1), np.take_along_axis(scores, order, axis=1)


def _exact_top_k(queries: np.ndarray, embeddings: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = queries @ embeddings.T
    rows = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return _best_first(rows, np.take_along_axis(scores, rows, axis=1))


@dataclasses.dataclass
class Index:
    """Embeddings [N, D] of a gallery, with the id (file path or text) of each row.

    `search_mode` is "exact", "ann" (approximate, `gemini_tf.ann`) or "auto":
    ANN from `ann_threshold` rows on, exact below; "auto" resolves when the
    index is made. `ann` is the IVF index, built here unless given.
    """

    embeddings: np.ndarray
    ids: list[str]
    kind: str
    search_mode: str = "auto"
    ann_threshold: int = ANN_THRESHOLD
    ann: IvfSearcher | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Index kind must be one of {KINDS}, got {self.kind!r}.")
        if len(self.ids) != len(self.embeddings):
            raise ValueError(f"{len(self.ids)} ids for {len(self.embeddings)} embeddings.")
        if self.search_mode not in SEARCH_MODES:
            raise ValueError(f"search_mode must be one of {SEARCH_MODES}, got {self.search_mode!r}.")
        if self.search_mode == "auto":
            self.search_mode = "ann" if len(self) >= self.ann_threshold else "exact"
        if self.search_mode == "exact":
            self.ann = None
        elif self.ann is None:
            self.ann = IvfSearcher.build(self.embeddings)
        elif len(self.ann) != len(self):
            raise ValueError(f"The ANN index holds {len(self.ann)} vectors for {len(self)} embeddings.")

    def __len__(self) -> int:
        return len(self.ids)

    def save(self, path: str) -> None:
        """Writes one .npz with the embeddings, ids, kind, search mode and, for ANN, the IVF index.

        The IVF index is stored (faiss's serialisation, as a uint8 array)
        rather than rebuilt on load: reading it takes seconds where its k-means
        for 1M rows takes minutes, and a multi-threaded k-means is not
        bit-reproducible.
        One file can't lose a sidecar, and as the embeddings stay in it,
        versions without ANN still read it (as an exact index).
        """
        arrays = {
            "embeddings": self.embeddings.astype(np.float32),
            "ids": np.asarray(self.ids),
            "kind": np.asarray(self.kind),
            "search_mode": np.asarray(self.search_mode),
        }
        if self.ann is not None:
            arrays["ann_index"] = self.ann.to_bytes()
            arrays["ann_params"] = np.asarray(json.dumps(dataclasses.asdict(self.ann.params)))
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: str) -> Index:
        """Reads `save`'s file; files written before ANN search load as exact."""
        try:
            with np.load(path, allow_pickle=False) as data:
                mode = str(data["search_mode"]) if "search_mode" in data.files else "exact"
                ann = None
                if mode == "ann":
                    params = IvfParams(**json.loads(str(data["ann_params"])))
                    ann = IvfSearcher.from_bytes(data["ann_index"], params)
                return cls(data["embeddings"], [str(i) for i in data["ids"]], str(data["kind"]), mode, ann=ann)
        except (KeyError, ValueError, OSError) as error:
            raise ValueError(f"{path} is not a gemini_tf index (.npz from `gemini-tf index`): {error}") from error

    def search(self, queries: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows [Q, k] and cosine scores [Q, k] for query embeddings [Q, D].

        ANN candidates are re-scored against the stored embeddings, so scores
        are the same cosines exact search gives; a query whose cells hold fewer
        than k rows is searched exactly.
        """
        if queries.shape[-1] != self.embeddings.shape[-1]:
            raise ValueError(
                f"Query dimension {queries.shape[-1]} != index dimension "
                f"{self.embeddings.shape[-1]}: was the index built with this model?"
            )
        k = min(k, len(self))
        if self.ann is None:
            return _exact_top_k(queries, self.embeddings, k)
        rows = self.ann.search(queries, k)
        rows, scores = _best_first(rows, np.einsum("qd,qkd->qk", queries, self.embeddings[rows]))
        missing = (rows < 0).any(axis=1)
        if missing.any():
            rows[missing], scores[missing] = _exact_top_k(queries[missing], self.embeddings, k)
        return rows, scores


def recall_at_k(similarity: np.ndarray, image_index: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Recall@K both ways from similarity [n_images, n_texts]; `image_index[t]` is text t's image.

    image->text is correct if any of the image's captions is in its top K;
    text->image if the text's own image is. `r_mean` averages all six.
    """
    image_index = np.asarray(image_index)
    ranks_t2i = np.argsort(-similarity.T, axis=1, kind="stable")
    # Position of the true image in each text's ranking.
    t2i_rank = np.argmax(ranks_t2i == image_index[:, None], axis=1)
    ranks_i2t = np.argsort(-similarity, axis=1, kind="stable")
    correct = image_index[ranks_i2t] == np.arange(len(similarity))[:, None]
    i2t_rank = np.argmax(correct, axis=1)
    result = {}
    for k in ks:
        result[f"i2t_r{k}"] = float(np.mean(i2t_rank < k))
    for k in ks:
        result[f"t2i_r{k}"] = float(np.mean(t2i_rank < k))
    result["r_mean"] = float(np.mean(list(result.values())))
    return result


def rerank(similarity: np.ndarray, match_logits, k: int, scale: float = 1.0) -> np.ndarray:
    """Re-ranks each row's top k by `match_logits(rows, cols)` + scale x similarity; the
    other entries keep their order below. Returns the new score matrix (same shape)."""
    top = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    rows, cols = np.repeat(np.arange(len(similarity)), top.shape[1]), top.reshape(-1)
    logits = np.asarray(match_logits(rows, cols), np.float64)
    reranked = similarity.astype(np.float64).copy()
    reranked[rows, cols] = RERANK_OFFSET + logits + scale * similarity[rows, cols]
    return reranked


def hardest_negative_images(similarity: np.ndarray, image_index: np.ndarray) -> np.ndarray:
    """For each text (column of similarity [n_images, n_texts]), the other image it is most similar to."""
    masked = similarity.astype(np.float64).copy()
    masked[np.asarray(image_index), np.arange(similarity.shape[1])] = -np.inf
    return np.argmax(masked, axis=0)


def mined_itm_accuracy(similarity: np.ndarray, image_index: np.ndarray, score) -> dict[str, float]:
    """Balanced ITM accuracy on mined pairs: each text against its own image and against the
    hardest other image by the same model's ITC `similarity` (`hardest_negative_images`), scored
    by `score(text_rows, image_rows)` -> logits (match when > 0)."""
    image_index = np.asarray(image_index)
    texts = np.arange(similarity.shape[1])
    positive = np.asarray(score(texts, image_index)) > 0
    negative = np.asarray(score(texts, hardest_negative_images(similarity, image_index))) > 0
    return {
        "balanced_accuracy": 0.5 * (float(np.mean(positive)) + float(np.mean(~negative))),
        "positives_accepted": float(np.mean(positive)),
        "negatives_rejected": float(np.mean(~negative)),
    }


def itm_scorer(model, token_ids: np.ndarray, images: np.ndarray, batch_size: int = 512, progress: bool = False):
    """A function (text rows, image rows) -> ITM logits, with each encoder run once per item."""
    text = {k: np.asarray(v) for k, v in model.text_encoder.predict(token_ids, batch_size=256, verbose=0).items()}
    image = {k: np.asarray(v) for k, v in model.image_encoder.predict(images, batch_size=128, verbose=0).items()}
    match = tf.function(model.match_logits)

    def score(text_rows: np.ndarray, image_rows: np.ndarray) -> np.ndarray:
        out = []
        for i in _batches(len(text_rows), batch_size, "ITM re-ranking", progress):
            t, v = text_rows[i : i + batch_size], image_rows[i : i + batch_size]
            out.append(
                match({k: x[t] for k, x in text.items()}, token_ids[t], {k: x[v] for k, x in image.items()}).numpy()
            )
        return np.concatenate(out)

    return score


def itc_similarity(model, preprocessor: TextPreprocessor, images, texts, image_size, progress: bool = False):
    """Cosine similarities [images, texts] of the retrieval embeddings of uint8 `images` and `texts`."""
    image_embeddings = embed_images(model, np.asarray(images), image_size, progress=progress)
    return image_embeddings @ embed_texts(model, preprocessor, texts, progress=progress).T


@dataclasses.dataclass
class GalleryScores:
    """A gallery scored both ways: ITC `similarity` [images, texts], and the same matrix with each
    image's (`i2t`) or text's (`t2i`) top k re-ranked by the ITM head; `score(text_rows, image_rows)`
    gives ITM logits of any pairs."""

    similarity: np.ndarray
    i2t: np.ndarray
    t2i: np.ndarray
    score: Callable[[np.ndarray, np.ndarray], np.ndarray]

    def reranked_queries(self) -> np.ndarray:
        """The text rows whose top image changes when the ITM head re-ranks."""
        return np.flatnonzero(self.similarity.argmax(axis=0) != self.t2i.argmax(axis=0))


def score_gallery(
    model,
    preprocessor: TextPreprocessor,
    images: np.ndarray,
    texts: Sequence[str],
    image_size: tuple[int, int],
    k_test: int,
    progress: bool = False,
) -> GalleryScores:
    """ITC similarities of uint8 `images` [N, H, W, 3] and `texts`, and their ITM re-ranking of the top `k_test`."""
    similarity = itc_similarity(model, preprocessor, images, texts, image_size, progress)
    token_ids = preprocessor(list(texts)).numpy()
    pixels = resize_and_scale(np.asarray(images), image_size).numpy()
    score = itm_scorer(model, token_ids, pixels, progress=progress)
    scale = float(model.scale)
    i2t = rerank(similarity, lambda img, txt: score(txt, img), k_test, scale)
    t2i = rerank(similarity.T, score, k_test, scale).T
    return GalleryScores(similarity, i2t, t2i, score)


def evaluate_retrieval(
    model,
    preprocessor: TextPreprocessor,
    images: np.ndarray,
    texts: Sequence[str],
    image_index: np.ndarray,
    image_size: tuple[int, int],
    k_test: int | None = None,
    progress: bool = False,
) -> dict[str, dict[str, float]]:
    """Recall@1/5/10 both ways for uint8 `images` [N, H, W, 3] and their captions
    (`image_index[t]`: text t's image row) by ITC similarity ("itc"), and with the top `k_test`
    re-ranked by the ITM head ("itc+itm", needs a model with a fusion head); then also the ITM
    head's balanced accuracy on ITC-mined negatives ("itm_mined", `mined_itm_accuracy`)."""
    if not k_test:
        similarity = itc_similarity(model, preprocessor, images, texts, image_size, progress)
        return {"itc": recall_at_k(similarity, image_index)}
    scores = score_gallery(model, preprocessor, images, texts, image_size, k_test, progress)
    both = {
        **{k: v for k, v in recall_at_k(scores.i2t, image_index).items() if k.startswith("i2t")},
        **{k: v for k, v in recall_at_k(scores.t2i, image_index).items() if k.startswith("t2i")},
    }
    both["r_mean"] = float(np.mean(list(both.values())))
    return {
        "itc": recall_at_k(scores.similarity, image_index),
        "itc+itm": both,
        "itm_mined": mined_itm_accuracy(scores.similarity, image_index, scores.score),
    }


def flat_metrics(results: dict[str, dict[str, float]]) -> dict[str, float]:
    """{"itc": {"r_mean": x}, ...} -> {"itc/r_mean": x, ...} (one level, for bundles and tables)."""
    return {f"{key}/{name}": value for key, row in results.items() for name, value in row.items()}


def check_gallery(items: Sequence[str], kind: str, search_mode: str) -> None:
    """Clear errors, before any embedding work, for an empty gallery or an unknown kind or search."""
    if kind not in KINDS:
        raise ValueError(f"Index kind must be one of {KINDS}, got {kind!r}.")
    if search_mode not in SEARCH_MODES:
        raise ValueError(f"search_mode must be one of {SEARCH_MODES}, got {search_mode!r}.")
    if not items:
        raise ValueError(f"Nothing to index: the list of {kind}s is empty.")


def build_index(
    bundle,
    items: Sequence[str],
    kind: str,
    batch_size: int = 128,
    progress: bool = False,
    search_mode: str = "auto",
) -> Index:
    """Embeds image files (kind="image") or texts (kind="text") with a bundle's model.

    `search_mode` is one of `SEARCH_MODES` (see `Index`).
    """
    check_gallery(items, kind, search_mode)
    model = bundle.model
    if kind == "image":
        embeddings = embed_images(model, list(items), bundle.config.image_size, batch_size, progress)
    else:
        embeddings = embed_texts(model, bundle.preprocessor, items, batch_size, progress)
    return Index(embeddings, [str(i) for i in items], kind, search_mode)


def query(
    bundle, index: Index, text: str | None = None, image: str | None = None, k: int = 5, rerank_k: int | None = None
) -> list[tuple[str, float]]:
    """Top-k (id, score) of `index` for one text (image index) or one image file (text index).

    Scores are cosine similarities; with `rerank_k`, the top `rerank_k` are
    re-ordered by ITM logit + ITC logit, and that sum is their score.
    """
    model = bundle.model
    if (text is None) == (image is None):
        raise ValueError("Query with exactly one of text= or image=.")
    expected = "image" if text is not None else "text"
    if index.kind != expected:
        asked = "text" if text is not None else "image"
        raise ValueError(f"A {asked} query needs an index of {expected}s; this index holds {index.kind}s.")
    if text is not None:
        embedding = embed_texts(model, bundle.preprocessor, [text])
    else:
        embedding = embed_images(model, [image], bundle.config.image_size)
    rows, scores = index.search(embedding, max(k, rerank_k or 0))
    ids, scores = [index.ids[r] for r in rows[0]], [float(s) for s in scores[0]]
    if rerank_k:
        top = ids[:rerank_k]
        probabilities = (
            bundle.predict(top, [text] * len(top)) if text is not None else bundle.predict([image] * len(top), top)
        )
        probabilities = np.clip(probabilities, 1e-7, 1 - 1e-7)
        itm_logits = np.log(probabilities) - np.log1p(-probabilities)
        combined = itm_logits + float(model.scale) * np.asarray(scores[: len(top)])
        order = np.argsort(-combined, kind="stable")
        ids = [top[i] for i in order] + ids[rerank_k:]
        scores = [float(combined[i]) for i in order] + scores[rerank_k:]
    return list(zip(ids, scores))[:k]


def image_files(paths: Sequence[str]) -> list[str]:
    """Files as given, plus the images inside any folder (sorted); a clear error for a missing path."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            files += sorted(os.path.join(path, f) for f in os.listdir(path) if f.lower().endswith(IMAGE_SUFFIXES))
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise FileNotFoundError(f"Image file or folder not found: {path}")
    return files
