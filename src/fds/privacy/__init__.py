"""Protection of latents: CKKS homomorphic encryption for inference on an untrusted server (`he`),
DP release of latents (`release`) and the privacy ledger that composes DP spending (`ledger`)."""
