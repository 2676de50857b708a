/** A KubeClient that answers GETs from a script and refuses every write: for read-only commands' unit tests. */
import type { RequestOptions } from "../../src/kube/client.ts";
import { RefusingClient } from "./refusing-client.ts";

type Query = Record<string, string | undefined>;

export class ReadOnlyClient extends RefusingClient {
  readonly calls: { path: string; query: Query }[] = [];
  closed = false;
  private readonly answer: (path: string, query: Query) => unknown;

  /** `answer` returns the body for a GET, or an Error to reject it with. */
  constructor(answer: (path: string, query: Query) => unknown) {
    super();
    this.answer = answer;
  }

  override get<T>(path: string, options?: RequestOptions): Promise<T> {
    const query = options?.query ?? {};
    this.calls.push({ path, query });
    const answer = this.answer(path, query);
    return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer as T);
  }

  override close(): void {
    this.closed = true;
  }
}
