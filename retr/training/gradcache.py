"""GradCache (Gao et al. 2021): a loss over a large batch with the memory of one chunk.

1. Run every chunk without a graph (embeddings, or per-sequence log-probs), remembering the RNG state before each.
2. Compute the loss on the detached outputs (as leaves) and backpropagate to them: d loss / d output.
3. Re-run each chunk with a graph, replaying its RNG state (so dropout draws the same masks), and backpropagate
   the cached gradient through it (``backward(gradient=...)``).

The parameter gradients equal those of the same computation with every chunk's graph kept alive.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Callable, Iterable, Sequence

import torch


class RandContext:
    """The RNG state (CPU, and the CUDA device when used) captured now; ``with ctx:`` replays it.

    Leaving the block restores the RNG as it was before entering, so replaying does not disturb later draws.
    """

    def __init__(self, device: torch.device):
        self.devices = [device] if device.type == "cuda" else []
        self.cpu = torch.get_rng_state()
        self.cuda = [torch.cuda.get_rng_state(d) for d in self.devices]
        self._fork: AbstractContextManager | None = None

    def __enter__(self) -> None:
        self._fork = torch.random.fork_rng(devices=self.devices, enabled=True)
        self._fork.__enter__()
        torch.set_rng_state(self.cpu)
        for device, state in zip(self.devices, self.cuda):
            torch.cuda.set_rng_state(state, device)

    def __exit__(self, *exc) -> None:
        assert self._fork is not None
        self._fork.__exit__(*exc)
        self._fork = None


def forward_without_graph(
    forward: Callable[[dict], torch.Tensor], chunks: Sequence[dict], device: torch.device
) -> tuple[torch.Tensor, list[RandContext]]:
    """Step 1: the outputs of all chunks (one leaf that requires grad) and the RNG state before each chunk."""
    states, outs = [], []
    with torch.no_grad():
        for chunk in chunks:
            states.append(RandContext(device))
            outs.append(forward(chunk))
    return torch.cat(outs).detach().requires_grad_(), states


def backward_chunks(
    forward: Callable[[dict], torch.Tensor],
    chunks: Sequence[dict],
    states: Sequence[RandContext | None],
    grad: torch.Tensor,
    contexts: Iterable[AbstractContextManager],
) -> None:
    """Step 3: re-run each chunk with its replayed RNG and push the cached gradient slice through it.

    ``contexts`` gives one context manager per chunk (e.g. DDP's no_sync for all but the last backward); a None
    state skips the replay (only tests use that, to show replay matters).
    """
    start = 0
    for chunk, state, context in zip(chunks, states, contexts):
        size = chunk["input_ids"].shape[0]
        with context:
            with state if state is not None else nullcontext():
                out = forward(chunk)
            out.backward(gradient=grad[start : start + size])
        start += size

