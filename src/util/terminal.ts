/**
 * What a terminal showed, as plain lines: colours, cursor moves and other
 * escapes removed, carriage returns dropped, control characters gone. For
 * serial console logs quoted in messages.
 */
export function plainText(raw: string): string {
  return (
    raw
      // eslint-disable-next-line no-control-regex
      .replace(/\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]/g, '')
      .replace(/\r/g, '')
      // eslint-disable-next-line no-control-regex
      .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '')
  );
}
