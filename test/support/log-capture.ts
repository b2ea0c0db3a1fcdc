import Transport from 'winston-transport';

const MESSAGE = Symbol.for('message');

/**
 * Every log line of the run, from in-process components (this transport) and
 * from spawned processes (ServiceProcess adds theirs). Lines of the current test
 * are printed only if it fails, so a green run is quiet and a red one explains itself.
 */
export const allLogLines: string[] = [];
let currentTest: string[] = [];

class CaptureTransport extends Transport {
  override log(info: Record<string | symbol, unknown>, next: () => void): void {
    const line = String(info[MESSAGE] ?? JSON.stringify(info));
    allLogLines.push(line);
    currentTest.push(line);
    next();
  }
}

export const captureTransport = new CaptureTransport();

export function recordLine(line: string): void {
  allLogLines.push(line);
  currentTest.push(line);
}

export function takeTestLines(): string[] {
  const lines = currentTest;
  currentTest = [];
  return lines;
}
