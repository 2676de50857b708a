/** A KubeClient that refuses every call: test fakes extend it and override the few calls they answer. */
import type { KubeClient, RequestOptions, WatchEvent } from "../../src/kube/client.ts";
import type { PatchOperation } from "../../src/kube/types.ts";

function refuse<T>(call: string): Promise<T> {
  return Promise.reject(new Error(`this fake does not answer ${call}`));
}

export class RefusingClient implements KubeClient {
  readonly server: string = "https://fake.example";

  get<T>(_path: string, _options?: RequestOptions): Promise<T> { return refuse("get"); }
  create<T>(_path: string, _body: unknown, _options?: RequestOptions): Promise<T> { return refuse("create"); }
  replace<T>(_path: string, _body: unknown, _options?: RequestOptions): Promise<T> { return refuse("replace"); }
  jsonPatch<T>(_path: string, _ops: PatchOperation[], _options?: RequestOptions): Promise<T> { return refuse("jsonPatch"); }
  mergePatch<T>(): Promise<T> { return refuse("mergePatch"); }
  delete<T>(_path: string, _options?: RequestOptions): Promise<T> { return refuse("delete"); }
  watch(_path: string, _query: Record<string, string | undefined>, _onEvent: (event: WatchEvent) => void, _signal: AbortSignal): Promise<void> { return refuse("watch"); }
  request<T>(): Promise<T> { return refuse("request"); }
  close(): void {}
}
