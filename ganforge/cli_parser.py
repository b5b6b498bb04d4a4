"""The argument parser ganforge's commands use: argparse's, with a "did you mean" for a mistyped flag or
sub-command (argparse on Python 3.11 names neither)."""
from __future__ import annotations

import argparse
import difflib
import re

_INVALID_CHOICE = re.compile(r"invalid choice: '(?P<given>[^']*)' \(choose from (?P<choices>.*)\)")


def _closest(given: str, known: list[str]) -> str | None:
    found = difflib.get_close_matches(given, known, n=1, cutoff=0.6)
    return found[0] if found else None


class SuggestingParser(argparse.ArgumentParser):
    def parse_args(self, args=None, namespace=None):
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            known = _option_strings(self, parsed)
            matches = {extra.split("=")[0]: _closest(extra.split("=")[0], known) for extra in extras
                       if extra.startswith("-")}
            hints = [f"{match} for {flag}" if len(matches) > 1 else match for flag, match in matches.items() if match]
            self.error(f"unrecognized arguments: {' '.join(extras)}" + (f"; did you mean {', '.join(hints)}?"
                                                                          if hints else ""))
        return parsed

    def error(self, message: str):
        invalid = _INVALID_CHOICE.search(message)
        if invalid:
            choices = [c.strip().strip("'") for c in invalid["choices"].split(",")]
            match = _closest(invalid["given"], choices)
            if match:
                message += f"; did you mean '{match}'?"
        super().error(message)


def _option_strings(parser: argparse.ArgumentParser, parsed: argparse.Namespace) -> list[str]:
    """Every flag of `parser` and of the sub-commands `parsed` went through (train, data inspect, …)."""
    known, current = [], parser
    while current is not None:
        known += [s for action in current._actions for s in action.option_strings]
        commands = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]
        chosen = getattr(parsed, commands[0].dest, None) if commands else None
        current = commands[0].choices.get(chosen) if chosen else None
    return known
