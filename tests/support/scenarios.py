"""The scripted scenarios and the repository that several end-to-end tests share."""

from __future__ import annotations

from typing import Any

REPO = {
    "calc.py": "def add(a, b):\n    return a - b\n",
    "test_calc.py": (
        "import unittest\n\nfrom calc import add\n\n\n"
        "class AddTest(unittest.TestCase):\n"
        "    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n"
    ),
    "notes/old.txt": "".join(f"line {i}\n" for i in range(1, 9)) + "to be renamed\n",
    "junk.txt": "delete me\n",
}


FIX_PATCH = """*** Begin Patch
*** Update File: calc.py
@@ def add(a, b):
-    return a - b
+    return a + b
*** Add File: docs/usage.md
+# Usage
+
+`add(2, 3)` returns 5. ✓
*** Delete File: junk.txt
*** Update File: notes/old.txt
*** Move to: notes/new.txt
@@
 line 8
-to be renamed
+renamed — with ünïcödé 🚀
*** End Patch
"""


FIX_SCENARIO: dict[str, Any] = {
    "name": "fix-add",
    "turns": [
        {"tool_calls": [{"name": "shell", "arguments": {"command": "python3 -m unittest"}}]},
        {"tool_calls": [{"name": "apply_patch", "arguments": {"patch": FIX_PATCH}}]},
        {"tool_calls": [{"name": "shell", "arguments": {"command": "python3 -m unittest"}}]},
        {
            "content": "Fixed `add` 【F:calc.py†L1-L2】. Tests pass 【c1-2†L1-L3】.",
        },
    ],
}


EXPECTED_AFTER = {
    "calc.py": "def add(a, b):\n    return a + b\n",
    "docs/usage.md": "# Usage\n\n`add(2, 3)` returns 5. ✓\n",
    "notes/new.txt": "".join(f"line {i}\n" for i in range(1, 9)) + "renamed — with ünïcödé 🚀\n",
}
