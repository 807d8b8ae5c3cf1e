"""What every console script shares: a failure is one line `PROG: error: ...` on stderr and exit status 2; a run
that finishes exits 0.

A traceback tells a user where the code broke, not what they passed wrong; the errors raised for bad input say
the latter in one sentence. `MAMP_HUB_TRACEBACK=1` in the environment re-raises instead, for bug reports.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import TypeVar

Main = TypeVar("Main", bound=Callable[..., None])

EXIT_FAILURE = 2  # argparse's status for a usage error; the scripts use it for every refused input


def console_script(prog: str) -> Callable[[Main], Main]:
    """Decorate a console script's `main(argv=None)`: any exception becomes `prog: error: <message>` and exit 2.

    `KeyboardInterrupt` and `SystemExit` (argparse's own usage errors, `--help`) pass through unchanged. The
    decorated main returns None whatever `main` returns: the launcher that pip writes for a console script calls
    `sys.exit(main())`, which would turn any returned object into exit status 1 (and print it).
    """

    def decorate(main: Main) -> Main:
        @functools.wraps(main)
        def wrapper(*args, **kwargs) -> None:
            try:
                main(*args, **kwargs)
            except Exception as error:
                if os.environ.get("MAMP_HUB_TRACEBACK"):
                    raise
                message = " ".join(str(error).split()) or type(error).__name__
                print(f"{prog}: error: {message}", file=sys.stderr)
                raise SystemExit(EXIT_FAILURE) from None

        return wrapper  # type: ignore[return-value]

    return decorate
