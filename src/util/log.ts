// Structured logging (logfmt or JSON) with every message and field passed through redaction.
import pino from 'pino';
import { redact } from './redact';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'logfmt' | 'json';
export type Logger = pino.Logger;

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  /** Where lines go (default stderr); tests capture them. */
  write?: (line: string) => void;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const format = opts.format ?? 'logfmt';
  const write = opts.write ?? ((line: string) => process.stderr.write(line));
  const stream = {
    write(chunk: string) {
      const safe = redact(chunk);
      write(format === 'json' ? safe : toLogfmt(safe));
    },
  };
  return pino(
    {
      level: opts.level ?? 'info',
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: serializeError },
    },
    stream,
  );
}

function serializeError(err: unknown): unknown {
  if (err && typeof err === 'object' && typeof (err as { toLogObject?: unknown }).toLogObject === 'function') {
    return (err as { toLogObject(): unknown }).toLogObject();
  }
  if (err instanceof Error) return { type: err.name, message: redact(err.message) };
  return err;
}

function toLogfmt(jsonLine: string): string {
  let obj: Record<string, unknown>;
  try {
    obj = JSON.parse(jsonLine);
  } catch {
    return jsonLine;
  }
  const parts: string[] = [];
  const order = ['time', 'level', 'msg'];
  const keys = [...order.filter((k) => k in obj), ...Object.keys(obj).filter((k) => !order.includes(k))];
  for (const key of keys) flatten(key, obj[key], parts);
  return parts.join(' ') + '\n';
}

function flatten(key: string, value: unknown, out: string[]): void {
  if (value === undefined) return;
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(`${key}.${k}`, v, out);
    return;
  }
  const text = Array.isArray(value) ? value.join(',') : String(value);
  // Quoted (and so escaped) when it holds a space, quote, '=' or backslash, or any control character: an ANSI escape
  // read from an inventory file must not reach a terminal raw.
  out.push(`${key}=${/[\s"=\\\u0000-\u001f\u007f-\u009f]/.test(text) || text === '' ? JSON.stringify(text) : text}`);
}
