"""Who may publish and read which topic: the broker's ACL, derived from :mod:`broker.topics`.

Every topic kind the bus knows (``broker.topics.TYPE_OF_KIND``) has a row in
:data:`RULES` naming the roles that may write and read it; :func:`check_coverage`
refuses a kind without one, so a new topic cannot be left out of the ACL silently.

Roles:

- ``self``: a principal on its own topics (``dev/{id}/...``, ``clock/ack/{id}``),
  rendered as mosquitto ``pattern`` lines with ``%u`` (the user name: the client
  certificate's CN, or the password file's user, is the device id);
- ``public``: every principal holding credentials (anonymous access is off), as
  ``topic`` lines under each user (mosquitto warns of a pattern without ``%u``);
- ``coordinator``: the community's coordinator;
- ``bench``: a test bench's clock master and fault commands (testbeds only).

Observers (``gridmesh monitor``) read everything under the community and write nothing.

Home Assistant's MQTT discovery lives outside the community's tree, under its prefix
(:class:`broker.topics.HomeAssistantTopics`): every principal may publish its own
sensors there (``<prefix>/sensor/%u/#``: its discovery configs and its state) and no one
else's; a Home Assistant principal reads all of it and every device's status (the
sensors' availability), and writes nothing.
Pure: rules in, rules and text out.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.topics import DEVICE_KINDS, TYPE_OF_KIND, HomeAssistantTopics, Topics

SELF, PUBLIC, COORDINATOR, BENCH = "self", "public", "coordinator", "bench"
SELF_MARK = "%u"

# kind: (who may write, who may read)
RULES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "status": ((SELF,), (BENCH,)),  # the coordinator's and replicas' too, as themselves
    "telemetry": ((SELF,), ()),  # for observers
    "order": ((SELF,), (COORDINATOR,)),
    "report": ((SELF,), (COORDINATOR,)),
    "share": ((SELF,), (COORDINATOR,)),
    "result": ((COORDINATOR,), (SELF,)),
    "award": ((COORDINATOR,), (SELF,)),
    "settlement": ((COORDINATOR,), (SELF,)),
    "proof": ((COORDINATOR,), (SELF,)),
    "clearing": ((COORDINATOR,), (PUBLIC,)),
    "block": ((COORDINATOR,), (PUBLIC,)),
    "blockdata": ((COORDINATOR,), (PUBLIC,)),
    "model": ((COORDINATOR,), (PUBLIC,)),
    "tick": ((BENCH,), (PUBLIC,)),
    "gate": ((BENCH,), (COORDINATOR,)),
    "ack": ((SELF,), (BENCH,)),
    "fault": ((BENCH,), (BENCH,)),
}


class AclError(ValueError):
    """The ACL cannot be built; the message says why."""


@dataclass(frozen=True)
class AclRule:
    """``access`` (read or write) to ``topic_filter`` for ``user``; ``user`` None is a
    pattern line, for every principal, where ``%u`` stands for the user's own name."""

    access: str
    topic_filter: str
    user: str | None


@dataclass(frozen=True)
class Principals:
    """The user names the ACL grants rights to: ``everyone`` reads public data (members,
    replicas, ...); the coordinator, the bench and observers have rights of their own."""

    coordinator: str
    everyone: tuple[str, ...] = ()
    bench: str | None = None
    observers: tuple[str, ...] = ()
    home_assistant: tuple[str, ...] = ()  # Home Assistant instances: discovery and availability
    discovery_prefix: str = "homeassistant"


def check_coverage(rules: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = RULES) -> None:
    """AclError unless every topic kind has a writer and a reader (observers read all)."""
    missing = sorted(set(TYPE_OF_KIND) - set(rules))
    if missing:
        raise AclError(f"topic kind(s) {', '.join(missing)} have no ACL rule in deploy/acl.py")
    unknown = sorted(set(rules) - set(TYPE_OF_KIND))
    if unknown:
        raise AclError(f"ACL rule(s) for unknown topic kind(s) {', '.join(unknown)}")
    for kind, (writers, _readers) in rules.items():
        if not writers:
            raise AclError(f"topic kind {kind}: nobody may publish it")


