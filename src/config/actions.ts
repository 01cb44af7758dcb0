/** The actions store calls are checked as: what policies can name, and what `check` and `explain` compare against. */
export const STORE_ACTIONS = [
  "store.get",
  "store.key.get",
  "store.key.set",
  "store.key.has",
  "store.key.delete",
  "store.key.list",
  "store.info",
  "store.flush",
] as const;

export type StoreAction = (typeof STORE_ACTIONS)[number];

export function isStoreAction(action: string): action is StoreAction {
  return (STORE_ACTIONS as readonly string[]).includes(action);
}
