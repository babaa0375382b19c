"""Entry script for Ray jobs: `loomdist train CONFIG [options]` on the cluster it runs in.

    ray job submit --working-dir . -- python jobs/train.py examples/digits.toml \
        --microbatches 4 --schedule 1f1b

Connects with ray.init(address="auto") and runs the CLI's train command with
`--backend ray --address auto`; every other option is the CLI's.
"""

from __future__ import annotations

import sys

import ray

from loomdist.cli import main


def run(argv: list[str]) -> None:
    ray.init(address="auto")
    try:
        main(["train", *argv, "--backend", "ray", "--address", "auto"])
    finally:
        ray.shutdown()


if __name__ == "__main__":
    run(sys.argv[1:])
