/** Tables and ages the way kubectl prints them. Pure. */

/** kubectl's column gap. */
const GAP = "   ";

/** Left-aligned columns, each as wide as its widest cell; no trailing spaces. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => (row[i] ?? "").length)));
  const line = (cells: readonly string[]): string => cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join(GAP).trimEnd();
  return [line(headers), ...rows.map(line)];
}

/**
 * kubectl's AGE: `45s`, `3m12s`, `25m`, `4h10m`, `30h`, `3d4h`, `12d`
 * (coarser as it grows). A time in the future (clock skew) shows as `0s`.
 */
export function humanAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  const d = Math.floor(h / 24);
  if (s < 120) return `${s}s`;
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (h < 3) return `${m}m`;
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  if (d < 8) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
  return `${d}d`;
}

/** JSON output: indented like kubectl's `-o json`. */
export function renderJson(value: unknown): string {
  return JSON.stringify(value, null, 2);
}
