/**
 * Money is an integer count of minor units (cents) everywhere past the edge.
 * Amounts arrive as a JSON number or a decimal string and are converted through
 * their decimal text, never through float arithmetic: 0.1 + 0.2 stays 30 cents.
 */

const DECIMAL = /^(0|[1-9]\d*)(?:\.(\d{1,2}))?$/;
const MINOR_PER_MAJOR = 100;

/** 100 billion major units: far below 2^53 minor units, so sums stay exact. */
export const MAX_AMOUNT_MINOR = 100_000_000_000 * MINOR_PER_MAJOR;

export type AmountResult = { ok: true; minor: number } | { ok: false; message: string };

export function parseAmount(input: number | string): AmountResult {
  let text: string;
  if (typeof input === 'number') {
    if (!Number.isFinite(input)) return { ok: false, message: 'amount must be a finite number' };
    // String() yields the shortest decimal that round-trips, e.g. 150.75 -> "150.75", 1e-7 -> "1e-7".
    text = String(input);
  } else {
    text = input;
  }
  if (text.startsWith('-')) return { ok: false, message: 'amount must be greater than 0' };
  const match = DECIMAL.exec(text);
  if (!match) {
    return { ok: false, message: 'amount must be a decimal number with at most 2 decimal places, e.g. 150.75' };
  }
  const whole = match[1] ?? '0';
  const fraction = (match[2] ?? '').padEnd(2, '0');
  if (whole.length > String(MAX_AMOUNT_MINOR / MINOR_PER_MAJOR).length) {
    return { ok: false, message: `amount must be at most ${formatMinor(MAX_AMOUNT_MINOR)}` };
  }
  const minor = Number(whole) * MINOR_PER_MAJOR + Number(fraction);
  if (minor <= 0) return { ok: false, message: 'amount must be greater than 0' };
  if (minor > MAX_AMOUNT_MINOR) return { ok: false, message: `amount must be at most ${formatMinor(MAX_AMOUNT_MINOR)}` };
  return { ok: true, minor };
}

/** 15075 -> "150.75"; a string, so a client never sees a float that cannot hold cents exactly. */
export function formatMinor(minor: number): string {
  const sign = minor < 0 ? '-' : '';
  const abs = Math.abs(minor);
  const whole = Math.floor(abs / MINOR_PER_MAJOR);
  const cents = String(abs % MINOR_PER_MAJOR).padStart(2, '0');
  return `${sign}${whole}.${cents}`;
}
