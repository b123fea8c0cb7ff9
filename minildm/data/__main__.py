"""``python -m minildm.data [out.png] [split] [seed]``: save a grid of 32 captioned examples of the shapes dataset."""
import sys

from .plotting import save_dataset_preview

args = sys.argv[1:]
path = args[0] if args else "shapes_preview.png"
split = args[1] if len(args) > 1 else "train"
seed = int(args[2]) if len(args) > 2 else 0
print(f"saved {save_dataset_preview(path, split=split, seed=seed)}")
