/** Filesystem types as statfs reports them (Linux magic numbers): which one a directory is on, and whether it is memory. */

/** The types a bench directory is likely to be on; others are shown in hex. */
const NAMES: ReadonlyMap<number, string> = new Map([
  [0xef53, "ext4"],
  [0x58465342, "xfs"],
  [0x9123683e, "btrfs"],
  [0x2fc12fc1, "zfs"],
  [0x794c7630, "overlayfs"],
  [0x01021994, "tmpfs"],
  [0x858458f6, "ramfs"],
]);

const IN_MEMORY: ReadonlySet<string> = new Set(["tmpfs", "ramfs"]);

/** ext2 and ext3 share ext4's number. */
export function filesystemName(type: number): string {
  return NAMES.get(type) ?? `0x${type.toString(16)}`;
}

/** Whether a file there lives in memory, where fsync returns at once. */
export function inMemory(type: number): boolean {
  return IN_MEMORY.has(filesystemName(type));
}
