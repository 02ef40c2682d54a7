"""ULLME's generation-augmented representation learning (GRL) and its SFT variant."""

from retr.training.objectives.base import Objective

OBJECTIVES = (
    Objective("grl", {"cl": "lambda_cl", "dpo": "lambda_dpo", "kl": "lambda_kl"},
              "lambda_cl CL + lambda_dpo DPO + lambda_kl KL (ULLME)"),
    Objective("grl-sft", {"cl": "lambda_cl", "sft": "lambda_sft", "kl": "lambda_kl"},
              "lambda_cl CL + lambda_sft SFT + lambda_kl KL"),
)
