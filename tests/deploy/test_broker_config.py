"""``gridmesh deploy broker-config`` without a broker: the ACL derived from the topics,
the password file's format, the certificates and the files on disk."""

from __future__ import annotations

import base64
import datetime as dt
import shutil
import ssl
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from broker.community import Community, Member
from broker.identity import Identity
from broker.schema import to_dict
from broker.topics import TYPE_OF_KIND, Topics, parse_topic
from deploy import acl
from deploy.acl import AclError, Principals, acl_rules, allowed, check_coverage, kind_filter
from deploy.broker_config import BrokerPlan, broker_files, mosquitto_conf
from deploy.passwords import check_password, mosquitto_hash, password_line
from deploy.pki import Authority, PkiError
from gridmesh.cli import main

NOW = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)
TOPICS = Topics("demo")
PRINCIPALS = Principals("coordinator", ("h001", "h002", "r1"), bench="clock", observers=("ops",))
RULES = acl_rules(TOPICS, PRINCIPALS)


def community(*ids: str) -> Community:
    members = tuple(Member(i, Identity.derived(i, 1).public_key_hex) for i in ids)
    return Community(id="demo", members=members)


def registry(tmp_path: Path, *ids: str) -> Path:
    path = tmp_path / "community.yaml"
    path.write_text(yaml.safe_dump(to_dict(community(*ids)), sort_keys=False))
    return path


def example_topic(kind: str, name: str) -> str:
    """A concrete topic of ``kind`` that names ``name`` where it names someone."""
    filters = kind_filter(TOPICS, kind)
    return filters.replace("+", "load" if kind == "model" else name)


# -- the ACL ---------------------------------------------------------------------------

def test_every_topic_kind_has_a_rule_and_its_filter_builds_that_kind() -> None:
    check_coverage()
    assert set(acl.RULES) == set(TYPE_OF_KIND)
    for kind in TYPE_OF_KIND:
        parsed = parse_topic(example_topic(kind, "h001"))
        assert parsed.kind == kind
        writers = [u for u in ("h001", "coordinator", "clock") if allowed(RULES, u, example_topic(kind, u),
                                                                           "write")]
        assert writers, f"nobody may publish {kind}"


def test_a_new_topic_kind_without_a_rule_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TYPE_OF_KIND, "alarm", "alarm")
    with pytest.raises(AclError, match="alarm have no ACL rule"):
        check_coverage()
    with pytest.raises(AclError, match="alarm have no ACL rule"):
        acl_rules(TOPICS, PRINCIPALS)


@pytest.mark.parametrize("kind", ["status", "telemetry", "order", "report", "share"])
def test_a_member_publishes_its_own_submissions_only(kind: str) -> None:
    assert allowed(RULES, "h001", TOPICS.device("h001", kind), "write")
    assert not allowed(RULES, "h001", TOPICS.device("h002", kind), "write")
    assert not allowed(RULES, "h001", TOPICS.device("h002", kind), "read")


@pytest.mark.parametrize("kind", ["result", "award", "settlement", "proof"])
def test_only_the_coordinator_answers_and_only_the_member_reads_its_answers(kind: str) -> None:
    assert allowed(RULES, "coordinator", TOPICS.device("h002", kind), "write")
    assert allowed(RULES, "h002", TOPICS.device("h002", kind), "read")
    assert not allowed(RULES, "h001", TOPICS.device("h002", kind), "read")
    for someone in ("h001", "h002", "clock", "r1", "ops"):
        assert not allowed(RULES, someone, TOPICS.device("h002", kind), "write")


@pytest.mark.parametrize("topic", [TOPICS.clearing, TOPICS.block, TOPICS.block_data, TOPICS.model("pv")])
def test_public_market_data_is_read_by_all_and_published_by_the_coordinator_alone(topic: str) -> None:
    for someone in ("h001", "r1", "clock", "coordinator", "ops"):
        assert allowed(RULES, someone, topic, "read")
    assert allowed(RULES, "coordinator", topic, "write")
    for someone in ("h001", "r1", "clock", "ops"):
        assert not allowed(RULES, someone, topic, "write")


def test_the_clock_and_faults_belong_to_the_bench() -> None:
    assert allowed(RULES, "clock", TOPICS.tick, "write") and allowed(RULES, "clock", TOPICS.gate, "write")
    assert allowed(RULES, "h001", TOPICS.tick, "read") and not allowed(RULES, "h001", TOPICS.gate, "read")
    assert allowed(RULES, "coordinator", TOPICS.gate, "read")
    assert allowed(RULES, "h001", TOPICS.ack("h001"), "write")
    assert not allowed(RULES, "h001", TOPICS.ack("h002"), "write")
    assert allowed(RULES, "clock", TOPICS.ack("h002"), "read")
    for someone in ("h001", "coordinator"):
        assert not allowed(RULES, someone, TOPICS.tick, "write")
        assert not allowed(RULES, someone, TOPICS.sim_fault, "write")
    assert allowed(RULES, "clock", TOPICS.sim_fault, "write")


