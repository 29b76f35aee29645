"""A loopback stand-in for the part of Microsoft Graph the service uses, plus a managed-identity
token endpoint, so the real ``azure-identity`` and ``requests`` code paths run unchanged.

It keeps Graph's rules: a bearer token it issued is required, only the organizer's copy can be
cancelled, errors have Graph's codes and body shape. It records every call and the notices the
attendees would have received, and it can be told to misbehave (faults, latency, throttling)
for tests and benchmarks. State lives in memory: a restart begins again from the seed.

``state`` holds what it knows, ``sandbox`` arranges and reads it, ``handler`` serves HTTP,
``graph_rules`` decides Graph's answers, ``faults`` misbehaves on request, ``seed`` fills the demo.
"""

from .graph_rules import NOT_ORGANIZER
from .handler import IDENTITY_PATH
from .sandbox import GraphSandbox
from .seed import seed_demo
from .state import Fault, Limits, Mailbox, SandboxState, rest_id

__all__ = [
    "IDENTITY_PATH",
    "NOT_ORGANIZER",
    "Fault",
    "GraphSandbox",
    "Limits",
    "Mailbox",
    "SandboxState",
    "rest_id",
    "seed_demo",
]
