/** resourceVersions compared as the etcd revisions they are (one counter for every resource of a cluster's etcd). */

/** `a` <= `b`; false unless both are numbers (never guess the order of versions an apiserver did not number). */
export function revisionAtMost(a: string, b: string): boolean {
  if (!/^\d+$/.test(a) || !/^\d+$/.test(b)) return false;
  return BigInt(a) <= BigInt(b);
}
