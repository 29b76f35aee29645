"""Misbehaving on request: the faults a test arranged, Graph's throttling (scaled down) and
latency. Each function reads and updates the sandbox's state under its lock."""

from __future__ import annotations

import secrets
import time

from .state import Fault, SandboxState


def take_fault(state: SandboxState, operation: str, mailbox: str) -> Fault | None:
    """The first arranged fault matching this call, counted down once."""
    with state.lock:
        for fault in state.faults:
            if fault.operation in (operation, "any") and fault.times > 0 and fault.mailbox in (None, mailbox):
                fault.times -= 1
                return fault
    return None


def admit(state: SandboxState, mailbox: str) -> bool:
    """Counts the call in (True), or refuses it as Graph's throttling would (False): too many
    concurrent calls for the mailbox, or too many in the window. An admitted call must be
    ``leave``-d when done."""
    limits = state.limits
    with state.lock:
        now = time.monotonic()
        state.peak_asked[mailbox] = max(state.peak_asked[mailbox], state.in_flight[mailbox] + 1)
        if limits.concurrent_per_mailbox is not None and state.in_flight[mailbox] >= limits.concurrent_per_mailbox:
            return False
        if limits.per_mailbox_per_window is not None:
            recent = [t for t in state.recent[mailbox] if now - t < limits.window_seconds]
            state.recent[mailbox] = recent
            if len(recent) >= limits.per_mailbox_per_window:
                return False
            recent.append(now)
        state.in_flight[mailbox] += 1
    return True


def leave(state: SandboxState, mailbox: str) -> None:
    with state.lock:
        state.in_flight[mailbox] -= 1


def wait_latency(state: SandboxState) -> None:
    low, high = state.limits.latency_seconds
    if high > 0:
        time.sleep(low + (high - low) * secrets.randbelow(1000) / 1000)