def kind_filter(topics: Topics, kind: str) -> str:
    """The filter matching every topic of ``kind``, built by :class:`Topics`."""
    if kind in DEVICE_KINDS:
        return topics.all_devices(kind)
    filters = {
        "clearing": topics.clearing, "block": topics.block, "blockdata": topics.block_data,
        "model": topics.models, "tick": topics.tick, "gate": topics.gate, "ack": topics.all_acks,
        "fault": topics.sim_fault,
    }
    if kind not in filters:
        raise AclError(f"topic kind {kind}: deploy/acl.py does not know its topic filter")
    return filters[kind]


def own_filter(topics: Topics, kind: str) -> str:
    """A principal's own topic of ``kind``, with ``%u`` where its name goes."""
    levels = kind_filter(topics, kind).split("/")
    named = [i for i, level in enumerate(levels) if level == "+"]
    if len(named) != 1:
        raise AclError(f"topic kind {kind}: names no principal, so no one can own it")
    levels[named[0]] = SELF_MARK
    return "/".join(levels)


def acl_rules(topics: Topics, principals: Principals) -> list[AclRule]:
    """Every rule, patterns first, then each named user's."""
    check_coverage()
    users = {COORDINATOR: principals.coordinator, BENCH: principals.bench}
    bench = {principals.bench} if principals.bench else set()
    observers = set(principals.observers)
    patterns: list[AclRule] = []
    named: dict[str, list[AclRule]] = {}
    for kind, (writers, readers) in RULES.items():
        for access, roles in (("write", writers), ("read", readers)):
            for role in roles:
                if role == SELF:
                    patterns.append(AclRule(access, own_filter(topics, kind), None))
                elif role == PUBLIC:
                    for user in {principals.coordinator, *principals.everyone, *bench} - observers:
                        named.setdefault(user, []).append(AclRule(access, kind_filter(topics, kind), user))
                elif users[role] is not None:
                    user = str(users[role])
                    named.setdefault(user, []).append(AclRule(access, kind_filter(topics, kind), user))
    for observer in principals.observers:
        named.setdefault(observer, []).append(AclRule("read", topics.everything, observer))
    discovery = HomeAssistantTopics(principals.discovery_prefix)
    patterns.append(AclRule("write", discovery.node(SELF_MARK), None))
    for user in principals.home_assistant:
        named.setdefault(user, []).extend([AclRule("read", discovery.everything, user),
                                           AclRule("read", topics.all_devices("status"), user)])
    return [*patterns, *(rule for user in sorted(named) for rule in named[user])]


def render_acl(rules: list[AclRule], community: str) -> str:
    """The rules as a mosquitto ``acl_file``."""
    lines = [
        f"# gridmesh community {community}: generated by gridmesh deploy broker-config",
        "# Patterns apply to every user; %u is the user's own name (its certificate's CN).",
        "# Under each user: its own rights, and the public data every principal may read.",
    ]
    current: str | None = None
    for rule in rules:
        if rule.user is None:
            lines.append(f"pattern {rule.access} {rule.topic_filter}")
            continue
        if rule.user != current:
            lines.extend(["", f"user {rule.user}"])
            current = rule.user
        lines.append(f"topic {rule.access} {rule.topic_filter}")
    return "\n".join([*lines, ""])


def matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic matching: ``+`` one level, ``#`` the rest."""
    filter_levels, topic_levels = topic_filter.split("/"), topic.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels) or level not in ("+", topic_levels[index]):
            return False
    return len(filter_levels) == len(topic_levels)


def allowed(rules: list[AclRule], user: str, topic: str, access: str) -> bool:
    """Whether ``user`` may ``access`` (read or write) ``topic`` under ``rules``, as
    mosquitto's ACL decides it for a concrete topic."""
    for rule in rules:
        if rule.access != access or rule.user not in (None, user):
            continue
        topic_filter = rule.topic_filter
        if rule.user is None:
            topic_filter = "/".join(user if level == SELF_MARK else level
                                    for level in topic_filter.split("/"))
        if matches(topic_filter, topic):
            return True
    return False