def test_observers_read_everything_and_write_nothing_but_their_own() -> None:
    for kind in TYPE_OF_KIND:
        assert allowed(RULES, "ops", example_topic(kind, "h001"), "read")
    assert not allowed(RULES, "ops", TOPICS.device("h001", "order"), "write")


def test_the_rendered_acl_uses_patterns_for_own_topics_and_names_each_user() -> None:
    text = acl.render_acl(RULES, "demo")
    for kind in ("order", "report", "share", "telemetry", "status"):
        assert f"pattern write gm/v1/demo/dev/%u/{kind}\n" in text
    assert "pattern write gm/v1/demo/clock/ack/%u\n" in text
    assert "\nuser coordinator\ntopic read gm/v1/demo/dev/+/order\n" in text
    assert "user ops\ntopic read gm/v1/demo/#\n" in text
    assert not any(line.startswith("pattern") and "%u" not in line for line in text.splitlines())
    assert not any(line.startswith("topic") for line in text.split("\nuser ", 1)[0].splitlines())


# -- passwords -------------------------------------------------------------------------

def test_password_lines_are_mosquitto_pbkdf2_sha512() -> None:
    line = password_line("h001", "secret", salt=bytes(range(12)))
    assert line == "h001:" + mosquitto_hash("secret", bytes(range(12)))
    assert line.startswith("h001:$7$101$AAECAwQFBgcICQoL$")
    assert check_password(line, "secret") and not check_password(line, "Secret")


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd is not installed")
def test_mosquitto_passwd_and_we_agree(tmp_path: Path) -> None:
    theirs = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(theirs), "h001", "pässword 1"], check=True)
    assert check_password(theirs.read_text().strip(), "pässword 1")
    assert not check_password(theirs.read_text().strip(), "password 1")
    _user, _, stored = theirs.read_text().strip().partition(":")
    salt = base64.b64decode(stored.split("$")[3])
    assert password_line("h001", "pässword 1", salt=salt) == f"h001:{stored}"  # the same bytes


# -- certificates ----------------------------------------------------------------------

