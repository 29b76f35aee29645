"""Route templates and request paths as the Functions host (ASP.NET Core routing) treats them.

- The path is percent-decoded once before matching, except ``%2F``: an encoded slash stays ``%2F``
  (in its original case) so that it cannot split a segment. dotnet/aspnetcore#30655 tabulates it:
  ``/test/foo%2fbar`` gives the route value ``foo%2fbar``, ``/test/test%25aa`` gives ``test%aa``.
- Literal segments match case-insensitively; ``{name}``, ``{name?}``, ``{*rest}`` and the
  constraints ``int``, ``long``, ``bool``, ``guid``, ``alpha`` are understood; any other
  constraint stops start-up rather than be ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ESCAPE_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
_ENCODED_SLASH = re.compile(r"(%2[Ff])")
_CONSTRAINTS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "bool": r"(?i:true|false)",
    "guid": r"\{?[0-9A-Fa-f]{8}-?(?:[0-9A-Fa-f]{4}-?){3}[0-9A-Fa-f]{12}\}?",
    "alpha": r"[A-Za-z]+",
}


def decode_path(path: str) -> str:
    """Decodes every %XX escape once, UTF-8, leaving ``%2F`` and invalid UTF-8 runs as sent."""

    def decode_run(match: re.Match[str]) -> str:
        decoded = []
        for piece in _ENCODED_SLASH.split(match.group(0)):
            if not piece or piece.lower() == "%2f":
                decoded.append(piece)
                continue
            try:
                decoded.append(bytes.fromhex(piece.replace("%", "")).decode("utf-8"))
            except UnicodeDecodeError:
                decoded.append(piece)
        return "".join(decoded)

    return _ESCAPE_RUN.sub(decode_run, path)


@dataclass(frozen=True)
class Route:
    template: str
    pattern: re.Pattern[str]

    @classmethod
    def parse(cls, template: str) -> Route:
        segments = [s for s in template.strip("/").split("/") if s]
        regex = ""
        for position, segment in enumerate(segments):
            parameter = re.fullmatch(r"\{(\*{0,2})([A-Za-z_][A-Za-z0-9_]*)(?::([^}=?]+))?(\?)?(?:=[^}]*)?\}", segment)
            if parameter is None:
                if "{" in segment:
                    raise ValueError(f"route {template!r}: segment {segment!r} is not supported by the local host")
                regex += "/" + re.escape(segment)
                continue
            catch_all, name, constraint, optional = parameter.groups()
            if catch_all:
                if position != len(segments) - 1:
                    raise ValueError(f"route {template!r}: a catch-all parameter must be the last segment")
                regex += f"(?:/(?P<{name}>.*))?"
                continue
            if constraint is not None and constraint not in _CONSTRAINTS:
                raise ValueError(f"route {template!r}: constraint {constraint!r} is not supported by the local host")
            value = _CONSTRAINTS.get(constraint or "", r"[^/]+")
            regex += f"(?:/(?P<{name}>{value}))?" if optional else f"/(?P<{name}>{value})"
        return cls(template, re.compile("^" + regex + "/?$", re.IGNORECASE))

    def match(self, path: str) -> dict[str, str] | None:
        """Route values for a decoded path relative to the route prefix, or None."""
        found = self.pattern.match("/" + path.strip("/") if path.strip("/") else "")
        if found is None:
            return None
        return {name: value for name, value in found.groupdict().items() if value is not None}
