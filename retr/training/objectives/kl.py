"""ULLME's consistency term alone: KL(P_rt || P_gen) over each query's positive and hard negatives."""

from retr.training.objectives.base import Objective

OBJECTIVES = (Objective("kl", {"kl": 1.0}, "KL(P_rt || P_gen) over the positive + hard negatives"),)
