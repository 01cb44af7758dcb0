/**
 * The audit trail: one JSON line per policy decision. Off by default; when off, the gateway
 * pays one null check per decision and nothing else.
 */
import { closeSync, openSync, writeSync } from "node:fs";
import { textFromByteString } from "../bytes.js";

export interface AuditRecord {
  /** ISO time from the host clock. */
  time: string;
  runId: string;
  actor: string;
  action: string;
  resource: string;
  key?: string;
  prefix?: string;
  allowed: boolean;
  policyIds: readonly string[];
}

export type AuditSink = (record: AuditRecord) => void;

export interface AuditOptions {
  /** Append JSON lines to this file. */
  file?: string;
  /** Receive every record. */
  onDecision?: AuditSink;
}

/** Decodes byte strings in a record for humans (UTF-8 text; invalid bytes as U+FFFD). */
export function readableRecord(r: AuditRecord): AuditRecord {
  const out: AuditRecord = { ...r, actor: textFromByteString(r.actor), resource: textFromByteString(r.resource) };
  if (r.key !== undefined) out.key = textFromByteString(r.key);
  if (r.prefix !== undefined) out.prefix = textFromByteString(r.prefix);
  return out;
}

/** An audit writer: buffers lines and appends them to the file in batches; `close` flushes. */
export class AuditLog {
  readonly #fd: number | null;
  readonly #callback: AuditSink | undefined;
  #buffer: string[] = [];
  #scheduled = false;

  constructor(options: AuditOptions) {
    this.#fd = options.file !== undefined ? openSync(options.file, "a") : null;
    this.#callback = options.onDecision;
  }

  write = (record: AuditRecord): void => {
    const readable = readableRecord(record);
    this.#callback?.(readable);
    if (this.#fd === null) return;
    this.#buffer.push(JSON.stringify(readable));
    if (this.#buffer.length >= 256) this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.flush());
    }
  };

  flush(): void {
    this.#scheduled = false;
    if (this.#fd === null || this.#buffer.length === 0) return;
    writeSync(this.#fd, `${this.#buffer.join("\n")}\n`);
    this.#buffer = [];
  }

  close(): void {
    this.flush();
    if (this.#fd !== null) closeSync(this.#fd);
  }
}
