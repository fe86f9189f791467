"""The ``curate`` console script: a Ctrl-C or SIGTERM that arrives while the command line
is still being imported exits with the same one line and status as one during a run."""

import os
import signal
import sys


def _during_start_up(signum, frame):
    sys.stderr.write("aborted\n")
    sys.stderr.flush()
    os._exit(128 + signum)


def main():
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _during_start_up)
    from curate.cli import main as run  # installs the handlers that stop a run cleanly

    run()
