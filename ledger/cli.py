"""``gridmesh ledger``: audit a ledger file (and replay its market), show its blocks or a
member's statement, and print and check an inclusion proof.

``audit`` exits 0 when the whole chain verifies, 1 naming the first bad block and
transaction (and, with ``--replay``, field) when it does not, and 2 when the file cannot
be read as a ledger.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from broker.messages import Award, BlockHeader, MeterReport, Order, Settlement
from gridmesh.cli import UsageError
from ledger.blocks import header_hash
from ledger.errors import LedgerError
from ledger.merkle import inclusion_proof, verify_proof
from ledger.parallel_audit import audit_file
from ledger.replay import ReplayDifference, ReplayReport, replay_chain
from ledger.store import LedgerStore
from ledger.verify import AuditFailure, AuditSummary

AUDIT_EXAMPLE = """examples:
  gridmesh ledger audit runs/20h-96s-seed1/ledger.db
  gridmesh ledger audit runs/20h-96s-seed1/ledger.db --replay   # re-run every clearing and bill

exit codes: 0 audit passed, 1 a block or transaction failed (named on stderr),
2 the file is not a readable ledger
"""

SHOW_EXAMPLE = """examples:
  gridmesh ledger show runs/20h-96s-seed1/ledger.db
  gridmesh ledger show runs/20h-96s-seed1/ledger.db --block 5
  gridmesh ledger show runs/20h-96s-seed1/ledger.db --member h003
  gridmesh ledger proof runs/20h-96s-seed1/ledger.db 3fa9c2e1
