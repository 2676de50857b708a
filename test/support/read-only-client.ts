/** A KubeClient that answers GETs from a script and refuses every write: for read-only commands' unit tests. */
import type { KubeClient, RequestOptions } from "../../src/kube/client.ts";

type Query = Record<string, string | undefined>;

export class ReadOnlyClient implements KubeClient {
  readonly server = "https://fake.example";
  readonly calls: { path: string; query: Query }[] = [];
  closed = false;
  private readonly answer: (path: string, query: Query) => unknown;

  /** `answer` returns the body for a GET, or an Error to reject it with. */
  constructor(answer: (path: string, query: Query) => unknown) {
    this.answer = answer;
  }

  get<T>(path: string, options?: RequestOptions): Promise<T> {
    const query = options?.query ?? {};
    this.calls.push({ path, query });
    const answer = this.answer(path, query);
    return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer as T);
  }

  create<T>(): Promise<T> { return Promise.reject(new Error("not used")); }
  replace<T>(): Promise<T> { return Promise.reject(new Error("not used")); }
  jsonPatch<T>(): Promise<T> { return Promise.reject(new Error("not used")); }
  mergePatch<T>(): Promise<T> { return Promise.reject(new Error("not used")); }
  delete<T>(): Promise<T> { return Promise.reject(new Error("not used")); }
  watch(): Promise<void> { return Promise.reject(new Error("not used")); }
  request<T>(): Promise<T> { return Promise.reject(new Error("not used")); }
  close(): void {
    this.closed = true;
  }
}
