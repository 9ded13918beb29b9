"""The flex template's entry point: the pipeline file baked into the image
(/template/pipeline.toml, or the `config` parameter) on Dataflow."""

import sys

from runnel_beam.__main__ import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(a == "--config" or a.startswith("--config=") for a in args):
        args = ["--config", "/template/pipeline.toml"] + args
    sys.exit(main(args))
