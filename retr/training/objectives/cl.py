"""Contrastive learning: InfoNCE on cosine / temperature, in-batch and hard negatives."""

from retr.training.objectives.base import Objective

OBJECTIVES = (Objective("cl", {"cl": 1.0}, "InfoNCE on cosine / temperature, in-batch + hard negatives"),)
