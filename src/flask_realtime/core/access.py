"""Who may run a job: a job's ``allowed`` rule and the groups a rule may name.

A job without a rule (``allowed=None``, the default) may be run by every logged-in user,
as before. A rule is a list of entries, any of which lets a user in:

* an e-mail address (``alice@example.com``): that user, in any case;
* ``@domain`` (``@example.com``): every user whose address is at that domain (exactly
  that domain, not its subdomains);
* a group name (``ops``): the members of that group in ``JOB_GROUPS`` (config), each an
  e-mail address or an ``@domain``.

An empty rule lets nobody in. Users are identified by their lower-case e-mail address
(web/auth.py), so the comparison is on lower case. docs/access.md is the operator's side.

Nothing here knows Flask or a store: the same rule serves ``@job(allowed=...)``, the
command-jobs file (a job's ``allowed`` key, read into :attr:`JobSpec.allowed`) and the run
service's check at every start (:class:`JobAccess`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .jobs import JobSpec

#: A group's name: letters, digits, ``_``, ``-`` and ``.``, starting with a letter.
GROUP_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
_EMAIL = re.compile(r"[^@\s,;]+@[^@\s,;]+")
_DOMAIN = re.compile(r"@[^@\s,;]+")

Groups = Mapping[str, tuple[str, ...]]


class AccessRuleError(ValueError):
    """A rule or a group definition that cannot be read; the message is one sentence
    naming the entry and what would be accepted."""


def member_entry(entry: Any, where: str) -> str:
    """``entry`` as a rule keeps it (lower case), if it is an e-mail address or an
    ``@domain``; else :class:`AccessRuleError` naming ``where`` it was found."""
    if isinstance(entry, str):
        text = entry.strip().lower()
        if _EMAIL.fullmatch(text) or _DOMAIN.fullmatch(text):
            return text
    raise AccessRuleError(f"{where}: {str(entry)[:80]!r} is neither an e-mail address "
                          "(alice@example.com) nor a domain (@example.com).")


def normalize_rule(allowed: Iterable[Any] | None, where: str) -> tuple[str, ...] | None:
    """A job's ``allowed`` as :attr:`JobSpec.allowed` keeps it: None (everyone) or a
    tuple of entries, e-mail addresses and domains in lower case, group names as
    written. Raises :class:`AccessRuleError` for an entry that is none of the three,
    or for a single string given instead of a list (``allowed="ops"``)."""
    if allowed is None:
        return None
    if isinstance(allowed, str | bytes) or not isinstance(allowed, Iterable):
        raise AccessRuleError(f"{where}: allowed must be a list of e-mail addresses, "
                              "@domains and group names, such as [\"ops\"].")
    entries: list[str] = []
    for entry in allowed:
        if isinstance(entry, str) and "@" not in entry and GROUP_NAME.fullmatch(entry.strip()):
            entries.append(entry.strip())
        else:
            entries.append(member_entry(entry, where))
    return tuple(entries)


def parse_groups(value: Any) -> dict[str, tuple[str, ...]]:
    """``JOB_GROUPS`` as the config gives it: a JSON object of group name -> list of
    members (``{"ops": ["alice@example.com", "@ops.example.com"]}``), or the same as
    text, ``ops = alice@example.com bob@example.com; dev = @example.com`` (groups
    separated by ``;``, members by spaces or commas). Raises :class:`AccessRuleError`."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except ValueError:
                raise AccessRuleError("JOB_GROUPS starts with { but is not JSON: write "
                                      '{"ops": ["alice@example.com"]}.') from None
        else:
            value = {}
            for part in (p.strip() for p in text.split(";")):
                if not part:
                    continue
                name, sep, members = part.partition("=")
                if not sep:
                    raise AccessRuleError(f"JOB_GROUPS: {part[:80]!r} has no '=': write "
                                          "name = member member; other = member.")
                value[name.strip()] = [m for m in re.split(r"[\s,]+", members) if m]
    if not isinstance(value, Mapping):
        raise AccessRuleError('JOB_GROUPS must map group names to lists of members: '
                              '{"ops": ["alice@example.com", "@example.com"]}.')
    groups: dict[str, tuple[str, ...]] = {}
    for name, members in value.items():
        if not isinstance(name, str) or not GROUP_NAME.fullmatch(name):
            raise AccessRuleError(f"JOB_GROUPS: {str(name)[:80]!r} is not a group name "
                                  "(a letter, then letters, digits, '_', '-' or '.').")
        if isinstance(members, str) or not isinstance(members, list):
            raise AccessRuleError(f"JOB_GROUPS: group {name!r} must be a list of members.")
        groups[name] = tuple(member_entry(m, f"JOB_GROUPS, group {name!r}") for m in members)
    return groups


def allows(allowed: tuple[str, ...] | None, user: str, groups: Groups) -> bool:
    """Whether ``user`` (an e-mail address, or an id without one) passes the rule
    ``allowed`` with these ``groups``. None lets everyone in; a group the config does not
    define lets nobody in (:meth:`JobAccess.unknown_groups` names them at start-up)."""
    if allowed is None:
        return True
    who = user.strip().lower()
    domain = "@" + who.rpartition("@")[2] if "@" in who else None
    for entry in allowed:
        members = groups.get(entry, ()) if "@" not in entry else (entry,)
        for member in members:
            if member == who or (domain is not None and member == domain):
                return True
    return False


@dataclass(frozen=True)
class JobAccess:
    """The run service's check of a user against a job's rule, with the configured groups.

    ``RunService.access`` holds one in a web app (web/app.py); without one (the
    ``flask-realtime exec`` command, the core tests) every job may be run."""

    groups: Groups = field(default_factory=dict)

    def may_run(self, user: str, spec: JobSpec) -> bool:
        """Whether ``user`` may run (and see, and re-run) ``spec``."""
        return allows(spec.allowed, user, self.groups)

    def unknown_groups(self, specs: Iterable[JobSpec]) -> dict[str, list[str]]:
        """Job name -> the group names its rule uses that ``groups`` does not define."""
        found: dict[str, list[str]] = {}
        for spec in specs:
            missing = [e for e in spec.allowed or () if "@" not in e and e not in self.groups]
            if missing:
                found[spec.name] = missing
        return found
