/**
 * Commands for Windows guests (OpenSSH on Windows), whatever their SSH
 * default shell is (cmd or PowerShell): the script travels base64-encoded
 * as UTF-16LE, the form PowerShell's -EncodedCommand takes, so no quoting of
 * cmd or PowerShell ever applies to it.
 */
export function powershellCommand(script: string): string {
  return `powershell -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand ${Buffer.from(script, 'utf16le').toString('base64')}`;
}

/** A command that writes its standard input, byte for byte, to `path` (a file step on Windows). */
export function powershellWriteStdin(path: string): string {
  return powershellCommand(
    `$ErrorActionPreference = 'Stop'; New-Item -ItemType Directory -Force -Path (Split-Path -Parent ${psq(path)}) | Out-Null; ` +
      `$in = [Console]::OpenStandardInput(); $out = [IO.File]::Create(${psq(path)}); $in.CopyTo($out); $out.Close()`,
  );
}

/** Quotes a value for PowerShell (single quotes, doubled inside). */
export function psq(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}
