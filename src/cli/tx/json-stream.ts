/**
 * kubectl reads a file whose first non-blank character is `{` as a stream of
 * JSON objects (one after another, any whitespace between). Pure.
 */

interface Scan {
  depth: number;
  inString: boolean;
  escaped: boolean;
  start: number;
}

/** Advances the scan over one character inside a string. */
function stepInString(scan: Scan, c: string): void {
  if (scan.escaped) scan.escaped = false;
  else if (c === "\\") scan.escaped = true;
  else if (c === '"') scan.inString = false;
}

/** Advances the scan over one character outside strings; returns true when a top-level value ends. */
function stepOutside(scan: Scan, c: string, index: number): boolean {
  if (c === '"') scan.inString = true;
  else if (c === "{" || c === "[") {
    if (scan.depth === 0) scan.start = index;
    scan.depth += 1;
  } else if (c === "}" || c === "]") {
    scan.depth -= 1;
    return scan.depth === 0;
  } else if (scan.depth === 0 && !/\s/.test(c)) {
    throw new SyntaxError(`unexpected '${c}' between JSON objects at offset ${index}`);
  }
  return false;
}

/** The texts of the top-level JSON values in `text`, in order; a SyntaxError names what is wrong. */
export function splitJsonStream(text: string): string[] {
  const scan: Scan = { depth: 0, inString: false, escaped: false, start: 0 };
  const values: string[] = [];
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charAt(i);
    if (scan.inString) stepInString(scan, c);
    else if (stepOutside(scan, c, i)) values.push(text.slice(scan.start, i + 1));
  }
  if (scan.depth !== 0 || scan.inString) throw new SyntaxError("the last JSON object is not closed");
  return values;
}

export function looksLikeJson(text: string): boolean {
  return text.trimStart().startsWith("{");
}
