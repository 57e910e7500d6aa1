"""Protection of latents: CKKS homomorphic encryption for inference on an untrusted server (`he`)."""
