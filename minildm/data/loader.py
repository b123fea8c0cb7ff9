"""A seeded, exactly resumable mini-batch loader.

    loader = DataLoader(ds, batch_size=64, shuffle=True, seed=0)
    for images, captions in loader:       # one epoch: images (64, 3, 32, 32) on the active backend, 64 captions
        ...
    state = loader.state_dict()           # {"epoch": 3, "position": 1280, "seed": 0}: save it with the checkpoint
    loader.load_state_dict(state)         # ... and a resumed run sees exactly the batches that would have come next

The order of epoch e is a permutation drawn from its own generator, seeded by (seed, e). So the order never depends
on how many batches were drawn before, in this process or another one, and two numbers (epoch, position) say
exactly where we are. That is what makes resuming exact.
"""
from __future__ import annotations

import numpy as np

from .. import backend


class DataLoader:
    """Mini-batches of ``(images, captions)`` in a seeded order; iterating runs through the rest of one epoch.

    Args:
        dataset: any object with ``images`` (N, C, H, W) (host array) and ``captions`` (N strings), such as
            ``ShapesDataset``.
        batch_size: examples per batch.
        shuffle: a fresh seeded permutation every epoch; False keeps the dataset's order.
        seed: seeds the permutations.
        drop_last: skip the last, smaller batch of an epoch (keeps every batch the same shape).

    Yields:
        images: (batch_size, C, H, W) float32 on the active backend (``backend.to_device``).
        captions: list of batch_size strings.
    """

    def __init__(self, dataset, batch_size: int, shuffle: bool = True, seed: int = 0, drop_last: bool = True):
        if int(batch_size) < 1:
            raise ValueError(f"DataLoader: batch_size must be at least 1, got {batch_size}")
        n = len(dataset.images)
        if len(dataset.captions) != n:
            raise ValueError(f"DataLoader: dataset has {n} images but {len(dataset.captions)} captions")
        if n == 0:
            raise ValueError("DataLoader: the dataset is empty")
        if drop_last and n < batch_size:
            raise ValueError(f"DataLoader: batch_size {batch_size} > dataset size {n} with drop_last=True "
                             "gives no batches at all")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, int(batch_size), shuffle, drop_last
        self.seed = seed
        self.epoch = 0      # the epoch in progress, counted from 0
        self.position = 0   # examples of the current epoch already handed out

    def __len__(self) -> int:
        """Batches in one full epoch."""
        n = len(self.dataset.images)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _epoch_end(self) -> int:
        # Examples served per epoch: all of them, or all full batches with drop_last.
        n = len(self.dataset.images)
        return (n // self.batch_size) * self.batch_size if self.drop_last else n

    def order(self, epoch: int) -> np.ndarray:
        """The example indices of ``epoch`` in the order they are served: (N,) int64."""
        n = len(self.dataset.images)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch]).permutation(n)

    def __iter__(self):
        """Batches from the current position to the end of the current epoch.

        The state always points at the next batch to hand out: it moves as each batch is handed out, and after the
        last batch of an epoch it already reads (next epoch, 0). So ``state_dict()`` taken after a training step
        resumes with the batch that would have come next, and breaking out of the loop keeps the place.
        """
        epoch, order, end = self.epoch, self.order(self.epoch), self._epoch_end()
        for start in range(self.position, end, self.batch_size):
            indices = order[start:start + self.batch_size]
            done = start + len(indices)
            self.epoch, self.position = (epoch + 1, 0) if done >= end else (epoch, done)
            images = backend.to_device(self.dataset.images[indices], backend.DEFAULT_DTYPE)
            yield images, [self.dataset.captions[i] for i in indices]

    def forever(self):
        """Batches without end, epoch after epoch (for step-based training loops)."""
        while True:
            yield from self

    def state_dict(self) -> dict:
        """Where the loader stands: plain ints, ready to store in a checkpoint."""
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where a saved loader stopped (same dataset and batch size)."""
        end = self._epoch_end()
        if not 0 <= int(state["position"]) < end:
            raise ValueError(f"DataLoader.load_state_dict: position {state['position']} outside 0..{end - 1}; "
                             "was the state saved with another dataset or batch size?")
        self.epoch, self.position, self.seed = int(state["epoch"]), int(state["position"]), state["seed"]
