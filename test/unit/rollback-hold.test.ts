/**
 * How long a rollback keeps its locks for writes that may still land
 * (resolver/hold.ts): the late-write window for unseen writes, longer for
 * a prepared transaction's creates admitted from memory, and not at all
 * for those once kubectl tx said kubectl exited on its own.
 */
import { describe, expect, it } from "vitest";
import type { HoldState } from "../../src/resolver/hold.ts";
import { holdsLocks, unseenWrite } from "../../src/resolver/hold.ts";
import { PREPARED_HOLD_EXTRA_MS } from "../../src/locks/pulse.ts";

const LATE = 10_000;
const preparedCreate = unseenWrite("lk-create", { prepared: true, operation: "CREATE" });
const update = unseenWrite("lk-update", { operation: "UPDATE" });

function state(over: Partial<HoldState>): HoldState {
  return { prepared: false, clientSettled: false, elapsedMs: 0, lateWriteMs: LATE, sink: true, unseen: [], reported: {}, ...over };
}

describe("unseenWrite", () => {
  it("marks only a prepare's create lock as a prepared create", () => {
    expect(preparedCreate.preparedCreate).toBe(true);
    expect(update.preparedCreate).toBe(false);
    expect(unseenWrite("lk-x", { operation: "CREATE" }).preparedCreate).toBe(false);
  });
});

describe("holdsLocks", () => {
  it("releases at once when every write was seen, unless the transaction was prepared", () => {
    expect(holdsLocks(state({}))).toBe(false);
    expect(holdsLocks(state({ prepared: true }))).toBe(true);
  });

  it("holds an unseen write for the late-write window, or until the sink reports its request", () => {
    expect(holdsLocks(state({ unseen: [update], elapsedMs: LATE - 1 }))).toBe(true);
    expect(holdsLocks(state({ unseen: [update], elapsedMs: LATE }))).toBe(false);
    expect(holdsLocks(state({ unseen: [update], reported: { "lk-update": { code: 409 } } }))).toBe(false);
    expect(holdsLocks(state({ unseen: [update], sink: false, reported: { "lk-update": { code: 409 } } }))).toBe(true);
  });

  it("holds a prepared transaction for the window and PREPARED_HOLD_EXTRA_MS while kubectl may still be writing", () => {
    expect(holdsLocks(state({ prepared: true, unseen: [preparedCreate], elapsedMs: LATE + PREPARED_HOLD_EXTRA_MS - 1 }))).toBe(true);
    expect(holdsLocks(state({ prepared: true, unseen: [preparedCreate], elapsedMs: LATE + PREPARED_HOLD_EXTRA_MS }))).toBe(false);
  });

  it("holds no prepared create once kubectl exited on its own, reported or not", () => {
    expect(holdsLocks(state({ prepared: true, clientSettled: true, unseen: [preparedCreate] }))).toBe(false);
    expect(holdsLocks(state({ prepared: true, clientSettled: true, unseen: [preparedCreate], sink: false }))).toBe(false);
  });

  it("still holds an unseen update of a settled prepared transaction: the user's other tools may write it", () => {
    expect(holdsLocks(state({ prepared: true, clientSettled: true, unseen: [preparedCreate, update], elapsedMs: 1 }))).toBe(true);
    expect(holdsLocks(state({ prepared: true, clientSettled: true, unseen: [preparedCreate, update], reported: { "lk-update": { code: 500 } } }))).toBe(false);
    expect(holdsLocks(state({ prepared: true, clientSettled: true, unseen: [preparedCreate, update], elapsedMs: LATE }))).toBe(false);
  });
});
