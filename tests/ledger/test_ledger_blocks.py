"""Transactions and block building: hashing, decoding, canonical order, linking, signing."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from ledger_chain import COORDINATOR, MEMBERS, make_community, slot_orders, slot_outcome

from broker.codec import canonical_json
from broker.identity import Verifier
from broker.messages import MeterReport, Order, message_dict
from broker.schema import to_dict
from ledger.blocks import GENESIS_PREV, build_block, header_hash
from ledger.errors import ChainError, LedgerError, TransactionError
from ledger.merkle import merkle_root
from ledger.pow import header_digest, leading_zero_bits
from ledger.transactions import KIND_ORDER, Transaction, canonical_order

SLOT = 1_888_000


def test_transaction_hash_is_sha256_of_canonical_kind_and_body() -> None:
    order = slot_orders(SLOT)[0]
    tx = Transaction.from_message("order", order)
    expected = hashlib.sha256(canonical_json({"kind": "order", "body": message_dict(order)}))
    assert tx.tx_hash == expected.hexdigest()
    assert tx.body["sig"] == order.sig


def test_transaction_decodes_back_to_its_message() -> None:
    order = slot_orders(SLOT)[1]
    assert Transaction.from_message("order", order).message() == order


def test_community_transaction_round_trips() -> None:
    community = make_community()
    tx = Transaction.from_community(community)
    assert tx.kind == "community"
    assert tx.body == to_dict(community)
    assert tx.community() == community
    assert tx.label() == "community demo"


def test_from_message_refuses_a_kind_that_does_not_match() -> None:
    with pytest.raises(TransactionError, match="a report transaction holds a MeterReport, got order"):
        Transaction.from_message("report", slot_orders(SLOT)[0])
    with pytest.raises(TransactionError, match="not a message kind"):
        Transaction.from_message("community", slot_orders(SLOT)[0])


def test_transactions_refuse_floats_and_unknown_kinds() -> None:
    with pytest.raises(TransactionError, match="floats are not allowed"):
        Transaction("order", {"energy_wh": 1.5})
    with pytest.raises(TransactionError, match="unknown transaction kind"):
        Transaction("gift", {})
    assert isinstance(TransactionError("x"), LedgerError)


def test_a_body_that_does_not_decode_says_why() -> None:
    body = message_dict(slot_orders(SLOT)[0])
    body["side"] = "lend"
    tx = Transaction("order", body)
    with pytest.raises(TransactionError, match="side: must be one of buy, sell"):
        tx.message()
    assert tx.label() == "order"


def test_labels_name_what_a_person_would_look_for() -> None:
    labels = [tx.label() for tx in slot_outcome(SLOT)]
    assert labels[0] == f"clearing slot {SLOT}"
    assert labels[1] == f"award h001:{SLOT}:0"
    assert Transaction.from_message("order", slot_orders(SLOT)[2]).label() == f"order h003:{SLOT}:0"
    report = MEMBERS["h001"].sign(MeterReport("h001", SLOT, 1, 0, 1, 0, 5))
    assert Transaction.from_message("report", report).label() == f"report h001:{SLOT}:report"


def test_canonical_order_is_by_kind_then_hash() -> None:
    txs = slot_outcome(SLOT) + [Transaction.from_message("order", o) for o in slot_orders(SLOT)]
    ordered = canonical_order(txs)
    keys = [(KIND_ORDER.index(tx.kind), tx.tx_hash) for tx in ordered]
    assert keys == sorted(keys)
    assert [tx.kind for tx in ordered][:4] == ["order", "order", "order", "clearing"]


def test_genesis_block() -> None:
    community_tx = Transaction.from_community(make_community())
    block = build_block(None, -1, 1000, [community_tx], 6, COORDINATOR)
    h = block.header
    assert (h.height, h.prev_hash, h.slot, h.tx_count, h.difficulty_bits) == (0, GENESIS_PREV, -1, 1, 6)
    assert h.merkle_root == merkle_root([community_tx.tx_hash])
    assert leading_zero_bits(header_digest(h)) >= 6
    assert Verifier().verify(h, COORDINATOR.public_key_hex)
    assert block.hash == header_hash(h) == header_digest(h).hex()


def test_next_block_links_orders_and_is_signed() -> None:
    genesis = build_block(None, -1, 1000, [Transaction.from_community(make_community())], 6, COORDINATOR)
    txs = slot_outcome(SLOT) + [Transaction.from_message("order", o) for o in slot_orders(SLOT)]
    block = build_block(genesis.header, SLOT, 2000, txs, 6, COORDINATOR)
    h = block.header
    assert (h.height, h.prev_hash, h.slot, h.tx_count) == (1, genesis.hash, SLOT, len(txs))
    assert block.transactions == canonical_order(txs)
    assert h.merkle_root == merkle_root([tx.tx_hash for tx in block.transactions])
    assert Verifier().verify(h, COORDINATOR.public_key_hex)
    assert not Verifier().verify(dataclasses.replace(h, t_s=2001), COORDINATOR.public_key_hex)


def test_an_empty_block_has_the_empty_root() -> None:
    genesis = build_block(None, -1, 1000, [Transaction.from_community(make_community())], 0, COORDINATOR)
    block = build_block(genesis.header, SLOT, 2000, [], 0, COORDINATOR)
    assert block.header.merkle_root == hashlib.sha256(b"").hexdigest()
    assert block.header.tx_count == 0


def test_slots_must_fit_the_chain() -> None:
    community_tx = Transaction.from_community(make_community())
    with pytest.raises(ChainError, match="genesis block has slot -1"):
        build_block(None, SLOT, 1000, [community_tx], 0, COORDINATOR)
    genesis = build_block(None, -1, 1000, [community_tx], 0, COORDINATOR)
    first = build_block(genesis.header, SLOT, 2000, [], 0, COORDINATOR)
    with pytest.raises(ChainError, match=f"slot {SLOT} does not follow the head's slot {SLOT}"):
        build_block(first.header, SLOT, 3000, [], 0, COORDINATOR)


def test_order_of_an_unsigned_message_still_records_but_will_not_verify() -> None:
    order = Order("h001", SLOT, 0, "buy", slot_orders(SLOT)[0].steps, 10)
    tx = Transaction.from_message("order", order)
    assert tx.body["sig"] == ""
    assert not Verifier().verify(tx.message(), MEMBERS["h001"].public_key_hex)


@pytest.mark.parametrize("kind", ["order", "report", "settlement"])
def test_a_transaction_hashes_the_canonical_json_of_kind_and_body(kind: str) -> None:
    body = {"device": "h001", "note": 'naïve "quoted"', "steps": [{"a": 1}], "slot": 5}
    tx = Transaction(kind, body)
    assert tx.encoded == canonical_json({"kind": kind, "body": body})
    assert tx.body_encoded == canonical_json(body)
