/**
 * The one error the codec throws: a value that cannot be stored, or bytes that are not a value.
 * The Lua store module turns it into `nil, err` of kind Invalid.
 */

/** A value was refused or bytes were malformed; `path` says where (`value.profile.cb`). */
export class CodecError extends Error {
  /** Where in the value the problem is, starting at the root name (`value`, `value.tags[3]`). */
  readonly path: string;
  /** What is wrong there, without the path (`functions cannot be stored`). */
  readonly reason: string;
  constructor(path: string, reason: string) {
    super(`${path}: ${reason}`);
    this.name = "CodecError";
    this.path = path;
    this.reason = reason;
  }
}
