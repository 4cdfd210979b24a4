"""Small serializable building blocks shared by the encoders and fusions."""
