"""DPO (sigmoid loss): the positive preferred over the hardest sampled negative, against the frozen base."""

from retr.training.objectives.base import Objective

OBJECTIVES = (
    Objective("dpo", {"dpo": 1.0}, "sigmoid DPO, positive over the hardest negative; reference = frozen base"),
)
