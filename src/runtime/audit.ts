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

/**
 * Longest actor, resource, key or prefix an audit line shows, in bytes; the rest is replaced by
 * `…[+N bytes]`. Keys within the default max_key_length are shown whole, and a script cannot
 * make one line carry more than a few KiB whatever it sends.
 */
export const AUDIT_FIELD_MAX_BYTES = 1024;

/** A byte string as audit text: UTF-8 decoded, cut at AUDIT_FIELD_MAX_BYTES (never inside a character) with a marker. */
export function auditText(bytes: string): string {
  if (bytes.length <= AUDIT_FIELD_MAX_BYTES) return textFromByteString(bytes);
  let end = AUDIT_FIELD_MAX_BYTES;
  // Back up over UTF-8 continuation bytes so the kept part does not end in half a character.
  for (let back = 0; back < 3 && (bytes.charCodeAt(end) & 0xc0) === 0x80; back++) end--;
  return `${textFromByteString(bytes.slice(0, end))}…[+${bytes.length - end} bytes]`;
}

/** Decodes byte strings in a record for humans (UTF-8 text; invalid bytes as U+FFFD), cutting long fields. */
export function readableRecord(r: AuditRecord): AuditRecord {
  const out: AuditRecord = { ...r, actor: auditText(r.actor), resource: auditText(r.resource) };
  if (r.key !== undefined) out.key = auditText(r.key);
  if (r.prefix !== undefined) out.prefix = auditText(r.prefix);
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
