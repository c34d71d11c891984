// Writes the end-to-end test's fixture repository: a small Python package whose cart
// total ignores quantities, with a unit test that fails because of it.
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";

export const FILES: Record<string, string> = {
  "README.md": "# shop\n\nA tiny shopping cart.\n",
  "AGENTS.md": "Run `python3 -m unittest -v` before finishing.\n",
  "shop/__init__.py": "",
  "shop/cart.py": [
    '"""A shopping cart."""',
    "",
    "from dataclasses import dataclass, field",
    "",
    "",
    "@dataclass",
    "class Line:",
    "    name: str",
    "    price_cents: int",
    "    quantity: int = 1",
    "",
    "",
    "@dataclass",
    "class Cart:",
    "    lines: list[Line] = field(default_factory=list)",
    "",
    "    def add(self, name: str, price_cents: int, quantity: int = 1) -> None:",
    "        self.lines.append(Line(name, price_cents, quantity))",
    "",
    "    def total_cents(self) -> int:",
    '        """The price of everything in the cart."""',
    "        return sum(line.price_cents for line in self.lines)",
    "",
  ].join("\n"),
  "tests/__init__.py": "",
  "tests/test_cart.py": [
    "import unittest",
    "",
    "from shop.cart import Cart",
    "",
    "",
    "class CartTest(unittest.TestCase):",
    "    def test_empty(self) -> None:",
    "        self.assertEqual(Cart().total_cents(), 0)",
    "",
    "    def test_quantities(self) -> None:",
    "        cart = Cart()",
    '        cart.add("apple", 50, quantity=3)',
    '        cart.add("pear", 80)',
    "        self.assertEqual(cart.total_cents(), 230)",
    "",
    "",
    'if __name__ == "__main__":',
    "    unittest.main()",
    "",
  ].join("\n"),
};

/** The line the fix puts in shop/cart.py; the test checks the file on disk for it. */
export const FIXED_LINE = "        return sum(line.price_cents * line.quantity for line in self.lines)";

function git(cwd: string, ...args: string[]): void {
  execFileSync("git", args, {
    cwd,
    stdio: "ignore",
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: "errand e2e",
      GIT_AUTHOR_EMAIL: "e2e@example.invalid",
      GIT_COMMITTER_NAME: "errand e2e",
      GIT_COMMITTER_EMAIL: "e2e@example.invalid",
    },
  });
}

/** Creates the repository in `folder` (a new directory) and commits it. */
export function createFixtureRepository(folder: string): string {
  mkdirSync(folder, { recursive: true });
  for (const [name, text] of Object.entries(FILES)) {
    const file = path.join(folder, name);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text);
  }
  git(folder, "init", "--quiet", "--initial-branch=main");
  git(folder, "add", "--all");
  git(folder, "commit", "--quiet", "-m", "shop: cart");
  return folder;
}
