/**
 * Whether the committed transactions have one serial order. Each object
 * orders the committed transactions that wrote it (the apiserver's order
 * of their writes); the transactions are serializable iff the union of
 * these orders has no cycle, and then any topological order, replayed,
 * gives the final state (every object ends as its last committed write
 * left it, which objects.ts checks). Pure.
 */

export interface OrderEdge {
  readonly from: string;
  readonly to: string;
  /** The object that orders them. */
  readonly object: string;
}

/** Consecutive pairs of each object's committed order. */
export function precedenceEdges(orders: ReadonlyMap<string, readonly string[]>): OrderEdge[] {
  const edges: OrderEdge[] = [];
  for (const [object, order] of orders) {
    for (let i = 1; i < order.length; i += 1) {
      const from = order[i - 1] as string;
      const to = order[i] as string;
      if (from !== to) edges.push({ from, to, object });
    }
  }
  return edges;
}

/** A cycle of edges, or undefined when a serial order exists. */
export function findCycle(edges: readonly OrderEdge[]): OrderEdge[] | undefined {
  const out = new Map<string, OrderEdge[]>();
  for (const edge of edges) out.set(edge.from, [...(out.get(edge.from) ?? []), edge]);
  const done = new Set<string>();
  for (const start of out.keys()) {
    const cycle = cycleFrom(start, out, done);
    if (cycle) return cycle;
  }
  return undefined;
}

/** Iterative depth-first search from `start`, skipping nodes already proven acyclic. */
function cycleFrom(start: string, out: ReadonlyMap<string, OrderEdge[]>, done: Set<string>): OrderEdge[] | undefined {
  if (done.has(start)) return undefined;
  const path: OrderEdge[] = [];
  const onPath = new Set<string>([start]);
  const stack: { node: string; next: number }[] = [{ node: start, next: 0 }];
  while (stack.length > 0) {
    const top = stack.at(-1) as { node: string; next: number };
    const edge = out.get(top.node)?.[top.next];
    top.next += 1;
    if (!edge) {
      done.add(top.node);
      onPath.delete(top.node);
      stack.pop();
      path.pop();
      continue;
    }
    if (onPath.has(edge.to)) return [...path.slice(path.findIndex((e) => e.from === edge.to)), edge];
    if (done.has(edge.to)) continue;
    path.push(edge);
    onPath.add(edge.to);
    stack.push({ node: edge.to, next: 0 });
  }
  return undefined;
}
