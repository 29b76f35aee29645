"""Runs Azurite and stops it exactly once, cleanly, when the runner stops or dies.

``python azurite_guard.py <azurite command…>``, with its standard input a pipe from the runner.
The guard stops Azurite with one SIGTERM when that pipe reaches end of file (the kernel closes it
when the runner exits, however it exits, SIGKILL included) or when the guard itself gets SIGTERM,
SIGINT or SIGHUP; further signals are absorbed. Azurite handles only the first SIGTERM
(``process.once("SIGTERM", shutdown)`` in azurite/dist/src/azurite.js): a second one kills it
before it has saved its data. That is what ``PR_SET_PDEATHSIG`` did: Linux sends the death signal
each time the child is re-parented after the thread that started it exits, so a runner with
several threads killed at once could deliver it twice.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
GRACE_SECONDS = 30.0


def main(command: list[str]) -> int:
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for number in STOP_SIGNALS:
        signal.signal(number, request_stop)
    azurite = subprocess.Popen(command, stdin=subprocess.DEVNULL)

    def watch_runner() -> None:
        sys.stdin.buffer.read()  # returns at end of file: the runner is gone or closed the pipe
        stop.set()

    threading.Thread(target=watch_runner, daemon=True).start()
    while azurite.poll() is None and not stop.wait(0.2):
        pass
    if azurite.poll() is None:
        azurite.send_signal(signal.SIGTERM)
        try:
            azurite.wait(timeout=GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            azurite.kill()
            azurite.wait()
    return azurite.returncode if azurite.returncode and azurite.returncode > 0 else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
