"""`CaptionDecoder`: caption tokens so far + image patch states -> next-token logits.

keras-hub `TransformerDecoder` blocks (pre-norm, GELU): causal self-attention
over the caption, cross-attention to the image encoder's patch states. The token
embedding is tied to the output projection (`ReversibleEmbedding`), over the
same WordPiece vocabulary as the text encoder, so logits are scores of the
vocabulary's own embeddings.
"""

from __future__ import annotations

import keras
import keras_hub

from gemini_tf.layers.encoder_blocks import decoder_blocks


@keras.saving.register_keras_serializable(package="gemini_tf")
class CaptionDecoder(keras.Model):
    """Inputs: [token_ids [batch, length] (length <= sequence_length), image_states
    [batch, patches, hidden_dim]]. Output: logits [batch, length, vocabulary_size];
    the logits at t depend only on tokens 0..t (causal mask), and on every patch.

    Args:
        vocabulary_size: rows of the tied token embedding.
        sequence_length: the longest caption, [CLS] and [SEP] included.
        hidden_dim: width of the token states; the image states must have it too.
        num_layers: `TransformerDecoder` blocks.
        num_heads, intermediate_dim, dropout: sizes of each block.
    """

    def __init__(
        self,
        vocabulary_size: int,
        sequence_length: int,
        hidden_dim: int,
        num_layers: int,
        num_heads: int,
        intermediate_dim: int,
        dropout: float = 0.0,
        **kwargs,
    ):
        # === Layers ===
        embedding = keras_hub.layers.TokenAndPositionEmbedding(
            vocabulary_size, sequence_length, hidden_dim, tie_weights=True, name="token_and_position_embedding"
        )
        embedding_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="embedding_norm")
        blocks = decoder_blocks(num_layers, num_heads, intermediate_dim, dropout, "decoder")
        final_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm")

        # === Functional Model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        image_states = keras.Input(shape=(None, hidden_dim), name="image_states")
        x = embedding_norm(embedding(token_ids))
        for block in blocks:
            # Causal self-attention alone hides what follows a token, [PAD] included.
            x = block(x, image_states, use_causal_mask=True)
        logits = embedding.token_embedding(final_norm(x), reverse=True)
        super().__init__(inputs=[token_ids, image_states], outputs=logits, **kwargs)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.sequence_length = sequence_length
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "vocabulary_size": self.vocabulary_size,
            "sequence_length": self.sequence_length,
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
