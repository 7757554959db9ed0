#!/usr/bin/env python3
"""The benchmark's entry point; see benchmarks/README.md (benchmarks/run.sh sets things up).

Run as a script, so this directory is first on sys.path and `mtabench` imports from here.
"""

import sys

from mtabench.cli import main

if __name__ == "__main__":
    sys.exit(main())
