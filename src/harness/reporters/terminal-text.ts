/**
 * Text from test files (names, messages, printed output) made safe for a terminal: control
 * characters (C0 other than the ones a layout needs, DEL, C1) are shown as `\x1b`-style escapes,
 * so a test name cannot move the cursor, recolour the screen or set the window title.
 */

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
// eslint-disable-next-line no-control-regex
const CONTROL_OR_LAYOUT = /[\u0000-\u001f\u007f-\u009f]/g;

const escape = (c: string): string => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`;

/** One line (a test or describe name): every control character escaped, newlines and tabs too. */
export function safeLine(text: string): string {
  return text.replace(CONTROL_OR_LAYOUT, escape);
}

/** A block (a message, printed output): control characters escaped; newlines and tabs kept. */
export function safeBlock(text: string): string {
  return text.replace(CONTROL, escape);
}
