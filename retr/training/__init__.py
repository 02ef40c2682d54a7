"""Training: LLaRA adaptation and GRL-family fine-tuning (CL, SFT, DPO, KL) of a decoder LM into an embedder.

Entry point: :func:`retr.training.train.train` with a :class:`retr.training.config.TrainConfig`; hard-negative
mining lives in :mod:`retr.training.mining`. See docs/training.md.
"""
