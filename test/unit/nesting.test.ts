/** How deeply a body nests, read from its bytes before anything parses or walks it. */
import { describe, expect, it } from "vitest";
import { nestingDepth } from "../../src/server/nesting.ts";

const bytes = (text: string): Buffer => Buffer.from(text);

describe("the nesting depth of a JSON text", () => {
  it.each([
    ["a scalar", "42", 0],
    ["an object", '{"a":1}', 1],
    ["objects and arrays inside each other", '{"a":[{"b":[1,[2]]}]}', 5],
    ["brackets inside strings, escaped quotes too", '{"a":"[[[{\\"[[[","b":[]}', 2],
  ])("counts %s", (_what, text, depth) => {
    expect(nestingDepth(bytes(text))).toBe(depth);
  });

  it("reads 100,000 levels without recursion, and stops early past a limit", () => {
    const deep = bytes(`${"[".repeat(100_000)}${"]".repeat(100_000)}`);
    expect(nestingDepth(deep)).toBe(100_000);
    expect(nestingDepth(deep, 1_000)).toBe(1_001);
  });
});
