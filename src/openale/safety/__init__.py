"""Agent safety: detect risky behaviour in commands, audit logs and trajectories.

``scan_command`` checks one shell command line against the rules (fast enough
to run before every command); ``scan_path`` reads an audit log or trajectory
file; rules are declarative YAML (``default_rules.yaml``) that users extend.
"""

from openale.safety.detect import ScanContext, scan_command, scan_file_op, scan_output
from openale.safety.findings import CATEGORIES, SEVERITIES, Evidence, Finding, Severity
from openale.safety.rules import DetectionRule, RuleError, RuleSet, default_rules, load_rules

__all__ = [
    "CATEGORIES",
    "SEVERITIES",
    "Evidence",
    "Finding",
    "DetectionRule",
    "RuleError",
    "RuleSet",
    "ScanContext",
    "Severity",
    "default_rules",
    "load_rules",
    "scan_command",
    "scan_file_op",
    "scan_output",
]
