"""Fail when any measured module is below the coverage threshold."""

from __future__ import annotations

import json
from pathlib import Path
import sys


def main(report: str, threshold: float) -> int:
    """Check every file in a coverage.py JSON report."""
    files = json.loads(Path(report).read_text())["files"]
    failures = []
    for name, data in sorted(files.items()):
        percent = float(data["summary"]["percent_covered"])
        if percent < threshold:
            failures.append(f"  {name}: {percent:.1f} %")
    if failures:
        print(f"coverage below {threshold:.0f} % in:")
        print("\n".join(failures))
        return 1
    print(f"coverage: all {len(files)} modules at or above {threshold:.0f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2])))
