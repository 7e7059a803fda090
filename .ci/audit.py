"""CI dependency audit: pip-audit over the installed environment, read honestly.

pip-audit exits 0 and prints "No known vulnerabilities found" even when it
could audit nothing (no route to PyPI / the OSV service: every package is
"skipped"). This wrapper reads its JSON report and

* fails (exit 1) on any real finding, listing package, version, id and fix;
* warns loudly, without failing, when the service was unreachable and (part
  of) the environment could not be audited;
* passes when every dependency was audited and none is vulnerable.

Usage: ``python .ci/audit.py [PIP_AUDIT_EXE]`` (default: pip-audit next to Python).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _report(exe: str) -> dict:
    cmd = [
        exe,
        "--skip-editable",
        "--progress-spinner",
        "off",
        "--format",
        "json",
        "--timeout",
        "20",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        print(
            f"audit: WARNING: pip-audit gave no report (exit {proc.returncode}): "
            f"{proc.stderr.strip()[-300:]}"
        )
        return {"dependencies": []}


def main(argv: list[str]) -> int:
    exe = argv[1] if len(argv) > 1 else str(Path(sys.executable).with_name("pip-audit"))
    deps = _report(exe).get("dependencies", [])
    skipped = [d for d in deps if d.get("skip_reason")]
    findings = [(d, v) for d in deps for v in d.get("vulns", [])]
    for dep, vuln in findings:
        fix = ", ".join(vuln.get("fix_versions", [])) or "no fix yet"
        print(f"audit: VULNERABLE {dep['name']} {dep['version']}: {vuln['id']} (fix: {fix})")
    if skipped:
        print(
            f"audit: WARNING: {len(skipped)} of {len(deps)} packages could not be audited "
            f"(vulnerability service unreachable?), e.g. {skipped[0]['skip_reason']}"
        )
    audited = len(deps) - len(skipped)
    print(f"audit: {audited} packages audited, {len(findings)} known vulnerabilities")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