def test_certificates_chain_to_the_community_ca_with_the_principal_as_cn(tmp_path: Path) -> None:
    ca = Authority.create("demo", NOW, 30)
    server = ca.issue_server(("broker.lan", "192.168.1.10"), NOW, 30)
    client = ca.issue_client("h001", NOW, 30)
    cert = x509.load_pem_x509_certificate(client.cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "h001"
    assert cert.not_valid_before_utc < NOW  # a Pi whose clock lags a little accepts it
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    cert.verify_directly_issued_by(ca.cert)
    names = x509.load_pem_x509_certificate(server.cert_pem).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["broker.lan"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["192.168.1.10"]
    (tmp_path / "c.pem").write_bytes(client.cert_pem)
    (tmp_path / "c.key").write_bytes(client.key_pem)
    context = ssl.create_default_context(cadata=ca.cert_pem.decode())
    context.load_cert_chain(tmp_path / "c.pem", tmp_path / "c.key")  # key and cert belong together


def test_a_saved_ca_loads_and_a_mismatched_one_is_refused() -> None:
    ca, other = Authority.create("demo", NOW, 30), Authority.create("demo", NOW, 30)
    assert Authority.load(ca.cert_pem, ca.key_pem).cert == ca.cert
    with pytest.raises(PkiError, match="does not belong"):
        Authority.load(ca.cert_pem, other.key_pem)
    leaf = ca.issue_client("h001", NOW, 30)
    with pytest.raises(PkiError, match="not a CA"):
        Authority.load(leaf.cert_pem, leaf.key_pem)
    with pytest.raises(PkiError, match="neither an IP address nor a host name"):
        ca.issue_server(("bad host",), NOW, 30)


# -- the files -------------------------------------------------------------------------

def test_the_plan_renders_tls_and_password_configurations() -> None:
    tls = BrokerPlan(community("h001"), "tls", ("127.0.0.1",), "/etc/mosquitto/gm", port=8884)
    text = mosquitto_conf(tls)
    for line in ("allow_anonymous false", "listener 8884", "require_certificate true",
                 "use_identity_as_username true", "persistence true", "acl_file /etc/mosquitto/gm/acl",
                 "persistence_location /var/lib/mosquitto/", "max_queued_messages 0"):
        assert f"\n{line}\n" in text
    assert "password_file" not in text
    password = BrokerPlan(community("h001"), "password", ("127.0.0.1",), "/etc/mosquitto/gm")
    text = mosquitto_conf(password)
    assert "\npassword_file /etc/mosquitto/gm/passwd\n" in text and "require_certificate" not in text
    assert "\ncertfile /etc/mosquitto/gm/server.crt\n" in text  # passwords never travel in the clear


def test_password_files_hold_each_principals_password() -> None:
    plan = BrokerPlan(community("h001", "h002"), "password", ("127.0.0.1",), "/x", bench="clock")
    files = {f.path: f for f in broker_files(plan, NOW, Authority.create("demo", NOW, 30))}
    lines = files["passwd"].content.decode().splitlines()
    assert [line.split(":")[0] for line in lines] == ["coordinator", "h001", "h002", "clock"]
    for line in lines:
        user = line.split(":")[0]
        password = files[f"devices/{user}/password"].content.decode().strip()
        assert check_password(line, password)
        assert files[f"devices/{user}/password"].mode == 0o600
    assert len({f.content for p, f in files.items() if p.endswith("/password")}) == 4


@pytest.mark.parametrize(("change", "problem"), [
    ({"auth": "kerberos"}, "auth must be one of tls, password"),
    ({"port": 0}, "port must be 1..65535"),
    ({"install_dir": "relative/dir"}, "install_dir must be an absolute path"),
    ({"bench": "h001"}, "principal 'h001' is named twice"),
    ({"observers": ("bad/name",)}, "principal 'bad/name' must match"),
])
def test_bad_plans_say_what_is_wrong(change: dict[str, object], problem: str) -> None:
    base: dict[str, object] = {"community": community("h001"), "auth": "tls", "hosts": ("127.0.0.1",),
                               "install_dir": "/x"}
    with pytest.raises(ValueError, match=problem):
        BrokerPlan(**{**base, **change})  # type: ignore[arg-type]


def modes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*")}


def test_the_verb_writes_every_file_with_private_keys_0600(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "broker"
    code = main(["deploy", "broker-config", "--community", str(registry(tmp_path, "h001", "h002")),
                 "--host", "127.0.0.1", "--out", str(out), "--bench", "clock"])
    assert code == 0
    assert "credentials for 4 principals" in capsys.readouterr().out
    found = modes(out)
    for key in ("server.key", "ca.key", "devices/h001/client.key", "devices/coordinator/client.key"):
        assert found[key] == 0o600, key
    assert found["devices/h002/client.crt"] == 0o644 and found["devices"] == 0o700
    assert {p for p in found if p.count("/") == 1 and p.startswith("devices/")} == {
        "devices/coordinator", "devices/h001", "devices/h002", "devices/clock"}
    conf = (out / "mosquitto.conf").read_text()
    assert f"acl_file {out.resolve()}/acl" in conf
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


def test_an_existing_folder_is_kept_unless_forced_and_a_ca_can_be_reused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = str(registry(tmp_path, "h001"))
    out = tmp_path / "broker"
    args = ["deploy", "broker-config", "--community", source, "--host", "127.0.0.1", "--out", str(out)]
    assert main(args) == 0
    ca_before = (out / "ca.crt").read_bytes()
    key_before = (out / "devices/h001/client.key").read_bytes()
    assert main(args) == 2
    assert "exists and is not empty; pass --force" in capsys.readouterr().err
    assert (out / "devices/h001/client.key").read_bytes() == key_before  # untouched
    assert main([*args, "--force", "--ca", str(out)]) == 0
    assert (out / "ca.crt").read_bytes() == ca_before  # certificates issued before stay valid
    assert (out / "devices/h001/client.key").read_bytes() != key_before


@pytest.mark.parametrize(("extra", "problem"), [
    (["--host", "not a host"], "--host: 'not a host' is neither an IP address nor a host name"),
    (["--port", "70000"], "--port: port must be 1..65535"),
    (["--ca", "nowhere"], "--ca: cannot read nowhere/ca.crt"),
    (["--bench", "coordinator"], "principal 'coordinator' is named twice"),
])
def test_bad_arguments_are_one_line_and_write_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      extra: list[str], problem: str) -> None:
    out = tmp_path / "broker"
    code = main(["deploy", "broker-config", "--community", str(registry(tmp_path, "h001")),
                 "--host", "127.0.0.1", "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("gridmesh deploy: ") and problem in err and err.count("\n") == 1
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["community.yaml"]


def test_a_bad_registry_names_the_file_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "community.yaml"
    bad.write_text("id: demo\nmembers: [{id: h001, public_key: zz}]\n")
    assert main(["deploy", "broker-config", "--community", str(bad), "--host", "h", "--out",
                 str(tmp_path / "o")]) == 2
    assert f"{bad}: members[0].public_key" in capsys.readouterr().err
    bad.write_text("id: demo\n")
    assert main(["deploy", "broker-config", "--community", str(bad), "--host", "h", "--out",
                 str(tmp_path / "o")]) == 2
    assert f"{bad}: members: the registry lists no members" in capsys.readouterr().err
