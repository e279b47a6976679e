// Shared by unit tests: a pino logger whose lines are kept, parsed, for assertions.
import { pino, type Logger } from 'pino';

export interface CapturedLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

export function capturingLog(): { log: Logger; lines: CapturedLine[] } {
  const lines: CapturedLine[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as CapturedLine) });
  return { log, lines };
}
