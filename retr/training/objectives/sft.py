"""Supervised fine-tuning of the generation side: next-token loss of the positive passage given the query,
alone or added to the contrastive loss."""

from retr.training.objectives.base import Objective

OBJECTIVES = (
    Objective("sft", {"sft": 1.0}, "next-token loss of the positive passage given the query"),
    Objective("cl+sft", {"cl": "lambda_cl", "sft": "lambda_sft"}, "lambda_cl CL + lambda_sft SFT"),
)
