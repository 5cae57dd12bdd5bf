"""Precision and recall of the rules on a labelled corpus of commands.

The corpus is two files: benign commands (one a line) and risky ones
(``category<TAB>command``). A command is held out when the first byte of the
SHA-256 of its line is divisible by 5: about a fifth of each file, fixed before
the rules were tuned, reported separately.

Per category: a true positive is a risky command of that category with a
finding of that category; a false positive is a benign command with a finding
of that category; a risky command of another category that also matches
(an exfiltration that reads a key is credential access too) counts as neither.
Overall: a risky command with any finding is detected; a benign one with any
finding is a false alarm.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from openale.safety.detect import ScanContext, scan_command
from openale.safety.findings import CATEGORIES
from openale.safety.rules import RuleSet


@dataclass(frozen=True)
class LabelledCommand:
    command: str
    category: str | None  # None: benign
    held_out: bool


def held_out(line: str) -> bool:
    return hashlib.sha256(line.encode()).digest()[0] % 5 == 0


def load_corpus(benign: Path, risky: Path) -> list[LabelledCommand]:
    out = []
    for line in Path(benign).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            out.append(LabelledCommand(line, None, held_out(line)))
    for line in Path(risky).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            category, command = line.split("\t", 1)
            out.append(LabelledCommand(command, category, held_out(line)))
    return out


@dataclass
class DetectionScore:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def as_dict(self) -> dict:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
        }


@dataclass
class Evaluation:
    per_category: dict[str, DetectionScore]
    overall: DetectionScore
    misses: list[LabelledCommand]  # risky commands not flagged as their category
    false_alarms: list[tuple[LabelledCommand, list[str]]]  # benign commands and the rules they hit


def evaluate(
    samples: list[LabelledCommand], rules: RuleSet | None = None, context: ScanContext | None = None
) -> Evaluation:
    per = {c: DetectionScore() for c in CATEGORIES}
    overall = DetectionScore()
    misses, alarms = [], []
    for s in samples:
        findings = scan_command(s.command, context, rules)
        cats = {f.category for f in findings}
        if s.category is None:
            for c in cats:
                per.setdefault(c, DetectionScore()).fp += 1
            if findings:
                overall.fp += 1
                alarms.append((s, sorted({f.rule for f in findings})))
            continue
        score = per.setdefault(s.category, DetectionScore())
        if s.category in cats:
            score.tp += 1
        else:
            score.fn += 1
            misses.append(s)
        if findings:
            overall.tp += 1
        else:
            overall.fn += 1
    return Evaluation(per, overall, misses, alarms)
