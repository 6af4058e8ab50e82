"""Run several ``cfld`` commands in the same launched processes (one start-up for all).

    torchrun --standalone --nproc_per_node 2 tests/multiprocess_driver.py '[["generate", ...],
        ["evaluate", ...]]'

Each command goes through :func:`cfld.cli.main`, exactly as ``-m cfld.cli`` would run it.
"""

from __future__ import annotations

import json
import sys

from cfld.cli import main

if __name__ == "__main__":
    for argv in json.loads(sys.argv[1]):
        code = main(argv)
        if code:
            sys.exit(code)