"""


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``gridmesh ledger audit`` and ``gridmesh ledger show``."""
    ledger = sub.add_parser(
        "ledger", help="audit or inspect a ledger file",
        description="Work with a ledger file written by the coordinator.",
        epilog=AUDIT_EXAMPLE + "\n" + SHOW_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ledger.set_defaults(handler=lambda args: _print_help(ledger))
    verbs = ledger.add_subparsers(dest="ledger_verb", metavar="ACTION")

    audit = verbs.add_parser(
        "audit", help="verify chain, proof of work, Merkle roots and signatures",
        description="Verify every block of a ledger: heights and links, proof of work, the "
        "community's difficulty, Merkle roots, and the signatures of the coordinator and of "
        "every member. Stops at the first problem and names its block and transaction.",
        epilog=AUDIT_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    audit.add_argument("path", type=Path, metavar="PATH", help="the ledger file (ledger.db)")
    audit.add_argument("--workers", type=_positive, metavar="N",
                       help="processes to check signatures with (default: one per CPU)")
    audit.add_argument("--replay", action="store_true",
                       help="also re-run every slot's clearing and settlement from the signed orders "
                       "and reports under the genesis rules, and compare")
    audit.set_defaults(handler=run_audit)

    show = verbs.add_parser(
        "show", help="print block headers, or one block's transactions",
        description="Print one line per block header; with --block, that block's header "
        "and transactions.",
        epilog=SHOW_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("path", type=Path, metavar="PATH", help="the ledger file (ledger.db)")
    which = show.add_mutually_exclusive_group()
    which.add_argument("--block", type=int, metavar="N", help="show block N and its transactions")
    which.add_argument("--member", metavar="ID", help="a member's statement: orders, awards, bills")
    show.set_defaults(handler=run_show)

    follow = verbs.add_parser(
        "follow", help="run a replica: verify and store every block published on the bus",
        description="Follow a community's blocks on the bus, verify each against this replica's "
        "own chain before storing it, refuse any that does not verify, and catch up after being "
        "offline (a persistent MQTT session under a stable client id).",
        epilog=FOLLOW_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    follow.add_argument("path", type=Path, metavar="PATH", help="the replica's ledger file")
    where = follow.add_mutually_exclusive_group(required=True)
    where.add_argument("--broker", help="HOST:PORT of the community's broker")
    where.add_argument("--run", type=Path, help="a running testbed's output folder (its broker)")
    follow.add_argument("--community", help="community id with --broker (default demo)")
    follow.add_argument("--broker-auth", type=Path, metavar="FILE",
                        help="credentials for a locked-down broker: a file with a broker_auth section "
                        "(gridmesh deploy broker-config writes devices/NAME/broker_auth.yaml)")
    follow.add_argument("--id", default="replica", help="this replica's name and session (default replica)")
    follow.add_argument("--coordinator-key", default="",
                        help="refuse a genesis block naming another coordinator key (hex)")
    follow.add_argument("--until-height", type=int, help="stop once this height is stored")
    follow.set_defaults(handler=run_follow)

    proof = verbs.add_parser(
        "proof", help="print and check the Merkle inclusion proof of one transaction",
        description="Find a transaction by its hash (or a unique prefix of at least 8 hex digits), "
        "print the path from it to its block's Merkle root and check it. Exit 0 when it verifies.",
        epilog=SHOW_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    proof.add_argument("path", type=Path, metavar="PATH", help="the ledger file (ledger.db)")
    proof.add_argument("tx", metavar="TX", help="the transaction's hash or a prefix of it")
    proof.set_defaults(handler=run_proof)


FOLLOW_EXAMPLE = """examples:
  gridmesh ledger follow replica.db --broker 192.168.1.10:1883 --community demo --id replica-1
  gridmesh ledger follow replica.db --run runs/20h-96s-seed1 --until-height 97
"""


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return int(text)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_audit(args: argparse.Namespace) -> int:
    try:
        result = audit_file(args.path, args.workers)
    except LedgerError as exc:
        raise UsageError(str(exc)) from None
    if isinstance(result, AuditFailure):
        print(f"audit FAILED: {result}", file=sys.stderr)
        return 1
    print("\n".join(summary_lines(args.path, result)))
    if not args.replay:
        return 0
    try:
        with LedgerStore.open_readonly(args.path) as store:
            replayed = replay_chain(store.blocks())
    except LedgerError as exc:
        raise UsageError(str(exc)) from None
    if isinstance(replayed, ReplayDifference):
        print(f"replay FAILED: {replayed}", file=sys.stderr)
        return 1
    print("\n".join(replay_lines(replayed)))
    return 0


def replay_lines(report: ReplayReport) -> list[str]:
    """Per slot and per member, then the verdict."""
    lines = [f"{'slot':>10}  {'orders':>6}  {'price':>10}  {'p2p Wh':>8}  {'import Wh':>9}  "
             f"{'export Wh':>9}  {'settled':>10}  {'bills':>10}"]
    for s in report.slots:
        price = "-" if s.price_u_per_kwh is None else f"{s.price_u_per_kwh / 1e6:.6f}"
        lines.append(f"{s.slot:>10}  {s.orders:>6}  {price:>10}  {s.p2p_wh:>8}  {s.grid_import_wh:>9}  "
                     f"{s.grid_export_wh:>9}  {s.settled_slot:>10}  {s.bills_u / 1e6:>10.4f}")
    lines.append(f"{'member':<10}  {'bought Wh':>9}  {'sold Wh':>9}  {'traded':>10}  {'billed':>10}  slots")
    for member in sorted(m for m in report.members if m != "grid"):
        m = report.members[member]
        lines.append(f"{member:<10}  {m.bought_wh:>9}  {m.sold_wh:>9}  {m.trade_u / 1e6:>10.4f}  "
                     f"{m.bill_u / 1e6:>10.4f}  {m.slots_settled}")
    lines.append(f"replay passed: {len(report.slots)} slots, {report.transactions_checked} transactions "
                 "recomputed from the signed orders and reports")
    return lines


def summary_lines(path: Path, summary: AuditSummary) -> list[str]:
    """The audit summary as aligned ``name  value`` lines, ending with ``audit passed``."""
    kinds = ", ".join(f"{kind} {count}" for kind, count in summary.transactions_by_kind.items())
    slots = "none yet" if summary.first_slot is None else f"{summary.first_slot}..{summary.last_slot}"
    return [
        f"ledger            {path}",
        f"community         {summary.community_id} (coordinator key {summary.coordinator_key})",
        f"members           {summary.members}",
        f"blocks            {summary.blocks}",
        f"transactions      {summary.transactions} ({kinds})",
        f"slots             {slots}",
        f"head              height {summary.head_height}, hash {summary.head_hash}",
        "audit passed",
    ]


def run_show(args: argparse.Namespace) -> int:
    try:
        with LedgerStore.open_readonly(args.path) as store:
            if args.member is not None:
                return _statement(store, args.member, args.path)
            if args.block is None:
                print(HEADER_TITLE)
                for header in store.headers():
                    print(header_line(header))
                return 0
            block = store.block(args.block)
            if block is None:
                raise UsageError(f"{args.path} has no block {args.block}")
            print(HEADER_TITLE)
            print(header_line(block.header))
            print(f"merkle root {block.header.merkle_root}, prev {block.header.prev_hash}")
            print(f"{'idx':>5}  {'kind':<10}  {'tx_hash':<64}  what")
            for index, tx in enumerate(block.transactions):
                print(f"{index:>5}  {tx.kind:<10}  {tx.tx_hash}  {tx.label()}")
            return 0
    except LedgerError as exc:
        raise UsageError(str(exc)) from None


def _statement(store: LedgerStore, member: str, path: Path) -> int:
    """Everything the ledger holds for ``member``, slot by slot, and its totals."""
    rows: list[str] = []
    totals = {"bought": 0, "sold": 0, "traded": 0, "billed": 0}
    known = False
    for block in store.blocks():
        if block.height == 0:
            community = block.transactions[0].community()
            known = community.member(member) is not None
            continue
        for tx in block.transactions:
            msg = tx.message()
            if getattr(msg, "device", None) != member:
                continue
            if isinstance(msg, Order):
                steps = ", ".join(f"{s.energy_wh} Wh at {s.price_u_per_kwh / 1e6:.6f}" for s in msg.steps)
                rows.append(f"{msg.slot:>10}  order       {msg.side} {steps}")
            elif isinstance(msg, Award):
                totals["bought" if msg.side == "buy" else "sold"] += msg.energy_wh
                totals["traded"] += msg.amount_u
                why = f" ({msg.reason})" if msg.reason else ""
                rows.append(f"{msg.slot:>10}  award       {msg.status} {msg.energy_wh} of "
                            f"{msg.ordered_wh} Wh, {msg.amount_u / 1e6:+.4f}{why}")
            elif isinstance(msg, MeterReport):
                rows.append(f"{msg.slot:>10}  report      net {msg.net_wh} Wh")
            elif isinstance(msg, Settlement):
                totals["billed"] += msg.bill_u
                why = f": {msg.reason}" if msg.reason else ""
                rows.append(f"{msg.slot:>10}  settlement  bill {msg.bill_u / 1e6:+.4f} (trade "
                            f"{msg.trade_u / 1e6:+.4f}, imbalance {msg.imbalance_u / 1e6:+.4f}){why}")
    if not known:
        raise UsageError(f"{path}: {member!r} is not a member of this community")
    print(f"statement of {member} from {path}")
    print("\n".join(rows) if rows else "(nothing recorded yet)")
    print(f"bought {totals['bought']} Wh, sold {totals['sold']} Wh, traded {totals['traded'] / 1e6:+.4f}, "
          f"billed {totals['billed'] / 1e6:+.4f}")
    return 0


def run_follow(args: argparse.Namespace) -> int:
    from broker.topics import NAME, TopicError, Topics
    from gridmesh import aio
    from gridmesh.endpoints import target
    from ledger.follow import follow
    from ledger.replica import Replica

    if not NAME.fullmatch(args.id):
        raise UsageError(f"--id: {args.id!r} must match {NAME.pattern}")
    endpoint, community = target(args, principal=args.id)  # its status topic names it
    try:
        Topics(community)
    except TopicError as exc:
        raise UsageError(f"--community: {exc}") from None
    try:
        store = LedgerStore(args.path)
    except LedgerError as exc:
        raise UsageError(str(exc)) from None
    with store:
        replica = Replica(store, args.coordinator_key)
        aio.run(follow(replica, endpoint, community, args.id, args.until_height))
        counts = ", ".join(f"{k}={v}" for k, v in sorted(replica.counts.items())) or "nothing received"
        print(f"{args.id}: height {replica.height}; {counts}")
    return 1 if replica.refusals else 0


def run_proof(args: argparse.Namespace) -> int:
    wanted = args.tx.lower()
    if len(wanted) < 8 or any(c not in "0123456789abcdef" for c in wanted):
        raise UsageError(f"TX: {args.tx!r} must be a transaction hash or at least 8 of its hex digits")
    try:
        with LedgerStore.open_readonly(args.path) as store:
            found = [(block, index) for block in store.blocks()
                     for index, tx in enumerate(block.transactions) if tx.tx_hash.startswith(wanted)]
    except LedgerError as exc:
        raise UsageError(str(exc)) from None
    if not found:
        raise UsageError(f"{args.path} holds no transaction {args.tx}")
    if len(found) > 1:
        raise UsageError(f"{args.tx} matches {len(found)} transactions; give more digits")
    block, index = found[0]
    tx = block.transactions[index]
    leaves = [t.tx_hash for t in block.transactions]
    steps = inclusion_proof(leaves, index)
    print(f"transaction {tx.tx_hash} ({tx.label()})")
    print(f"block {block.height} (slot {block.header.slot}), position {index} of {len(leaves)}")
    for level, step in enumerate(steps):
        print(f"  level {level}: sibling {'left ' if step.sibling_is_left else 'right'} {step.sibling}")
    root = block.header.merkle_root
    ok = verify_proof(tx.tx_hash, steps, root)
    print(f"merkle root {root}: proof {'verifies' if ok else 'does NOT verify'}")
    return 0 if ok else 1


HEADER_TITLE = f"{'height':>6}  {'slot':>10}  {'t_s':>11}  {'txs':>5}  {'bits':>4}  {'nonce':>9}  hash"


def header_line(header: BlockHeader) -> str:
    return (f"{header.height:>6}  {header.slot:>10}  {header.t_s:>11}  {header.tx_count:>5}  "
            f"{header.difficulty_bits:>4}  {header.nonce:>9}  {header_hash(header)}")
