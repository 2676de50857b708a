import { stat } from "node:fs/promises";

/** True when something exists at `file` (any kind of file). */
export async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}
