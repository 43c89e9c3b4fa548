"""Audit the locked requirements for known vulnerabilities with pip-audit (``make audit``).

Usage: ``python bin/audit.py [--offline-ok] [REQUIREMENTS]`` (default ``requirements.lock``).

Exit status: 0 when every dependency the advisory service knows is free of known vulnerabilities;
1 on a finding (each one is listed with its fixed versions); 2 when the audit could not be done:
pip-audit missing, or the advisory service unreachable. With ``--offline-ok`` (CI), an unreachable
service prints ``audit skipped: no network ...`` and exits 0, so CI on a machine without the service
still passes, while a real finding still fails it.

pip-audit's own exit status is not enough: when the service answers "not found" for every package
(a mirror or proxy that serves only the package index), it reports "No known vulnerabilities found"
having audited nothing. So this counts the dependencies it really audited, and checks one first
(a short timeout) before spending a timeout on each of a hundred.

``PIP_AUDIT`` names the pip-audit executable (default: the one beside this Python), ``AUDIT_SERVICE``
its vulnerability service (``pypi``, the default, or ``osv``).
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

OK, FINDING, NOT_DONE = 0, 1, 2


def _pip_audit() -> str:
    return os.environ.get("PIP_AUDIT") or str(Path(sys.executable).parent / "pip-audit")


def _run(requirements: Path, timeout: int) -> dict | None:
    """pip-audit's JSON report for ``requirements``, or None if it could not produce one."""
    command = [
        _pip_audit(),
        "--requirement",
        str(requirements),
        "--no-deps",  # the lock pins every package already
        "--disable-pip",
        "--format",
        "json",
        "--progress-spinner",
        "off",
        "--timeout",
        str(timeout),
        "--vulnerability-service",
        os.environ.get("AUDIT_SERVICE", "pypi"),
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30 * 60)
    except FileNotFoundError:
        print(f"audit failed: {command[0]} not found; install the dev dependencies (make install).")
        raise SystemExit(NOT_DONE) from None
    # 0: nothing found, 1: findings; anything else, or no report (a network error is a traceback), failed.
    try:
        return json.loads(result.stdout) if result.returncode in (0, 1) else None
    except json.JSONDecodeError:
        return None


def _audited(report: dict | None) -> list[dict]:
    if report is None:
        return []
    return [dep for dep in report.get("dependencies", []) if "skip_reason" not in dep]


def _first_pin(requirements: Path) -> str | None:
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            return line
    return None


def audit(requirements: Path, offline_ok: bool) -> int:
    """Run the audit and print its outcome; the exit status (module docstring)."""

    def unreachable() -> int:
        service = os.environ.get("AUDIT_SERVICE", "pypi")
        print(
            f"audit skipped: no network (the {service} advisory service could not be reached, or audited "
            "no dependency); run `make audit` where it can be reached."
        )
        return OK if offline_ok else NOT_DONE

    pin = _first_pin(requirements)
    if pin is None:
        print(f"audit failed: no pinned requirement (name==version) in {requirements}.")
        return NOT_DONE
    with tempfile.TemporaryDirectory() as folder:
        probe = Path(folder) / "probe.txt"
        probe.write_text(pin + "\n")
        if not _audited(_run(probe, timeout=10)):
            return unreachable()

    report = _run(requirements, timeout=15)
    audited = _audited(report)
    if not audited:
        return unreachable()
    findings = [(dep, vuln) for dep in audited for vuln in dep.get("vulns", [])]
    skipped = len(report["dependencies"]) - len(audited)
    if findings:
        print(f"audit: {len(findings)} known vulnerabilit{'y' if len(findings) == 1 else 'ies'} in {requirements}:")
        for dep, vuln in findings:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            print(f"  {dep['name']} {dep['version']}: {vuln['id']} (fixed in: {fixed})")
        return FINDING
    print(f"audit: {len(audited)} dependencies checked, no known vulnerabilities ({skipped} not on the index).")
    return OK


def main(argv: list[str]) -> int:
    offline_ok = "--offline-ok" in argv
    paths = [arg for arg in argv if not arg.startswith("--")]
    return audit(Path(paths[0] if paths else "requirements.lock"), offline_ok)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
